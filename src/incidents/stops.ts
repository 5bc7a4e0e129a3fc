import { randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { ServiceStopsTable } from '../core/db/schema.js';
import { errors, HokanError } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { formatJapanDateTime, japanDateOf } from '../core/japan-time.js';

/** R7.2 ①–④: why a planned stop may be made. */
export const PLANNED_REASONS = {
  maintenance: bi('①保守', '① maintenance'),
  capacity: bi('②設備の増強', '② capacity increase'),
  software_upgrade: bi('③本ソフトウェアのバージョンアップ', '③ version upgrade of the Software'),
  other: bi('④その他合理的な理由', '④ other reasonable reason'),
} as const;
export type PlannedReason = keyof typeof PLANNED_REASONS;
export const PLANNED_REASON_CODES = Object.keys(PLANNED_REASONS) as [PlannedReason, ...PlannedReason[]];

/** R7.3 ①–⑥: what may cause an emergency stop without notice. */
export const EMERGENCY_CAUSES = {
  network_power: bi('①電気通信・電力・ネットワークの障害', '① telecom, power or network failure'),
  environment_failure: bi('②サービス提供環境の故障またはそのおそれ', '② predicted or actual failure of the service environment'),
  attack: bi('③不正アクセス・攻撃・傍受', '③ unauthorised access, attack or interception'),
  virus: bi('④コンピュータウイルスの防止', '④ virus prevention'),
  disaster: bi('⑤天災地変その他の事故', '⑤ natural disaster or other incident'),
  other: bi('⑥その他やむを得ない事由', '⑥ other unavoidable cause'),
} as const;
export type EmergencyCause = keyof typeof EMERGENCY_CAUSES;
export const EMERGENCY_CAUSE_CODES = Object.keys(EMERGENCY_CAUSES) as [EmergencyCause, ...EmergencyCause[]];

export type StopKind = 'planned' | 'emergency';
export type StopState = 'scheduled' | 'in_progress' | 'ended' | 'cancelled';

type StopRow = Selectable<ServiceStopsTable>;

/** A stop with its scope: `customerIds` null means every customer. */
export interface StopRecord {
  id: string;
  kind: StopKind;
  reason: string;
  description: string;
  startsAt: Date;
  endsAt: Date | null;
  customerIds: string[] | null;
  announcedAt: Date | null;
  overrideReason: string | null;
  endedAt: Date | null;
  cancelledAt: Date | null;
  createdBy: string;
  createdAt: Date;
  /** R7.3: the incident behind an emergency stop. */
  incidentId: string | null;
}

export interface StopView {
  id: string;
  kind: StopKind;
  reason: string;
  reasonLabel: Bilingual;
  description: string;
  startsAt: string;
  endsAt: string | null;
  scope: { allCustomers: boolean; customerIds: string[] };
  state: StopState;
  announcedAt: string | null;
  overrideReason: string | null;
  endedAt: string | null;
  cancelledAt: string | null;
  createdBy: string;
  createdAt: string;
  incidentId: string | null;
}

export function reasonLabel(kind: StopKind, reason: string): Bilingual {
  const labels: Record<string, Bilingual> = kind === 'planned' ? PLANNED_REASONS : EMERGENCY_CAUSES;
  return labels[reason] ?? bi(reason, reason);
}

/** The state follows from the times, plus an explicit end or cancellation. */
export function stopState(s: StopRecord, now: Date): StopState {
  if (s.cancelledAt) return 'cancelled';
  if (s.endedAt) return 'ended';
  if (now.getTime() < s.startsAt.getTime()) return 'scheduled';
  if (s.endsAt && now.getTime() >= s.endsAt.getTime()) return 'ended';
  return 'in_progress';
}

/** `visibleCustomerId` limits the scope shown to a customer to their own id (no other customer's ids leak). */
export function stopView(s: StopRecord, now: Date, visibleCustomerId?: string): StopView {
  const ids = s.customerIds ?? [];
  return {
    id: s.id,
    kind: s.kind,
    reason: s.reason,
    reasonLabel: reasonLabel(s.kind, s.reason),
    description: s.description,
    startsAt: s.startsAt.toISOString(),
    endsAt: s.endsAt?.toISOString() ?? null,
    scope: { allCustomers: s.customerIds === null, customerIds: visibleCustomerId === undefined ? ids : ids.filter((c) => c === visibleCustomerId) },
    state: stopState(s, now),
    announcedAt: s.announcedAt?.toISOString() ?? null,
    overrideReason: s.overrideReason,
    endedAt: s.endedAt?.toISOString() ?? null,
    cancelledAt: s.cancelledAt?.toISOString() ?? null,
    createdBy: s.createdBy,
    createdAt: s.createdAt.toISOString(),
    incidentId: s.incidentId,
  };
}

function fromRow(r: StopRow, customerIds: string[] | null): StopRecord {
  return {
    id: r.id,
    kind: r.kind,
    reason: r.reason,
    description: r.description,
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    customerIds,
    announcedAt: r.announced_at,
    overrideReason: r.override_reason,
    endedAt: r.ended_at,
    cancelledAt: r.cancelled_at,
    createdBy: r.created_by,
    createdAt: r.created_at,
    incidentId: r.incident_id,
  };
}

async function withScopes(db: DbOrTx, rows: StopRow[]): Promise<StopRecord[]> {
  const scoped = rows.filter((r) => !r.all_customers).map((r) => r.id);
  const links = scoped.length ? await db.selectFrom('service_stop_customers').select(['stop_id', 'customer_id']).where('stop_id', 'in', scoped).execute() : [];
  const byStop = new Map<string, string[]>();
  for (const l of links) byStop.set(l.stop_id, [...(byStop.get(l.stop_id) ?? []), l.customer_id]);
  return rows.map((r) => fromRow(r, r.all_customers ? null : (byStop.get(r.id) ?? []).sort()));
}

// --- the in-process cache of stops that are in force or still to come -------------------------

const CACHE_MS = 5_000;
const openStopsCache = new WeakMap<object, { loadedAt: number; stops: StopRecord[] }>();

function invalidate(db: Db): void {
  openStopsCache.delete(db);
}

/** Stops neither cancelled nor ended, from the partial index; cached for up to 5 s of clock time. */
async function openStops(db: Db, now: Date): Promise<StopRecord[]> {
  const hit = openStopsCache.get(db);
  const t = now.getTime();
  if (hit && t >= hit.loadedAt && t - hit.loadedAt <= CACHE_MS) return hit.stops;
  const rows = await db
    .selectFrom('service_stops')
    .selectAll()
    .where('cancelled_at', 'is', null)
    .where('ended_at', 'is', null)
    .where((eb) => eb.or([eb('ends_at', 'is', null), eb('ends_at', '>', now)]))
    .orderBy('starts_at')
    .execute();
  const stops = await withScopes(db, rows);
  openStopsCache.set(db, { loadedAt: t, stops });
  return stops;
}

const touches = (s: StopRecord, customerId: string) => s.customerIds === null || s.customerIds.includes(customerId);

/** R7.4: the stop in force now for this customer, or null. An emergency stop wins over a planned one. */
export async function activeStopFor(db: Db, clock: Clock, customerId: string): Promise<StopRecord | null> {
  const now = clock.now();
  const active = (await openStops(db, now)).filter((s) => touches(s, customerId) && stopState(s, now) === 'in_progress');
  if (active.length === 0) return null;
  const emergency = active.find((s) => s.kind === 'emergency');
  if (emergency) return emergency;
  return active.reduce((a, b) => ((b.endsAt?.getTime() ?? 0) > (a.endsAt?.getTime() ?? 0) ? b : a));
}

/** Seconds a client should wait: until the planned end, or 10 minutes while an emergency has no end. */
export function retryAfterSeconds(s: StopRecord, now: Date): number {
  if (!s.endsAt) return 600;
  return Math.max(1, Math.ceil((s.endsAt.getTime() - now.getTime()) / 1000));
}

function formatPeriod(start: Date, end: Date | null): { ja: string; en: string } {
  const from = formatJapanDateTime(start).replace(/ JST$/, '');
  if (!end) return { ja: `${from} JST 〜 （終了時刻未定）`, en: `since ${from} JST (end not yet known)` };
  const sameDay = japanDateOf(start) === japanDateOf(new Date(end.getTime() - 1));
  const to = sameDay ? formatJapanDateTime(end).slice(-9) : formatJapanDateTime(end);
  return { ja: `${from} 〜 ${to}`, en: `${from} – ${to}` };
}

/** The 503 the data API answers while a stop is in force (R7.4): what the stop is, when it ends. */
export function stopUnavailableError(s: StopRecord, now: Date): HokanError {
  const label = reasonLabel(s.kind, s.reason);
  const period = formatPeriod(s.startsAt, s.endsAt);
  const messages =
    s.kind === 'planned'
      ? bi(`計画停止中です（理由: ${label.ja}）。${period.ja}。${s.description}`, `The service is stopped for planned work (reason: ${label.en}), ${period.en}. ${s.description}`)
      : bi(`緊急停止中です（原因: ${label.ja}）。${period.ja}。${s.description}`, `The service is stopped in an emergency (cause: ${label.en}), ${period.en}. ${s.description}`);
  const err = new HokanError('service_unavailable', messages, [{ path: 'stop', message: s.id }]);
  err.retryAfterSeconds = retryAfterSeconds(s, now);
  return err;
}

// --- reads -----------------------------------------------------------------------------------

export async function findStop(db: DbOrTx, id: string): Promise<StopRecord | undefined> {
  const row = await db.selectFrom('service_stops').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? (await withScopes(db, [row]))[0] : undefined;
}

/** Every stop, or those touching one customer; newest first. */
export async function listStops(db: DbOrTx, filter: { customerId?: string } = {}): Promise<StopRecord[]> {
  let q = db.selectFrom('service_stops').selectAll().orderBy('starts_at', 'desc').limit(1000);
  const customerId = filter.customerId;
  if (customerId !== undefined) {
    q = q.where((eb) =>
      eb.or([
        eb('all_customers', '=', true),
        eb.exists(eb.selectFrom('service_stop_customers as sc').select('sc.stop_id').whereRef('sc.stop_id', '=', 'service_stops.id').where('sc.customer_id', '=', customerId)),
      ]),
    );
  }
  return withScopes(db, await q.execute());
}

// --- changes ---------------------------------------------------------------------------------

// Scheduling takes this transaction-scoped lock so two overlapping stops cannot both pass the check.
const STOP_SCHEDULE_LOCK = 7_310_701;

const stopError = (code: 'validation_failed' | 'conflict' | 'invalid_transition' | 'notice_too_short' | 'deadline_in_past', path: string, ja: string, en: string) =>
  new HokanError(code, bi(ja, en), [{ path, message: en }]);

async function checkCustomers(trx: Tx, customerIds: string[] | undefined): Promise<string[] | null> {
  if (customerIds === undefined) return null;
  const ids = [...new Set(customerIds)].sort();
  if (ids.length === 0) throw stopError('validation_failed', 'customerIds', '対象のお客様を1件以上指定してください（全員が対象なら省略）。', 'name at least one customer (omit it to stop for every customer)');
  const found = new Set((await trx.selectFrom('customers').select('id').where('id', 'in', ids).execute()).map((r) => r.id));
  const unknown = ids.filter((id) => !found.has(id));
  if (unknown.length) {
    throw new HokanError('validation_failed', bi(`customerIds: 存在しないお客様が含まれています: ${unknown.join(', ')}`, `customerIds: unknown customers: ${unknown.join(', ')}`), unknown.map((id) => ({ path: 'customerIds', message: `unknown customer ${id}` })));
  }
  return ids;
}

async function insertStop(trx: Tx, s: StopRecord): Promise<void> {
  await trx
    .insertInto('service_stops')
    .values({
      id: s.id,
      kind: s.kind,
      reason: s.reason,
      description: s.description,
      starts_at: s.startsAt,
      ends_at: s.endsAt,
      all_customers: s.customerIds === null,
      announced_at: s.announcedAt,
      override_reason: s.overrideReason,
      ended_at: null,
      cancelled_at: null,
      created_by: s.createdBy,
      created_at: s.createdAt,
      incident_id: s.incidentId,
    })
    .execute();
  if (s.customerIds?.length) {
    await trx.insertInto('service_stop_customers').values(s.customerIds.map((c) => ({ stop_id: s.id, customer_id: c }))).execute();
  }
}

/** The audit row's customer: set only when the stop concerns exactly one customer. */
const auditCustomer = (s: StopRecord) => (s.customerIds?.length === 1 ? s.customerIds[0]! : null);

export interface NewPlannedStop {
  reason: PlannedReason;
  description: string;
  startsAt: Date;
  endsAt: Date;
  /** Omitted: every customer. */
  customerIds?: string[];
  /** Shorter notice than the minimum; only an admin may give it (checked by the caller), and its reason is recorded. */
  override?: { reason: string };
}

/** R7.2: a planned stop, announced with its reason and period before it starts. */
export async function schedulePlannedStop(db: Db, clock: Clock, actor: Actor, input: NewPlannedStop, opts: { minLeadDays: number }): Promise<StopRecord> {
  const now = clock.now();
  const start = input.startsAt;
  const end = input.endsAt;
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) throw errors.invalidField('startsAt', '日時が正しくありません。', 'must be a date-time');
  if (end.getTime() <= start.getTime()) {
    throw stopError('validation_failed', 'endsAt', 'endsAt: 停止の終了は開始より後にしてください。', 'endsAt: the end must be after the start');
  }
  if (start.getTime() <= now.getTime()) {
    throw stopError('deadline_in_past', 'startsAt', 'startsAt: 計画停止は事前に通知するため、開始日時は将来にしてください。', 'startsAt: a planned stop is announced before it starts, so it must start in the future');
  }
  const leadMs = opts.minLeadDays * 86_400_000;
  if (start.getTime() - now.getTime() < leadMs && !input.override) {
    throw stopError(
      'notice_too_short',
      'startsAt',
      `startsAt: 計画停止は${opts.minLeadDays}日前までに通知が必要です（最短: ${formatJapanDateTime(new Date(now.getTime() + leadMs))}）。短縮には管理者による理由付きの承認が必要です。`,
      `startsAt: a planned stop needs ${opts.minLeadDays} days' notice (earliest start ${new Date(now.getTime() + leadMs).toISOString()}); shorter notice needs an admin override with a reason`,
    );
  }
  const overrideReason = input.override ? input.override.reason.trim() : null;
  if (input.override && !overrideReason) throw stopError('validation_failed', 'override.reason', 'override.reason: 短縮の理由を記入してください。', 'override.reason: give the reason for the short notice');
  const stop = await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${STOP_SCHEDULE_LOCK})`.execute(trx);
    const customerIds = await checkCustomers(trx, input.customerIds);
    const clashes = await trx
      .selectFrom('service_stops')
      .select(['id', 'all_customers'])
      .where('kind', '=', 'planned')
      .where('cancelled_at', 'is', null)
      .where('starts_at', '<', end)
      .where(sql<boolean>`coalesce(ended_at, ends_at) > ${start}`)
      .execute();
    for (const c of clashes) {
      let overlaps = customerIds === null || c.all_customers;
      if (!overlaps && customerIds) {
        const shared = await trx.selectFrom('service_stop_customers').select('customer_id').where('stop_id', '=', c.id).where('customer_id', 'in', customerIds).limit(1).execute();
        overlaps = shared.length > 0;
      }
      if (overlaps) {
        throw new HokanError('conflict', bi(`同じお客様を対象とする計画停止（${c.id}）と期間が重なっています。`, `The period overlaps planned stop ${c.id} for the same customers.`), [{ path: 'startsAt', message: `overlaps planned stop ${c.id}` }]);
      }
    }
    const s: StopRecord = {
      id: randomUUID(),
      kind: 'planned',
      reason: input.reason,
      description: input.description,
      startsAt: start,
      endsAt: end,
      customerIds,
      announcedAt: now,
      overrideReason,
      endedAt: null,
      cancelledAt: null,
      createdBy: actor.label,
      createdAt: now,
      incidentId: null,
    };
    await insertStop(trx, s);
    await appendAudit(trx, clock, {
      actor,
      action: 'stop.planned_scheduled',
      subjectType: 'service_stop',
      subjectId: s.id,
      customerId: auditCustomer(s),
      reason: overrideReason ? `short notice override: ${overrideReason}` : null,
      details: { kind: s.kind, reason: s.reason, startsAt: start.toISOString(), endsAt: end.toISOString(), customerIds: s.customerIds, minLeadDays: opts.minLeadDays, override: overrideReason !== null },
    });
    return s;
  });
  invalidate(db);
  return stop;
}

/** R7.3: an emergency stop, in force at once, without notice; it lasts until ended. */
export async function startEmergencyStop(db: Db, clock: Clock, actor: Actor, input: { cause: EmergencyCause; description: string; customerIds?: string[]; incidentId?: string }): Promise<StopRecord> {
  const now = clock.now();
  const stop = await db.transaction().execute(async (trx) => {
    const customerIds = await checkCustomers(trx, input.customerIds);
    if (input.incidentId && !(await trx.selectFrom('incidents').select('id').where('id', '=', input.incidentId).executeTakeFirst())) {
      throw errors.invalidField('incidentId', 'その障害は登録されていません。', `unknown incident ${input.incidentId}`);
    }
    const s: StopRecord = {
      id: randomUUID(),
      kind: 'emergency',
      reason: input.cause,
      description: input.description,
      startsAt: now,
      endsAt: null,
      customerIds,
      announcedAt: null,
      overrideReason: null,
      endedAt: null,
      cancelledAt: null,
      createdBy: actor.label,
      createdAt: now,
      incidentId: input.incidentId ?? null,
    };
    await insertStop(trx, s);
    await appendAudit(trx, clock, {
      actor,
      action: 'stop.emergency_started',
      subjectType: 'service_stop',
      subjectId: s.id,
      customerId: auditCustomer(s),
      details: { kind: s.kind, cause: s.reason, startsAt: now.toISOString(), customerIds: s.customerIds, incidentId: s.incidentId },
    });
    return s;
  });
  invalidate(db);
  return stop;
}

async function change(
  db: Db,
  clock: Clock,
  actor: Actor,
  stopId: string,
  action: 'ended' | 'cancelled',
  note: string,
  apply: (s: StopRecord, state: StopState, now: Date) => { ended_at?: Date; ends_at?: Date; cancelled_at?: Date },
): Promise<StopRecord> {
  const result = await db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('service_stops').selectAll().where('id', '=', stopId).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('停止 / stop', stopId);
    const s = (await withScopes(trx, [row]))[0]!;
    const now = clock.now();
    const from = stopState(s, now);
    const set = apply(s, from, now);
    const updated = await trx.updateTable('service_stops').set(set).where('id', '=', stopId).returningAll().executeTakeFirstOrThrow();
    const after = fromRow(updated, s.customerIds);
    await appendAudit(trx, clock, {
      actor,
      action: `stop.${action}`,
      subjectType: 'service_stop',
      subjectId: stopId,
      customerId: auditCustomer(s),
      reason: note,
      details: { kind: s.kind, from, to: stopState(after, now) },
    });
    return after;
  });
  invalidate(db);
  return result;
}

/** Ends a stop in force now: an emergency stop, or a planned stop finished early. */
export async function endStop(db: Db, clock: Clock, actor: Actor, stopId: string, input: { note: string }): Promise<StopRecord> {
  return change(db, clock, actor, stopId, 'ended', input.note, (s, state, now) => {
    if (state !== 'in_progress') {
      throw stopError(
        'invalid_transition',
        'stopId',
        state === 'scheduled' ? 'まだ始まっていない停止は終了できません。取り消してください。' : `状態「${state}」の停止は終了できません。`,
        state === 'scheduled' ? 'A stop that has not started cannot be ended; cancel it instead.' : `A stop in state "${state}" cannot be ended.`,
      );
    }
    return s.kind === 'emergency' ? { ended_at: now, ends_at: now } : { ended_at: now };
  });
}

/** Withdraws a planned stop; only before it starts. */
export async function cancelPlannedStop(db: Db, clock: Clock, actor: Actor, stopId: string, input: { note: string }): Promise<StopRecord> {
  return change(db, clock, actor, stopId, 'cancelled', input.note, (s, state, now) => {
    if (s.kind !== 'planned') throw stopError('invalid_transition', 'stopId', '緊急停止は取り消せません。終了してください。', 'An emergency stop cannot be cancelled; end it instead.');
    if (state !== 'scheduled') {
      throw stopError('invalid_transition', 'stopId', `開始後（状態「${state}」）の計画停止は取り消せません。`, `A planned stop can be cancelled only before it starts (it is "${state}").`);
    }
    return { cancelled_at: now };
  });
}
