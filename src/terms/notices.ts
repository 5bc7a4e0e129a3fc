import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { TermsNoticesTable } from '../core/db/schema.js';
import { getCustomer } from '../contracts/customers.js';
import { errors } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { formatJapanDateTime } from '../core/japan-time.js';
import { customersUnderContract, notifyChange, type NotifyResult } from './notifications.js';
import { assertTopicExists, parseTopic, topicLabel } from './topics.js';
import { allDocuments } from './versions.js';

/**
 * R1.2: notices (お知らせ) the provider posts on the support site (サポートサイト) or publishes in an
 * edition of the Support Guide (サポートガイド). Each is about one topic, addressed to all customers
 * or to chosen ones, and forms part of the terms. Drafts can be edited or deleted; a published
 * notice is immutable (the database refuses changes) and notified at once (R2.1).
 */

export type NoticeRow = Selectable<TermsNoticesTable>;
export const NOTICE_CHANNELS = ['support_site', 'support_guide'] as const;
export type NoticeChannel = (typeof NOTICE_CHANNELS)[number];
export const CHANNEL_LABELS: Record<NoticeChannel, Bilingual> = {
  support_site: bi('サポートサイト', 'support site'),
  support_guide: bi('サポートガイド', 'Support Guide'),
};

export interface NoticeInput {
  channel: NoticeChannel;
  /** Required for the Support Guide: the edition the notice is published in. */
  guideEdition?: string | null;
  topic: string;
  titleJa: string;
  bodyJa: string;
  titleEn?: string | null;
  bodyEn?: string | null;
  effectiveAt: Date;
  /** Omitted: every customer. */
  customerIds?: string[];
}

