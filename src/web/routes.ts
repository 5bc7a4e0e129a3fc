import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { signIn } from '../accounts/sign-in.js';
import { loginBody } from '../accounts/routes.js';
import { deleteSession } from '../accounts/sessions.js';
import { HokanError } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { SESSION_COOKIE } from '../http/route-kit.js';
import { registerAssetRoutes } from './assets.js';
import { registerConsole } from './console.js';
import { registerConsoleBackups } from './console-backups.js';
import { registerConsoleReports } from './console-reports.js';
import { registerConsoleTerms } from './console-terms.js';
import { registerConsoleMonitoring } from './console-monitoring.js';
import { registerConsoleNotices } from './console-notices.js';
import { html, type Html } from './html.js';
import { localeOf, rememberLocale, translator } from './i18n.js';
import { checkCsrf, CsrfError, CsrfKey, csrfBinding, field, form, parseForm, RedirectTo, refusalState, seeOther, str, validate, type Face, type FormData, type FormState, type WebDeps } from './kit.js';
import { page, sendPage } from './layout.js';
import { registerPortal } from './portal.js';
import { registerPortalReports } from './portal-reports.js';
import { registerPortalTerms } from './portal-terms.js';
import { createStatusPageCache, registerStatusPage } from './status-page.js';
import { fromDatabaseError } from '../http/error-handler.js';

/** Only local paths of the same face, so the sign-in cannot be turned into an open redirect. */
function safeNext(next: string | undefined, face: Face): string {
  return next && next.startsWith(`/${face}`) && !next.startsWith('//') && !/[\\\r\n]/.test(next) ? next : `/${face}`;
}

function signInPage(deps: WebDeps, req: FastifyRequest, reply: FastifyReply, face: Face, state?: FormState): Html {
  const locale = rememberLocale(req, reply, deps.ctx.config.cookieSecure);
  const t = translator(locale);
  const next = safeNext(str(req.query as FormData, 'next'), face);
  const csrf = deps.csrf.token(csrfBinding(req, reply, deps.ctx.config.cookieSecure));
  const action = `/${face}/sign-in?next=${encodeURIComponent(next)}`;
  return page({
    locale,
    title: t('サインイン', 'Sign in'),
    site: face === 'portal' ? t('お客様ポータル', 'Customer portal') : t('運用コンソール', 'Operator console'),
    home: `/${face}`,
    path: `/${face}/sign-in`,
    body: html`<p>${face === 'portal' ? t('ご契約のお客様用のページです。発行されたIDとパスワードでサインインしてください。', 'For customers: sign in with the ID and password issued to you.') : t('事業者の担当者用のページです。', "For the provider's staff.")}</p>
${form({
  id: 'sign-in',
  action,
  csrf,
  submit: t('サインイン', 'Sign in'),
  state,
  locale,
  fields: html`${field('sign-in', { name: 'loginId', label: t('ID', 'ID'), autocomplete: 'username', required: true }, state)}
${field('sign-in', { name: 'password', label: t('パスワード', 'Password'), type: 'password', autocomplete: 'current-password', required: true }, state && { ...state, values: { ...state.values, password: '' } })}
${face === 'console' ? field('sign-in', { name: 'totpCode', label: t('認証アプリのコード（登録済みの場合）', 'Authenticator code (if enrolled)'), autocomplete: 'one-time-code', inputmode: 'numeric', hint: t('6桁の数字', '6 digits') }, state) : ''}`,
})}`,
  });
}

function errorPage(locale: Locale, status: number, message: string, face: Face | null): Html {
  const t = translator(locale);
  return page({
    locale,
    title: status === 404 ? t('見つかりません', 'Not found') : status === 403 ? t('この操作はできません', 'Not allowed') : t('エラー', 'Error'),
    site: face === 'portal' ? t('お客様ポータル', 'Customer portal') : face === 'console' ? t('運用コンソール', 'Operator console') : 'hokan',
    home: face ? `/${face}` : '/status',
    path: face ? `/${face}` : '/status',
    body: html`<div class="alert" role="alert">${message}</div><p><a href="${face ? `/${face}` : '/status'}">${t('トップへ戻る', 'Back to the start')}</a></p>`,
  });
}

