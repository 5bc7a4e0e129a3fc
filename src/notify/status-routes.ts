import type { FastifyInstance, FastifyReply } from 'fastify';
import { isHokanError } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { escapeXml, statusAtomFeed } from './feed.js';
import { deliveryKick } from './jobs.js';
import { statusSnapshot } from './status-snapshot.js';
import { confirmSubscription, requestSubscription, unsubscribe } from './subscriptions.js';

/**
 * Public, unauthenticated pages of the notify domain (the status page itself is the web domain's):
 * the Atom feed, the snapshot as JSON, and the e-mail subscription with double opt-in. Hidden
 * from the API's OpenAPI document: they answer Atom and small HTML pages, not JSON.
 */

function page(reply: FastifyReply, status: number, lang: Locale, title: string, message: string): FastifyReply {
  const html = `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeXml(title)}</title></head>
<body><main><h1>${escapeXml(title)}</h1><p>${escapeXml(message)}</p><p><a href="/status">${lang === 'ja' ? '障害情報ページへ' : 'Back to the status page'}</a></p></main></body></html>
`;
  return reply.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
}

const langOf = (v: unknown): Locale => (v === 'en' ? 'en' : 'ja');

export function registerStatusRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  app.get('/status/feed.atom', { schema: { hide: true } }, async (_req, reply) => {
    const xml = await statusAtomFeed(ctx.db, { publicUrl: ctx.config.publicUrl, providerName: ctx.config.providerName, now: ctx.clock.now() });
    return reply.header('content-type', 'application/atom+xml; charset=utf-8').send(xml);
  });

  app.get('/status/snapshot.json', { schema: { hide: true } }, async () => statusSnapshot(ctx.db, ctx.clock));

  app.post('/status/subscribe', { schema: { hide: true } }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const lang = langOf(body.lang);
    const email = typeof body.email === 'string' ? body.email : '';
    if (body.lang !== undefined && body.lang !== 'ja' && body.lang !== 'en') {
      return page(reply, 400, 'ja', '入力内容に誤りがあります / Invalid input', 'lang: ja または en を指定してください。 / lang must be ja or en.');
    }
    try {
      await requestSubscription(ctx.db, ctx.clock, { email, lang }, { publicUrl: ctx.config.publicUrl, providerName: ctx.config.providerName, kick: deliveryKick(ctx.queue) });
    } catch (err) {
      if (isHokanError(err) && err.code === 'validation_failed') {
        return lang === 'ja'
          ? page(reply, 400, 'ja', 'メールアドレスが正しくありません', `「${email}」はメールアドレスとして受け付けられません。入力内容をご確認ください。`)
          : page(reply, 400, 'en', 'Invalid e-mail address', `"${email}" is not an e-mail address we can accept. Please check it.`);
      }
      throw err;
    }
    // The same answer whether or not the address was known: nothing about subscribers leaks.
    return lang === 'ja'
      ? page(reply, 200, 'ja', '確認メールをお送りしました', 'ご登録のメールアドレスに確認メールをお送りしました。メール内のリンクを開くと登録が完了します。')
      : page(reply, 200, 'en', 'Check your inbox', 'We sent a confirmation e-mail. Open the link in it to complete your subscription.');
  });

  app.get('/status/subscribe/confirm', { schema: { hide: true } }, async (req, reply) => {
    const token = String((req.query as Record<string, unknown>).token ?? '');
    const done = await confirmSubscription(ctx.db, ctx.clock, token);
    if (!done) return page(reply, 404, 'ja', 'リンクが無効です / Invalid link', 'このリンクは無効か、既に使われています。もう一度お申し込みください。 / This link is invalid or was already used; please subscribe again.');
    return done.lang === 'ja'
      ? page(reply, 200, 'ja', '登録が完了しました', '障害・メンテナンス情報をメールでお届けします。各メールの配信停止リンクからいつでも解除できます。')
      : page(reply, 200, 'en', 'Subscription confirmed', 'You will receive status posts by e-mail. Each e-mail has a link to unsubscribe.');
  });

  app.get('/status/unsubscribe', { schema: { hide: true } }, async (req, reply) => {
    const token = String((req.query as Record<string, unknown>).token ?? '');
    const done = await unsubscribe(ctx.db, ctx.clock, token);
    if (!done) return page(reply, 404, 'ja', 'リンクが無効です / Invalid link', 'このリンクは無効です。 / This link is invalid.');
    return done.lang === 'ja' ? page(reply, 200, 'ja', '配信を停止しました', '今後、障害情報メールはお送りしません。') : page(reply, 200, 'en', 'Unsubscribed', 'You will not receive status e-mails any more.');
  });
}