export interface NoticeView {
  id: string;
  channel: NoticeChannel;
  channelLabel: Bilingual;
  guideEdition: string | null;
  topic: string;
  title: { ja: string; en: string | null };
  body: { ja: string; en: string | null };
  effectiveAt: string;
  state: 'draft' | 'published';
  publishedAt: string | null;
  audience: 'all' | 'chosen';
  /** Operators see whom a chosen-audience notice is for; a customer sees only itself. */
  customerIds: string[] | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

/** Who looks: an operator, or a customer (who must never learn of other addressees). */
export type Viewer = { kind: 'operator' } | { kind: 'customer'; customerId: string };

export function noticeView(r: NoticeRow, customerIds: string[], viewer: Viewer): NoticeView {
  return {
    id: r.id,
    channel: r.channel,
    channelLabel: CHANNEL_LABELS[r.channel],
    guideEdition: r.guide_edition,
    topic: r.topic,
    title: { ja: r.title_ja, en: r.title_en },
    body: { ja: r.body_ja, en: r.body_en },
    effectiveAt: r.effective_at.toISOString(),
    state: r.state,
    publishedAt: r.published_at?.toISOString() ?? null,
    audience: r.all_customers ? 'all' : 'chosen',
    customerIds: r.all_customers ? null : viewer.kind === 'operator' ? customerIds : [viewer.customerId],
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

async function validate(db: DbOrTx, input: NoticeInput): Promise<{ topic: string; customerIds: string[] | null }> {
  const topic = parseTopic(input.topic);
  assertTopicExists(topic, await allDocuments(db));
  if (!(NOTICE_CHANNELS as readonly string[]).includes(input.channel)) throw errors.invalidField('channel', '掲載先が不明です。', `must be one of ${NOTICE_CHANNELS.join(', ')}`);
  const guide = input.guideEdition?.trim() || null;
  if (input.channel === 'support_guide' && !guide) throw errors.invalidField('guideEdition', 'サポートガイドの版を指定してください。', 'the Support Guide edition is required for channel support_guide');
  if (input.channel === 'support_site' && guide) throw errors.invalidField('guideEdition', 'サポートサイトのお知らせには版を指定しません。', 'only Support Guide notices have an edition');
  for (const [field, value, max] of [['titleJa', input.titleJa, 200], ['titleEn', input.titleEn, 200]] as const) {
    if (value === undefined || value === null) continue;
    if (value.trim() === '' || value.length > max || /[\r\n]/.test(value) || CONTROL.test(value)) throw errors.invalidField(field, `1〜${max}文字の一行で入力してください。`, `must be one line of 1–${max} characters`);
  }
  for (const [field, value] of [['bodyJa', input.bodyJa], ['bodyEn', input.bodyEn]] as const) {
    if (value === undefined || value === null) continue;
    if (value.trim() === '' || value.length > 20_000 || CONTROL.test(value)) throw errors.invalidField(field, '1〜20000文字で、制御文字を含められません。', 'must be 1–20000 characters without control characters');
  }
  if (Number.isNaN(input.effectiveAt.getTime())) throw errors.invalidField('effectiveAt', '発効日時が正しくありません。', 'is not a valid date-time');
  let customerIds: string[] | null = null;
  if (input.customerIds) {
    customerIds = [...new Set(input.customerIds)];
    if (customerIds.length === 0) throw errors.invalidField('customerIds', '宛先のお客様を1件以上指定するか、省略して全員宛てにしてください。', 'name at least one customer, or omit it to address every customer');
    for (const id of customerIds) {
      try {
        await getCustomer(db, id);
      } catch {
        throw errors.invalidField('customerIds', `不明なお客様: ${id}`, `unknown customer ${id}`);
      }
    }
  }
  return { topic: topic.key, customerIds };
}

async function addressees(db: DbOrTx, noticeId: string): Promise<string[]> {
  return (await db.selectFrom('terms_notice_customers').select('customer_id').where('notice_id', '=', noticeId).orderBy('customer_id').execute()).map((r) => r.customer_id);
}

async function lockDraft(trx: Tx, id: string): Promise<NoticeRow> {
  const row = await trx.selectFrom('terms_notices').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
  if (!row) throw errors.notFound('お知らせ / notice', id);
  if (row.state === 'published') throw errors.conflict('公開済みのお知らせは変更できません。新しいお知らせを公開してください。', 'A published notice cannot change; publish a new notice instead.');
  return row;
}

export async function createNotice(db: Db, clock: Clock, actor: Actor, input: NoticeInput): Promise<NoticeView> {
  const v = await validate(db, input);
  return db.transaction().execute(async (trx) => {
    const now = clock.now();
    const row = await trx
      .insertInto('terms_notices')
      .values({
        id: randomUUID(),
        channel: input.channel,
        guide_edition: input.guideEdition?.trim() || null,
        topic: v.topic,
        title_ja: input.titleJa.trim(),
        body_ja: input.bodyJa,
        title_en: input.titleEn?.trim() || null,
        body_en: input.bodyEn || null,
        effective_at: input.effectiveAt,
        all_customers: v.customerIds === null,
        state: 'draft',
        published_at: null,
        published_by: null,
        created_by: actor.label,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    if (v.customerIds) await trx.insertInto('terms_notice_customers').values(v.customerIds.map((customer_id) => ({ notice_id: row.id, customer_id }))).execute();
    await appendAudit(trx, clock, { actor, action: 'terms.notice_drafted', subjectType: 'terms_notice', subjectId: row.id, details: { topic: row.topic, channel: row.channel, audience: v.customerIds ?? 'all' } });
    return noticeView(row, v.customerIds ?? [], { kind: 'operator' });
  });
}

export async function updateNotice(db: Db, clock: Clock, actor: Actor, id: string, input: NoticeInput): Promise<NoticeView> {
  const v = await validate(db, input);
  return db.transaction().execute(async (trx) => {
    await lockDraft(trx, id);
    const row = await trx
      .updateTable('terms_notices')
      .set({
        channel: input.channel,
        guide_edition: input.guideEdition?.trim() || null,
        topic: v.topic,
        title_ja: input.titleJa.trim(),
        body_ja: input.bodyJa,
        title_en: input.titleEn?.trim() || null,
        body_en: input.bodyEn || null,
        effective_at: input.effectiveAt,
        all_customers: v.customerIds === null,
        updated_at: clock.now(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.deleteFrom('terms_notice_customers').where('notice_id', '=', id).execute();
    if (v.customerIds) await trx.insertInto('terms_notice_customers').values(v.customerIds.map((customer_id) => ({ notice_id: id, customer_id }))).execute();
    await appendAudit(trx, clock, { actor, action: 'terms.notice_edited', subjectType: 'terms_notice', subjectId: id, details: { topic: row.topic, channel: row.channel, audience: v.customerIds ?? 'all' } });
    return noticeView(row, v.customerIds ?? [], { kind: 'operator' });
  });
}

export async function deleteNotice(db: Db, clock: Clock, actor: Actor, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await lockDraft(trx, id);
    await trx.deleteFrom('terms_notices').where('id', '=', id).execute();
    await appendAudit(trx, clock, { actor, action: 'terms.notice_draft_deleted', subjectType: 'terms_notice', subjectId: id, details: { topic: row.topic, title: row.title_ja } });
  });
}

function noticeMailText(n: NoticeRow, to: { customerName: string; displayName: string }): string {
  const where = n.channel === 'support_guide' ? `サポートガイド（${n.guide_edition}）` : 'サポートサイト';
  const topic = topicLabel(parseTopic(n.topic));
  return [
    `${to.customerName}`,
    `${to.displayName} 様`,
    '',
    `${where}に次のお知らせを掲載しました。このお知らせは利用規約の一部を構成し、利用規約に優先して適用されます（第1条第2項・第3項）。`,
    '',
    `件名: ${n.title_ja}`,
    `対象: ${topic.ja}`,
    `発効: ${formatJapanDateTime(n.effective_at)}`,
    '',
    n.body_ja,
    '',
    '内容に同意いただけない場合は、お客様ポータルからお申し出ください。誠意をもって協議いたします（第2条第3項）。',
    '',
    '----',
    '',
    `Dear ${to.displayName},`,
    '',
    `A notice has been posted on the ${n.channel === 'support_guide' ? `Support Guide (${n.guide_edition})` : 'support site'}. It forms part of the terms of use and prevails over them (Art. 1.2, 1.3).`,
    '',
    `Title: ${n.title_en ?? n.title_ja}`,
    `Topic: ${topic.en}`,
    `Effective: ${n.effective_at.toISOString()}`,
    '',
    n.body_en ?? '(The notice is in Japanese above.)',
    '',
    'If you do not agree, tell us through the customer portal and we will consult in good faith (Art. 2.3).',
    '',
  ].join('\n');
}

/** R1.2, R2.1: publishes a draft notice, notifying its addressees in the same transaction. */
export async function publishNotice(db: Db, clock: Clock, actor: Actor, id: string): Promise<{ notice: NoticeView; notified: NotifyResult }> {
  return db.transaction().execute(async (trx) => {
    await lockDraft(trx, id);
    const row = await trx.updateTable('terms_notices').set({ state: 'published', published_at: clock.now(), published_by: actor.label }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    const chosen = await addressees(trx, id);
    const customers = row.all_customers ? await customersUnderContract(trx) : chosen;
    const subject = `【お知らせ】${row.title_ja} / ${row.title_en ?? 'Notice from the provider'}`;
    const notified = await notifyChange(trx, clock, { kind: 'notice', id, subject, text: (to) => noticeMailText(row, to) }, customers);
    await appendAudit(trx, clock, { actor, action: 'terms.notice_published', subjectType: 'terms_notice', subjectId: id, details: { topic: row.topic, channel: row.channel, effectiveAt: row.effective_at.toISOString(), audience: row.all_customers ? 'all' : chosen, customers: notified.customers, emails: notified.emails } });
    return { notice: noticeView(row, chosen, { kind: 'operator' }), notified };
  });
}

/** One notice as the viewer may see it: a customer sees only published notices addressed to it (else not found). */
export async function getNotice(db: DbOrTx, id: string, viewer: Viewer): Promise<NoticeView> {
  const row = await db.selectFrom('terms_notices').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('お知らせ / notice', id);
  const ids = await addressees(db, id);
  if (viewer.kind === 'customer' && (row.state !== 'published' || (!row.all_customers && !ids.includes(viewer.customerId)))) throw errors.notFound('お知らせ / notice', id);
  return noticeView(row, ids, viewer);
}

/** Every notice, newest first (operators). */
export async function listNotices(db: DbOrTx, filter: { state?: 'draft' | 'published'; topic?: string } = {}): Promise<NoticeView[]> {
  let q = db.selectFrom('terms_notices').selectAll();
  if (filter.state) q = q.where('state', '=', filter.state);
  if (filter.topic) q = q.where('topic', '=', parseTopic(filter.topic).key);
  const rows = await q.orderBy('created_at', 'desc').limit(1000).execute();
  const out: NoticeView[] = [];
  for (const r of rows) out.push(noticeView(r, await addressees(db, r.id), { kind: 'operator' }));
  return out;
}

/** Published notice rows addressed to a customer (or to all), oldest publication first. */
export async function noticeRowsFor(db: DbOrTx, customerId: string, topics?: readonly string[]): Promise<NoticeRow[]> {
  let q = db
    .selectFrom('terms_notices')
    .selectAll()
    .where('state', '=', 'published')
    .where((eb) => eb.or([eb('all_customers', '=', true), eb('id', 'in', eb.selectFrom('terms_notice_customers').select('notice_id').where('customer_id', '=', customerId))]));
  if (topics) q = q.where('topic', 'in', [...topics]);
  return q.orderBy('published_at', 'asc').orderBy('effective_at', 'asc').orderBy('id', 'asc').execute();
}

/** R1.2: the published notices addressed to a customer, newest first (for the portal). */
export async function noticesForCustomer(db: DbOrTx, customerId: string): Promise<NoticeView[]> {
  return (await noticeRowsFor(db, customerId)).reverse().map((r) => noticeView(r, [customerId], { kind: 'customer', customerId }));
}
