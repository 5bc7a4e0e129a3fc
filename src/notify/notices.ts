import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { appendAudit, systemActor, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import { errors, HokanError } from '../core/errors.js';
import { bi, type Bilingual, type Locale } from '../core/i18n.js';
import { getIncident, recordMilestone, type IncidentView } from '../incidents/incidents.js';
import { findStop, listStops, reasonLabel, stopState, type StopRecord } from '../incidents/stops.js';
import { incidentComponentMap, listComponents, stopComponentMap } from './components.js';
import { customersInScope, noticeRecipients } from './contacts.js';
import { queueEmails, type QueueEmailInput } from './outbox.js';
import { confirmedSubscribers } from './subscriptions.js';
import { checkNoticeFields, composeEmail, renderIncidentNotice, renderStopNotice, stageLabel, type IncidentFacts, type IncidentStage, type NoticeFields, type RenderedNotice, type StopStage } from './templates.js';
import { enqueueWebhookDeliveries } from './webhooks.js';

/**
 * R8.1, R8.2, R7.2, R7.3: notices. Posting one is a single transaction: the post (what the status
 * page, the Atom feed and the webhooks show), the incident's milestone through the incidents
 * domain, one outbox e-mail per address of every affected customer's contacts and per confirmed
 * public subscriber (dedupe key notice:<post>:<address>, so no restart or second instance sends
 * twice), one proof-of-notice row per customer and address, and one webhook delivery per endpoint.
 */

export type PostStage = IncidentStage | StopStage;

export interface NoticeContext {
  providerName: string;
  /** Base URL of the public pages (status page, feed, unsubscribe links), without a trailing slash. */
  publicUrl: string;
  /** Called in the posting transaction once e-mails and webhooks are queued (e.g. to run delivery now). */
  kick?: (trx: Tx) => Promise<void>;
}

export interface NoticePostView {
  id: string;
  incidentId: string | null;
  stopId: string | null;
  stage: PostStage;
  seq: number;
  label: Bilingual;
  subject: Bilingual;
  body: Bilingual;
  postedAt: string;
  postedBy: string;
}

export interface DeliverySummary {
  recipients: number;
  queued: number;
  sent: number;
  failed: number;
}

type PostRow = { id: string; incident_id: string | null; stop_id: string | null; stage: PostStage; seq: number; subject_ja: string; subject_en: string; body_ja: string; body_en: string; public: boolean; posted_at: Date; posted_by: string };

const STOP_LABELS: Record<StopStage, Bilingual> = {
  stop_planned: bi('計画停止', 'Planned stop'),
  stop_reminder: bi('計画停止（事前のご案内）', 'Planned stop (reminder)'),
  stop_emergency: bi('緊急停止', 'Emergency stop'),
};

export function labelOf(stage: PostStage, seq: number): Bilingual {
  return stage.startsWith('stop_') ? STOP_LABELS[stage as StopStage] : stageLabel(stage as IncidentStage, seq);
}

export function postView(r: PostRow): NoticePostView {
  return {
    id: r.id,
    incidentId: r.incident_id,
    stopId: r.stop_id,
    stage: r.stage,
    seq: r.seq,
    label: labelOf(r.stage, r.seq),
    subject: bi(r.subject_ja, r.subject_en),
    body: bi(r.body_ja, r.body_en),
    postedAt: r.posted_at.toISOString(),
    postedBy: r.posted_by,
  };
}

const statusUrl = (ctx: NoticeContext) => `${ctx.publicUrl}/status`;
const FAN_OUT_CHUNK = 1000;

/** Stores the post and queues every e-mail, proof row and webhook delivery for it (inside trx). */
async function storeAndFanOut(
  trx: Tx,
  clock: Clock,
  actor: Actor,
  post: { incidentId: string | null; stopId: string | null; stage: PostStage; seq: number; notice: RenderedNotice },
  customerIds: string[],
  ctx: NoticeContext,
): Promise<{ post: NoticePostView; recipients: number; emails: number }> {
  const now = clock.now();
  const row = await trx
    .insertInto('notice_posts')
    .values({
      id: randomUUID(),
      incident_id: post.incidentId,
      stop_id: post.stopId,
      stage: post.stage,
      seq: post.seq,
      subject_ja: post.notice.subject.ja,
      subject_en: post.notice.subject.en,
      body_ja: post.notice.body.ja,
      body_en: post.notice.body.en,
      public: true,
      posted_at: now,
      posted_by: actor.label,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  const recipients = await noticeRecipients(trx, customerIds);
  const emails = new Map<string, QueueEmailInput>();
  const proof: Array<{ post_id: string; customer_id: string | null; address: string; lang: Locale; source: 'contact' | 'customer' | 'admin' | 'subscriber'; dedupe_key: string; queued_at: Date }> = [];
  const composed = new Map<Locale, { subject: string; text: string }>();
  const compose = (lang: Locale) => {
    let c = composed.get(lang);
    if (!c) composed.set(lang, (c = composeEmail(post.notice, lang)));
    return c;
  };
  for (const r of recipients) {
    const key = `notice:${row.id}:${r.address.toLowerCase()}`;
    if (!emails.has(key)) emails.set(key, { dedupeKey: key, to: r.address, ...compose(r.lang) });
    proof.push({ post_id: row.id, customer_id: r.customerId, address: r.address, lang: r.lang, source: r.source, dedupe_key: key, queued_at: now });
  }
  for (const s of await confirmedSubscribers(trx)) {
    const key = `notice:${row.id}:${s.email.toLowerCase()}`;
    if (emails.has(key)) continue;
    const link = `${ctx.publicUrl}/status/unsubscribe?token=${s.unsubscribeToken}`;
    emails.set(key, { dedupeKey: key, to: s.email, ...composeEmail(post.notice, s.lang, bi(`配信停止: ${link}`, `Unsubscribe: ${link}`)) });
    proof.push({ post_id: row.id, customer_id: null, address: s.email, lang: s.lang, source: 'subscriber', dedupe_key: key, queued_at: now });
  }
  for (let i = 0; i < proof.length; i += FAN_OUT_CHUNK) await trx.insertInto('notice_recipients').values(proof.slice(i, i + FAN_OUT_CHUNK)).execute();
  const queued = await queueEmails(trx, clock, [...emails.values()]);
  const view = postView(row);
  await enqueueWebhookDeliveries(trx, clock, row.id, {
    post: { id: view.id, kind: view.incidentId ? 'incident' : 'stop', incidentId: view.incidentId, stopId: view.stopId, stage: view.stage, label: view.label, subject: view.subject, body: view.body, postedAt: view.postedAt },
  });
  await appendAudit(trx, clock, {
    actor,
    action: 'notice.posted',
    subjectType: post.incidentId ? 'incident' : 'service_stop',
    subjectId: (post.incidentId ?? post.stopId)!,
    details: { postId: row.id, stage: post.stage, seq: post.seq, customers: customerIds.length, recipients: proof.length, emails: queued },
  });
  await ctx.kick?.(trx);
  return { post: view, recipients: proof.length, emails: queued };
}

// --- incident notices ------------------------------------------------------------------------

export interface IncidentNoticeInput {
  stage: IncidentStage;
  fields: NoticeFields;
}

async function componentNames(db: DbOrTx, keys: readonly string[]): Promise<Bilingual[]> {
  if (keys.length === 0) return [];
  const all = await listComponents(db);
  return all.filter((c) => keys.includes(c.key)).map((c) => c.name);
}

interface Plan {
  incident: IncidentView;
  seq: number;
  facts: IncidentFacts;
}

async function plan(db: DbOrTx, clock: Clock, incidentId: string, input: IncidentNoticeInput): Promise<Plan> {
  const incident = await getIncident(db, clock, incidentId);
  const existing = await db.selectFrom('notice_posts').select(['stage', 'seq']).where('incident_id', '=', incidentId).execute();
  const has = (s: PostStage) => existing.some((e) => e.stage === s);
  const refuse = (ja: string, en: string) => new HokanError('invalid_transition', bi(ja, en), [{ path: 'stage', message: en }]);
  if (input.stage === 'first' && has('first')) throw refuse('第一報は既に掲載されています。続報（update）として掲載してください。', 'The first notice is already posted; post an update.');
  if (input.stage !== 'first' && !has('first')) throw refuse('先に第一報を掲載してください。', 'Post the first notice first.');
  if ((input.stage === 'first' || input.stage === 'update') && has('recovery')) throw refuse('復旧通知（最終報）の後に続報は掲載できません。', 'No update after the recovery notice (final report).');
  if (input.stage === 'recovery' && has('recovery')) throw refuse('復旧通知は既に掲載されています。', 'The recovery notice is already posted.');
  if (input.stage === 'report' && !has('recovery')) throw refuse('障害報告書は復旧通知（最終報）の後に掲載してください。', 'Post the report after the recovery notice.');
  if (input.stage === 'report' && has('report')) throw refuse('障害報告書は既に掲載されています。', 'The report is already posted.');
  const seq = existing.reduce((m, e) => Math.max(m, e.seq), 0) + 1;
  const keys = (await incidentComponentMap(db, [incidentId])).get(incidentId) ?? [];
  const facts: IncidentFacts = {
    title: incident.title,
    occurredAt: new Date(incident.times.occurred),
    recoveredAt: incident.times.recovered ? new Date(incident.times.recovered) : null,
    components: await componentNames(db, keys),
  };
  checkNoticeFields(input.stage, input.fields, facts);
  if (input.fields.recoveredAt && input.fields.recoveredAt.getTime() > clock.now().getTime()) throw errors.invalidField('recoveredAt', '未来の時刻は指定できません。', 'must not be in the future');
  return { incident, seq, facts };
}

/** What the notice would say, without posting it. */
export async function previewIncidentNotice(db: DbOrTx, clock: Clock, incidentId: string, input: IncidentNoticeInput, ctx: NoticeContext): Promise<RenderedNotice & { seq: number; emails: Record<Locale, { subject: string; text: string }> }> {
  const p = await plan(db, clock, incidentId, input);
  const notice = renderIncidentNotice(input.stage, p.seq, p.facts, input.fields, { providerName: ctx.providerName, statusUrl: statusUrl(ctx) });
  return { ...notice, seq: p.seq, emails: { ja: composeEmail(notice, 'ja'), en: composeEmail(notice, 'en') } };
}

const MILESTONE_OF = { first: 'first_notice', recovery: 'recovery_notice', report: 'report' } as const;
const RECORDED_AT = { first: 'firstNotice', recovery: 'recoveryNotice', report: 'report' } as const;

/** R8.1: posts an incident notice (see the module comment); returns the post and how many it reaches. */
export async function postIncidentNotice(db: Db, clock: Clock, actor: Actor, incidentId: string, input: IncidentNoticeInput, ctx: NoticeContext): Promise<{ post: NoticePostView; recipients: number; emails: number }> {
  return db.transaction().execute(async (trx) => {
    // One poster per incident at a time, so the numbering (第二報, 第三報 …) cannot collide.
    await sql`select pg_advisory_xact_lock(hashtext(${`notice:${incidentId}`}))`.execute(trx);
    const p = await plan(trx, clock, incidentId, input);
    if (input.stage === 'recovery' && !p.facts.recoveredAt) {
      await recordMilestone(trx, clock, actor, incidentId, 'recovered', input.fields.recoveredAt);
      p.facts.recoveredAt = input.fields.recoveredAt ?? clock.now();
    }
    const notice = renderIncidentNotice(input.stage, p.seq, p.facts, input.fields, { providerName: ctx.providerName, statusUrl: statusUrl(ctx) });
    if (input.stage !== 'update' && !p.incident.times[RECORDED_AT[input.stage]]) await recordMilestone(trx, clock, actor, incidentId, MILESTONE_OF[input.stage]);
    const customerIds = await customersInScope(trx, p.incident.customerIds);
    return storeAndFanOut(trx, clock, actor, { incidentId, stopId: null, stage: input.stage, seq: p.seq, notice }, customerIds, ctx);
  });
}

// --- stop notices ----------------------------------------------------------------------------

async function stopFacts(db: DbOrTx, s: StopRecord) {
  const keys = (await stopComponentMap(db, [s.id])).get(s.id) ?? [];
  return { kind: s.kind, reason: reasonLabel(s.kind, s.reason), description: s.description, startsAt: s.startsAt, endsAt: s.endsAt, components: await componentNames(db, keys) };
}

// Two sweeps (instances) never post the same stop notice: this lock, then the unique (stop, stage).
const STOP_NOTICE_LOCK = 7_310_811;
const EMERGENCY_NOTICE_WINDOW_MS = 24 * 3_600_000;

/** Posts one stop notice unless it was posted before; returns the post or null. */
export async function postStopNotice(db: Db, clock: Clock, actor: Actor, stopId: string, stage: StopStage, ctx: NoticeContext): Promise<NoticePostView | null> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${STOP_NOTICE_LOCK})`.execute(trx);
    const done = await trx.selectFrom('notice_posts').select('id').where('stop_id', '=', stopId).where('stage', '=', stage).executeTakeFirst();
    if (done) return null;
    const s = await findStop(trx, stopId);
    if (!s) throw errors.notFound('停止 / stop', stopId);
    const notice = renderStopNotice(stage, await stopFacts(trx, s), { providerName: ctx.providerName, statusUrl: statusUrl(ctx) });
    const customerIds = await customersInScope(trx, s.customerIds ?? 'all');
    return (await storeAndFanOut(trx, clock, actor, { incidentId: null, stopId, stage, seq: 1, notice }, customerIds, ctx)).post;
  });
}

/**
 * R7.2, R7.3: the stop notices due now, each exactly once — a planned stop's notice when it is
 * scheduled (before it starts), its reminder once within `reminderLeadMs` of the start (skipped
 * when the stop itself was announced inside that window: the notice is the reminder), and an
 * emergency stop's notice when it starts (only for stops started in the last 24 h).
 */
export async function sendDueStopNotices(db: Db, clock: Clock, ctx: NoticeContext & { reminderLeadMs: number }): Promise<NoticePostView[]> {
  const now = clock.now();
  const stops = await listStops(db);
  if (stops.length === 0) return [];
  const posted = await db.selectFrom('notice_posts').select(['stop_id', 'stage']).where('stop_id', 'in', stops.map((s) => s.id)).execute();
  const has = (id: string, stage: StopStage) => posted.some((p) => p.stop_id === id && p.stage === stage);
  const actor = systemActor('notify.stop-notices');
  const out: NoticePostView[] = [];
  for (const s of stops) {
    const state = stopState(s, now);
    const due: StopStage[] = [];
    // A stop scheduled at short notice (an admin's override) can start before a sweep has run, or
    // the queue can be behind: its notice still goes out while it is in force, late rather than never.
    // Its post's time, against the stop's start, shows the notice was late.
    if (s.kind === 'planned' && state === 'in_progress' && !has(s.id, 'stop_planned')) due.push('stop_planned');
    if (s.kind === 'planned' && state === 'scheduled') {
      if (!has(s.id, 'stop_planned')) due.push('stop_planned');
      const windowStart = s.startsAt.getTime() - ctx.reminderLeadMs;
      const announced = (s.announcedAt ?? s.createdAt).getTime();
      if (now.getTime() >= windowStart && announced < windowStart && !has(s.id, 'stop_reminder')) due.push('stop_reminder');
    }
    if (s.kind === 'emergency' && now.getTime() - s.startsAt.getTime() <= EMERGENCY_NOTICE_WINDOW_MS && !has(s.id, 'stop_emergency')) due.push('stop_emergency');
    for (const stage of due) {
      const p = await postStopNotice(db, clock, actor, s.id, stage, ctx);
      if (p) out.push(p);
    }
  }
  return out;
}

// --- reads -----------------------------------------------------------------------------------

const deliveryColumns = ['r.address', 'r.lang', 'r.source', 'r.queued_at', 'e.state', 'e.attempts', 'e.sent_at', 'e.message_id', 'e.last_error', 'e.next_attempt_at'] as const;

export interface RecipientDelivery {
  address: string;
  lang: Locale;
  source: string;
  queuedAt: string;
  state: 'queued' | 'sent' | 'failed';
  attempts: number;
  /** When the SMTP server accepted the message, and its Message-ID (the proof of notice). */
  acceptedAt: string | null;
  messageId: string | null;
  lastError: string | null;
}

type DeliveryRow = { address: string; lang: Locale; source: string; queued_at: Date; state: 'queued' | 'sent' | 'failed' | null; attempts: number | null; sent_at: Date | null; message_id: string | null; last_error: string | null };
const deliveryView = (r: DeliveryRow): RecipientDelivery => ({
  address: r.address,
  lang: r.lang,
  source: r.source,
  queuedAt: r.queued_at.toISOString(),
  state: r.state ?? 'queued',
  attempts: r.attempts ?? 0,
  acceptedAt: r.sent_at?.toISOString() ?? null,
  messageId: r.message_id,
  lastError: r.last_error,
});

/** An incident's posts, oldest first, each with a per-recipient delivery summary (operators). */
export async function listIncidentNotices(db: DbOrTx, clock: Clock, incidentId: string): Promise<Array<NoticePostView & { delivery: DeliverySummary }>> {
  await getIncident(db, clock, incidentId);
  const posts = await db.selectFrom('notice_posts').selectAll().where('incident_id', '=', incidentId).orderBy('seq').execute();
  if (posts.length === 0) return [];
  const counts = await db
    .selectFrom('notice_recipients as r')
    .leftJoin('outbound_emails as e', 'e.dedupe_key', 'r.dedupe_key')
    .select(['r.post_id', 'e.state', (eb) => eb.fn.countAll<string>().as('n')])
    .where('r.post_id', 'in', posts.map((p) => p.id))
    .groupBy(['r.post_id', 'e.state'])
    .execute();
  return posts.map((p) => {
    const mine = counts.filter((c) => c.post_id === p.id);
    const n = (state: string) => mine.filter((c) => (c.state ?? 'queued') === state).reduce((a, c) => a + Number(c.n), 0);
    return { ...postView(p), delivery: { recipients: mine.reduce((a, c) => a + Number(c.n), 0), queued: n('queued'), sent: n('sent'), failed: n('failed') } };
  });
}

/** The notices addressed to one customer, newest first, with that customer's recipients only. */
export async function listCustomerNotices(db: DbOrTx, customerId: string): Promise<Array<NoticePostView & { recipients: RecipientDelivery[] }>> {
  const rows = await db
    .selectFrom('notice_recipients as r')
    .leftJoin('outbound_emails as e', 'e.dedupe_key', 'r.dedupe_key')
    .select(['r.post_id', ...deliveryColumns])
    .where('r.customer_id', '=', customerId)
    .orderBy('r.queued_at', 'desc')
    .limit(5000)
    .execute();
  const ids = [...new Set(rows.map((r) => r.post_id))];
  if (ids.length === 0) return [];
  const posts = await db.selectFrom('notice_posts').selectAll().where('id', 'in', ids).orderBy('posted_at', 'desc').execute();
  return posts.map((p) => ({ ...postView(p), recipients: rows.filter((r) => r.post_id === p.id).map(deliveryView) }));
}

/** R7.2: proof of notice of a stop to one customer — what was sent, when queued, when accepted, with which Message-ID. */
export async function stopNoticeProof(db: DbOrTx, stopId: string, customerId: string): Promise<{ stopId: string; customerId: string; notices: Array<NoticePostView & { recipients: RecipientDelivery[] }> }> {
  const stop = await findStop(db, stopId);
  if (!stop || (stop.customerIds !== null && !stop.customerIds.includes(customerId))) throw errors.notFound('停止 / stop', stopId);
  const posts = await db.selectFrom('notice_posts').selectAll().where('stop_id', '=', stopId).orderBy('posted_at').execute();
  const rows = posts.length
    ? await db
        .selectFrom('notice_recipients as r')
        .leftJoin('outbound_emails as e', 'e.dedupe_key', 'r.dedupe_key')
        .select(['r.post_id', ...deliveryColumns])
        .where('r.customer_id', '=', customerId)
        .where('r.post_id', 'in', posts.map((p) => p.id))
        .orderBy('r.address')
        .execute()
    : [];
  return { stopId, customerId, notices: posts.map((p) => ({ ...postView(p), recipients: rows.filter((r) => r.post_id === p.id).map(deliveryView) })) };
}

/** Public posts, newest first (the Atom feed). */
export async function listPublicPosts(db: DbOrTx, limit = 50): Promise<NoticePostView[]> {
  return (await db.selectFrom('notice_posts').selectAll().where('public', '=', true).orderBy('posted_at', 'desc').orderBy('seq', 'desc').limit(limit).execute()).map(postView);
}

/** Public posts of these incidents, oldest first per incident. */
export async function incidentPosts(db: DbOrTx, incidentIds: readonly string[]): Promise<Map<string, NoticePostView[]>> {
  const out = new Map<string, NoticePostView[]>();
  if (incidentIds.length === 0) return out;
  const rows = await db.selectFrom('notice_posts').selectAll().where('incident_id', 'in', [...incidentIds]).where('public', '=', true).orderBy('seq').execute();
  for (const r of rows) out.set(r.incident_id!, [...(out.get(r.incident_id!) ?? []), postView(r)]);
  return out;
}
