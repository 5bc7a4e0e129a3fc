import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Locale } from '../core/i18n.js';
import { html, type Html, type Interpolation } from './html.js';
import { rememberLocale, translator, type T } from './i18n.js';
import { CSRF_FIELD, csrfBinding, type Human, type WebDeps } from './kit.js';
import { page, sendPage, type NavItem } from './layout.js';

export interface PageContext {
  locale: Locale;
  t: T;
  csrf: string;
  p: Human;
}

/** What every portal/console page needs: language (remembered), CSRF token for its forms, translator. */
export function pageContext(deps: WebDeps, req: FastifyRequest, reply: FastifyReply, p: Human): PageContext {
  const locale = rememberLocale(req, reply, deps.ctx.config.cookieSecure);
  return { locale, t: translator(locale), csrf: deps.csrf.token(csrfBinding(req, reply, deps.ctx.config.cookieSecure)), p };
}

export function shell(
  reply: FastifyReply,
  pc: PageContext,
  opts: { face: 'portal' | 'console'; nav: NavItem[]; title: string; path: string; body: Interpolation; head?: Html; status?: number },
): FastifyReply {
  const { t } = pc;
  const user = html`<span>${pc.p.displayName}</span>
<form class="inline" method="post" action="/${opts.face}/sign-out"><input type="hidden" name="${CSRF_FIELD}" value="${pc.csrf}"><button type="submit" class="secondary">${t('サインアウト', 'Sign out')}</button></form>`;
  return sendPage(
    reply,
    page({
      locale: pc.locale,
      title: opts.title,
      site: opts.face === 'portal' ? t('お客様ポータル', 'Customer portal') : t('運用コンソール', 'Operator console'),
      home: `/${opts.face}`,
      nav: opts.nav.map((n) => ({ ...n, current: n.href === opts.path })),
      path: opts.path,
      user,
      ...(opts.head ? { head: opts.head } : {}),
      body: opts.body,
    }),
    opts.status ?? 200,
  );
}

/** A one-line note after a successful POST (the redirect carries its key). */
export function doneNote(req: FastifyRequest, notes: Record<string, string>): Html {
  const key = (req.query as Record<string, unknown>)['done'];
  const text = typeof key === 'string' ? notes[key] : undefined;
  return text ? html`<div class="notice" role="status">${text}</div>` : html``;
}

/** A small POST button form with the CSRF token (revoke, end a stop, back up now). */
export function actionButton(pc: PageContext, action: string, label: string, hidden: Record<string, string> = {}, danger = false): Html {
  return html`<form class="inline" method="post" action="${action}"><input type="hidden" name="${CSRF_FIELD}" value="${pc.csrf}">${Object.entries(hidden).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit"${danger ? html` class="danger"` : html` class="secondary"`}>${label}</button></form>`;
}
