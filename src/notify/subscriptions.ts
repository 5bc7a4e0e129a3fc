import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import { errors } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import { isValidEmailAddress, queueEmail } from './outbox.js';

/**
 * The public e-mail subscription to the status page, with double opt-in: a request stores the
 * address unconfirmed and mails a confirmation link; only a confirmed address receives the public
 * posts, each with an unsubscribe link. The answer never says whether an address was known.
 */

const RESEND_AFTER_MS = 3_600_000;
const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const newToken = () => randomBytes(24).toString('base64url');

export interface SubscribeResult {
  /** True when a confirmation e-mail was queued (false: one was sent within the last hour, or already confirmed). */
  mailed: boolean;
}

export async function requestSubscription(db: Db, clock: Clock, input: { email: string; lang: Locale }, ctx: { publicUrl: string; providerName: string; kick?: (trx: Tx) => Promise<void> }): Promise<SubscribeResult> {
  const email = input.email.trim();
  if (!isValidEmailAddress(email)) throw errors.invalidField('email', `メールアドレス「${input.email}」は正しくありません。`, `"${input.email}" is not a valid e-mail address`);
  return db.transaction().execute(async (trx) => {
    const now = clock.now();
    const existing = await trx.selectFrom('status_subscribers').selectAll().where((eb) => eb(eb.fn('lower', ['email']), '=', email.toLowerCase())).forUpdate().executeTakeFirst();
    if (existing && existing.confirmed_at && !existing.unsubscribed_at) return { mailed: false };
    if (existing && !existing.confirmed_at && !existing.unsubscribed_at && now.getTime() - existing.confirmation_sent_at.getTime() < RESEND_AFTER_MS) return { mailed: false };
    const token = newToken();
    let id: string;
    if (existing) {
      id = existing.id;
      await trx.updateTable('status_subscribers').set({ lang: input.lang, confirm_token_hash: hash(token), confirmation_sent_at: now, confirmed_at: null, unsubscribed_at: null }).where('id', '=', id).execute();
    } else {
      id = randomUUID();
      // The lock above holds no row for an address not stored yet: a second request for it (a
      // double click) can get here at the same time. The first one's e-mail serves both.
      const inserted = await trx
        .insertInto('status_subscribers')
        .values({ id, email, lang: input.lang, confirm_token_hash: hash(token), unsubscribe_token: newToken(), created_at: now, confirmation_sent_at: now, confirmed_at: null, unsubscribed_at: null })
        .onConflict((oc) => oc.expression(sql`lower(email)`).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inserted) return { mailed: false };
    }
    const link = `${ctx.publicUrl}/status/subscribe/confirm?token=${token}`;
    const ja = [`障害情報ページ（${ctx.providerName}）のメール配信のお申し込みを受け付けました。`, '下記のリンクを開いて登録を完了してください。お心当たりのない場合は、このメールを破棄してください。', '', link];
    const en = [`We received a request to e-mail you the status posts of ${ctx.providerName}.`, 'Open the link below to confirm. If you did not ask for this, ignore this e-mail.', '', link];
    await queueEmail(trx, clock, {
      dedupeKey: `status-confirm:${id}:${hash(token).slice(0, 16)}`,
      to: email,
      subject: input.lang === 'ja' ? '【確認】障害情報メール配信のご登録 / Confirm your subscription' : 'Confirm your subscription to status e-mails / 【確認】障害情報メール配信のご登録',
      text: (input.lang === 'ja' ? [...ja, '', '----', '', ...en] : [...en, '', '----', '', ...ja]).join('\n'),
    });
    await ctx.kick?.(trx);
    return { mailed: true };
  });
}

export async function confirmSubscription(db: DbOrTx, clock: Clock, token: string): Promise<{ lang: Locale } | null> {
  if (!token) return null;
  const row = await db
    .updateTable('status_subscribers')
    .set({ confirmed_at: clock.now() })
    .where('confirm_token_hash', '=', hash(token))
    .where('unsubscribed_at', 'is', null)
    .returning(['lang'])
    .executeTakeFirst();
  return row ? { lang: row.lang } : null;
}

export async function unsubscribe(db: DbOrTx, clock: Clock, token: string): Promise<{ lang: Locale } | null> {
  if (!token) return null;
  const row = await db.updateTable('status_subscribers').set({ unsubscribed_at: clock.now() }).where('unsubscribe_token', '=', token).returning(['lang']).executeTakeFirst();
  return row ? { lang: row.lang } : null;
}

export interface Subscriber {
  id: string;
  email: string;
  lang: Locale;
  unsubscribeToken: string;
}

export async function confirmedSubscribers(db: DbOrTx): Promise<Subscriber[]> {
  const rows = await db.selectFrom('status_subscribers').select(['id', 'email', 'lang', 'unsubscribe_token']).where('confirmed_at', 'is not', null).where('unsubscribed_at', 'is', null).orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, email: r.email, lang: r.lang, unsubscribeToken: r.unsubscribe_token }));
}