export async function registerWeb(app: FastifyInstance, ctx: AppContext): Promise<void> {
  registerAssetRoutes(app);
  const statusCache = createStatusPageCache(ctx);
  registerStatusPage(app, statusCache);
  const deps: WebDeps = { ctx, csrf: new CsrfKey(ctx.backup.masterKey), statusChanged: () => statusCache.invalidate() };

  await app.register(async (web) => {
    // Forms post urlencoded bodies; this parser exists only inside the web pages' scope, so the
    // JSON API keeps refusing form posts (its own CSRF rule in src/http/server.ts relies on that).
    web.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      done(null, parseForm(body as string));
    });

    web.setErrorHandler((err: FastifyError | Error, req, reply) => {
      const face: Face | null = req.url.startsWith('/portal') ? 'portal' : req.url.startsWith('/console') ? 'console' : null;
      const locale = localeOf(req);
      const t = translator(locale);
      if (err instanceof RedirectTo) return seeOther(reply, err.url);
      if (err instanceof CsrfError) return sendPage(reply, errorPage(locale, 403, t('フォームの有効期限が切れたか、別のページから送信されました。ページを開き直してからもう一度送信してください。', 'The form expired or was sent from another site. Open the page again and resend.'), face), 403);
      const known = err instanceof HokanError ? err : fromDatabaseError(err);
      if (known) {
        if (known.code === 'unauthenticated' && face) return seeOther(reply, `/${face}/sign-in`);
        if (known.retryAfterSeconds !== undefined) reply.header('retry-after', String(known.retryAfterSeconds));
        return sendPage(reply, errorPage(locale, known.httpStatus, known.messages[locale], face), known.httpStatus);
      }
      const status = (err as FastifyError).statusCode ?? 500;
      if (status < 500) return sendPage(reply, errorPage(locale, status, t('リクエストを処理できません。', 'The request cannot be processed.'), face), status);
      req.log.error({ err }, 'web page failed');
      return sendPage(reply, errorPage(locale, 500, t('内部エラーが発生しました。', 'An internal error occurred.'), face), 500);
    });

    for (const face of ['portal', 'console'] as const) {
      web.get(`/${face}/sign-in`, { schema: { hide: true } }, async (req, reply) => sendPage(reply, signInPage(deps, req, reply, face)));

      web.post(`/${face}/sign-in`, { schema: { hide: true } }, async (req, reply) => {
        const f = (req.body ?? {}) as FormData;
        checkCsrf(deps.csrf, req, f);
        const locale = localeOf(req);
        const values = { loginId: str(f, 'loginId') ?? '', password: '', totpCode: str(f, 'totpCode') ?? '' };
        // The API's own body schema and sign-in function: the same rules, lockout and TOTP.
        const parsed = validate(loginBody, { loginId: str(f, 'loginId') ?? '', password: typeof f['password'] === 'string' ? f['password'] : '', ...(str(f, 'totpCode') ? { totpCode: str(f, 'totpCode') } : {}) }, locale);
        if (!parsed.ok) return sendPage(reply, signInPage(deps, req, reply, face, { form: 'sign-in', values, errors: parsed.errors }), 400);
        try {
          const { principal, session } = await signIn(ctx, parsed.data, req.ip);
          if ((face === 'portal') !== (principal.kind === 'customer_user')) {
            await deleteSession(ctx.db, session.token);
            const t = translator(locale);
            return sendPage(reply, signInPage(deps, req, reply, face, { form: 'sign-in', values, errors: {}, message: face === 'portal' ? t('事業者の担当者は運用コンソールからサインインしてください。', "The provider's staff sign in to the operator console.") : t('お客様はお客様ポータルからサインインしてください。', 'Customers sign in to the customer portal.') }), 403);
          }
          reply.setCookie(SESSION_COOKIE, session.token, { httpOnly: true, sameSite: 'lax', secure: ctx.config.cookieSecure, path: '/', expires: session.expiresAt });
          return seeOther(reply, safeNext(str(req.query as FormData, 'next'), face));
        } catch (err) {
          if (!(err instanceof HokanError)) throw err;
          if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
          return sendPage(reply, signInPage(deps, req, reply, face, refusalState('sign-in', values, err, locale)), err.httpStatus);
        }
      });

      web.post(`/${face}/sign-out`, { schema: { hide: true } }, async (req, reply) => {
        const f = (req.body ?? {}) as FormData;
        checkCsrf(deps.csrf, req, f);
        const token = req.cookies[SESSION_COOKIE];
        if (token) await deleteSession(ctx.db, token);
        reply.clearCookie(SESSION_COOKIE, { path: '/' });
        return seeOther(reply, `/${face}/sign-in`);
      });
    }

    registerPortal(web, deps);
    registerConsole(web, deps);
    registerConsoleBackups(web, deps);
    registerPortalTerms(web, deps);
    registerPortalReports(web, deps);
    registerConsoleTerms(web, deps);
    registerConsoleReports(web, deps);
    registerConsoleMonitoring(web, deps);
    registerConsoleNotices(web, deps);
  });
}
