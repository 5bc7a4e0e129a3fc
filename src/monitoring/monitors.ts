import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { sql, type Selectable } from 'kysely';
import { z } from 'zod';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { MonitorsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import type { DnsTarget, HttpTarget, TcpTarget, TlsTarget } from './service-probes.js';

/**
 * R12.3②: service monitors, kept in the database so every instance checks the same set and
 * operators change them without a restart. This file owns the definitions (validated input,
 * create/update/delete with audit entries), heartbeats, and the result history for charts; the
 * scheduler (monitors-scheduler.ts) runs the checks.
 */
export type MonitorRow = Selectable<MonitorsTable>;
export const MONITOR_KINDS = ['http', 'tcp', 'dns', 'tls', 'heartbeat', 'database', 'backup_freshness', 'offsite_lag'] as const;
export type MonitorKind = (typeof MONITOR_KINDS)[number];

export const MIN_INTERVAL_S = 10;
/** A heartbeat monitor is evaluated at least this often, whatever its beat period (R8.3: detect within 1 h). */
export const HEARTBEAT_EVAL_MAX_S = 60;
/** R8.3: incidents are detected within one hour. */
const DETECTION_LIMIT_S = 3_600;

const HOSTNAME_RE = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;
const host = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(253)
  .refine((h) => net.isIP(h) !== 0 || HOSTNAME_RE.test(h), { error: 'must be a host name or an IP address' });
const port = z.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(1, { error: 'must be 1–65535' }).max(65535, { error: 'must be 1–65535' });
const httpUrl = z
  .string()
  .trim()
  .max(2000)
  .refine((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'http:' || p.protocol === 'https:') && p.hostname !== '';
    } catch {
      return false;
    }
  }, { error: 'must be an http:// or https:// URL' });
const dnsServer = z
  .string()
  .trim()
  .refine((s) => {
    const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(s);
    const ip = m?.[1] ?? m?.[2];
    const p = m?.[3] ? Number(m[3]) : 53;
    return ip !== undefined && net.isIP(ip) !== 0 && p >= 1 && p <= 65535;
  }, { error: 'must be an IP address with an optional port, e.g. 127.0.0.1:5353 or [::1]:53' });
const customerIds = z.union([z.literal('all'), z.array(z.uuid({ error: 'must be a UUID' })).min(1).max(10_000)]).default('all').describe('"all", or the customers this monitor\'s failure affects');

const common = {
  name: z.string().trim().min(1, { error: 'must not be empty' }).max(200),
  intervalSeconds: z.number({ error: 'must be a number' }).int().min(MIN_INTERVAL_S, { error: `must be at least ${MIN_INTERVAL_S} seconds` }).max(86_400, { error: 'must be at most 86400 seconds' }),
  /** How soon a failed check is repeated before the monitor is declared down. */
  retryIntervalSeconds: z.number().int().min(MIN_INTERVAL_S, { error: `must be at least ${MIN_INTERVAL_S} seconds` }).max(86_400).optional(),
  timeoutMs: z.number().int().min(100, { error: 'must be at least 100 ms' }).max(60_000, { error: 'must be at most 60000 ms' }).default(10_000),
  /** Failed checks in a row beyond the first before the monitor is down. */
  retries: z.number().int().min(0).max(10).default(1),
  /** Good checks in a row before a down monitor is up again (flap damping). */
  recoverAfter: z.number().int().min(1).max(10).default(1),
  severity: z.enum(['critical', 'major', 'minor']).default('major'),
  component: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { error: 'must be a component key: 1–64 of a-z 0-9 . _ -' }),
  customerIds,
  enabled: z.boolean().default(true),
};

export const monitorInput = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('http'),
    ...common,
    url: httpUrl,
    method: z.enum(['GET', 'HEAD']).default('GET'),
    expectedStatus: z.array(z.number().int().min(100).max(599)).min(1).max(20).default([200]),
    keyword: z.string().min(1).max(500).nullable().default(null),
    maxLatencyMs: z.number().int().min(1).max(60_000).nullable().default(null),
    ignoreTlsErrors: z.boolean().default(false),
  }),
  z.object({ kind: z.literal('tcp'), ...common, host, port }),
  z.object({
    kind: z.literal('dns'),
    ...common,
    hostname: host,
    recordType: z.enum(['A', 'AAAA']).default('A'),
    server: dnsServer.nullable().default(null),
    expectedAddress: z.string().refine((a) => net.isIP(a) !== 0, { error: 'must be an IP address' }).nullable().default(null),
  }),
  z.object({
    kind: z.literal('tls'),
    ...common,
    host,
    port: port.default(443),
    servername: host.nullable().default(null),
    minDaysLeft: z.number().int().min(0).max(825).default(14),
    requireTrusted: z.boolean().default(true),
  }),
  z.object({ kind: z.literal('heartbeat'), ...common, graceSeconds: z.number().int().min(0).max(86_400).default(60) }),
  z.object({ kind: z.literal('database'), ...common }),
  z.object({ kind: z.literal('backup_freshness'), ...common, maxAgeHours: z.number().min(1).max(24 * 60).default(26) }),
  z.object({ kind: z.literal('offsite_lag'), ...common, maxLagHours: z.number().min(1).max(24 * 365).nullable().default(null) }),
], { error: `must be one of ${MONITOR_KINDS.join(', ')}` });
export type MonitorInput = z.output<typeof monitorInput>;

export type MonitorTarget =
  | ({ kind: 'http' } & HttpTarget)
  | ({ kind: 'tcp' } & TcpTarget)
  | ({ kind: 'dns' } & DnsTarget)
  | ({ kind: 'tls' } & TlsTarget)
  | { kind: 'heartbeat'; graceSeconds: number }
  | { kind: 'database' }
  | { kind: 'backup_freshness'; maxAgeHours: number }
  | { kind: 'offsite_lag'; maxLagHours: number | null };

function targetOf(i: MonitorInput): MonitorTarget {
  switch (i.kind) {
    case 'http':
      return { kind: 'http', url: i.url, method: i.method, expectedStatus: i.expectedStatus, keyword: i.keyword, maxLatencyMs: i.maxLatencyMs, ignoreTlsErrors: i.ignoreTlsErrors };
    case 'tcp':
      return { kind: 'tcp', host: i.host, port: i.port };
    case 'dns':
      return { kind: 'dns', hostname: i.hostname, recordType: i.recordType, server: i.server, expectedAddress: i.expectedAddress };
    case 'tls':
      return { kind: 'tls', host: i.host, port: i.port, servername: i.servername, minDaysLeft: i.minDaysLeft, requireTrusted: i.requireTrusted };
    case 'heartbeat':
      return { kind: 'heartbeat', graceSeconds: i.graceSeconds };
    case 'database':
      return { kind: 'database' };
    case 'backup_freshness':
      return { kind: 'backup_freshness', maxAgeHours: i.maxAgeHours };
    case 'offsite_lag':
      return { kind: 'offsite_lag', maxLagHours: i.maxLagHours };
  }
}

export function targetOfRow(row: Pick<MonitorRow, 'kind' | 'target'>): MonitorTarget {
  const t = (typeof row.target === 'string' ? JSON.parse(row.target) : row.target) as Record<string, unknown>;
  return { ...t, kind: row.kind } as MonitorTarget;
}

/** Seconds between scheduled checks; a heartbeat is looked at often enough to notice a missed beat soon. */
export function checkPeriodS(row: Pick<MonitorRow, 'kind' | 'interval_s'>): number {
  return row.kind === 'heartbeat' ? Math.min(row.interval_s, HEARTBEAT_EVAL_MAX_S) : row.interval_s;
}

/** Validates outside input into a monitor definition, with errors naming the field. */
export function parseMonitorInput(raw: unknown): MonitorInput {
  const parsed = monitorInput.safeParse(raw);
  if (!parsed.success) throw errors.validation(parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  const i = parsed.data;
  if (i.timeoutMs >= i.intervalSeconds * 1000) throw errors.invalidField('timeoutMs', 'タイムアウトは監視間隔より短くしてください。', 'must be shorter than the check interval');
  // R8.3: an outage is detected within an hour. The worst case is a failure just after a good check
  // (or just after a beat was due): the next check, every retry, and the last one's timeout.
  // A retry comes no later than the next regular check (a heartbeat is looked at every minute).
  const periodS = i.kind === 'heartbeat' ? Math.min(i.intervalSeconds, HEARTBEAT_EVAL_MAX_S) : i.intervalSeconds;
  const retryS = Math.min(i.retryIntervalSeconds ?? i.intervalSeconds, periodS);
  const firstS = i.kind === 'heartbeat' ? i.graceSeconds + periodS : i.intervalSeconds;
  const worstS = firstS + i.retries * retryS + Math.ceil(i.timeoutMs / 1000);
  if (worstS > DETECTION_LIMIT_S) {
    const field = i.retries * retryS > firstS ? 'retryIntervalSeconds' : i.kind === 'heartbeat' ? 'graceSeconds' : 'intervalSeconds';
    throw errors.invalidField(
      field,
      `この設定では障害の検知に最長${worstS}秒かかり、1時間以内の検知（利用規約）を守れません。間隔・再試行を短くしてください。`,
      `with these settings a failure can take up to ${worstS} s to detect, over the 1 hour the terms promise (R8.3); shorten the interval, the retries or their interval`,
    );
  }
  return i;
}

export interface MonitorView {
  id: string;
  name: string;
  kind: MonitorKind;
  target: MonitorTarget;
  intervalSeconds: number;
  retryIntervalSeconds: number;
  timeoutMs: number;
  retries: number;
  recoverAfter: number;
  severity: MonitorRow['severity'];
  component: string;
  customerIds: string[] | 'all';
  enabled: boolean;
  state: MonitorRow['state'];
  lastCheck: { at: string; ok: boolean; latencyMs: number | null; error: string | null } | null;
  lastBeatAt: string | null;
  nextCheckAt: string;
  openIncidentId: string | null;
  createdAt: string;
  updatedAt: string;
}

function view(r: MonitorRow, customers: string[] | 'all'): MonitorView {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    target: targetOfRow(r),
    intervalSeconds: r.interval_s,
    retryIntervalSeconds: r.retry_interval_s,
    timeoutMs: r.timeout_ms,
    retries: r.retries,
    recoverAfter: r.recover_after,
    severity: r.severity,
    component: r.component,
    customerIds: customers,
    enabled: r.enabled,
    state: r.state,
    lastCheck: r.last_check_at && r.last_ok !== null ? { at: r.last_check_at.toISOString(), ok: r.last_ok, latencyMs: r.last_latency_ms, error: r.last_error } : null,
    lastBeatAt: r.last_beat_at?.toISOString() ?? null,
    nextCheckAt: r.next_check_at.toISOString(),
    openIncidentId: r.open_incident_id,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

async function customersOf(db: DbOrTx, r: MonitorRow): Promise<string[] | 'all'> {
  if (r.all_customers) return 'all';
  return (await db.selectFrom('monitor_customers').select('customer_id').where('monitor_id', '=', r.id).orderBy('customer_id').execute()).map((x) => x.customer_id);
}

/** The customers a monitor's incident affects: 'all' or the chosen ones. */
export async function monitorCustomers(db: DbOrTx, monitorId: string): Promise<string[] | 'all'> {
  const r = await db.selectFrom('monitors').selectAll().where('id', '=', monitorId).executeTakeFirst();
  if (!r) throw errors.notFound('監視 / monitor', monitorId);
  return customersOf(db, r);
}

async function checkCustomers(db: DbOrTx, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const found = await db.selectFrom('customers').select('id').where('id', 'in', ids).execute();
  const missing = ids.filter((id) => !found.some((f) => f.id === id));
  if (missing.length) throw errors.invalidField('customerIds', `不明なお客様: ${missing.join(', ')}`, `unknown customers: ${missing.join(', ')}`);
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
const newToken = () => `hkhb_${randomBytes(24).toString('base64url')}`;

function columnsOf(i: MonitorInput) {
  return {
    name: i.name,
    kind: i.kind,
    target: JSON.stringify(targetOf(i)),
    interval_s: i.intervalSeconds,
    retry_interval_s: i.retryIntervalSeconds ?? i.intervalSeconds,
    timeout_ms: i.timeoutMs,
    retries: i.retries,
    recover_after: i.recoverAfter,
    severity: i.severity,
    component: i.component,
    all_customers: i.customerIds === 'all',
    enabled: i.enabled,
  };
}

/** Creates a monitor; a heartbeat monitor's push token is returned once, only its hash is kept. */
export async function createMonitor(db: Db, clock: Clock, actor: Actor, raw: unknown): Promise<{ monitor: MonitorView; heartbeatToken: string | null }> {
  const input = parseMonitorInput(raw);
  const now = clock.now();
  const ids = input.customerIds === 'all' ? [] : [...new Set(input.customerIds)];
  const token = input.kind === 'heartbeat' ? newToken() : null;
  return db.transaction().execute(async (trx) => {
    await checkCustomers(trx, ids);
    const row = await trx
      .insertInto('monitors')
      .values({
        id: randomUUID(),
        ...columnsOf(input),
        heartbeat_token_hash: token ? hashToken(token) : null,
        state: 'unknown',
        fail_streak: 0,
        ok_streak: 0,
        // A heartbeat counts its first period from creation.
        last_beat_at: input.kind === 'heartbeat' ? now : null,
        next_check_at: now,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    if (ids.length) await trx.insertInto('monitor_customers').values(ids.map((customer_id) => ({ monitor_id: row.id, customer_id }))).execute();
    await appendAudit(trx, clock, { actor, action: 'monitor.created', subjectType: 'monitor', subjectId: row.id, details: { name: row.name, kind: row.kind, target: targetOf(input), component: row.component, customers: input.customerIds } });
    return { monitor: view(row, ids.length ? ids : 'all'), heartbeatToken: token };
  });
}

/**
 * Replaces a monitor's definition. Its kind stays; its state (and any incident it opened) is
 * kept, but the streaks restart and it is checked at once. A heartbeat token is rotated on request.
 */
export async function updateMonitor(db: Db, clock: Clock, actor: Actor, id: string, raw: unknown, opts: { rotateToken?: boolean } = {}): Promise<{ monitor: MonitorView; heartbeatToken: string | null }> {
  const input = parseMonitorInput(raw);
  const now = clock.now();
  const ids = input.customerIds === 'all' ? [] : [...new Set(input.customerIds)];
  return db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom('monitors').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!before) throw errors.notFound('監視 / monitor', id);
    if (before.kind !== input.kind) throw errors.invalidField('kind', '監視の種類は変更できません。新しい監視を作成してください。', `cannot change from ${before.kind}; create a new monitor instead`);
    await checkCustomers(trx, ids);
    const token = input.kind === 'heartbeat' && opts.rotateToken ? newToken() : null;
    const row = await trx
      .updateTable('monitors')
      .set({ ...columnsOf(input), ...(token ? { heartbeat_token_hash: hashToken(token) } : {}), fail_streak: 0, ok_streak: 0, streak_started_at: null, next_check_at: now, updated_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.deleteFrom('monitor_customers').where('monitor_id', '=', id).execute();
    if (ids.length) await trx.insertInto('monitor_customers').values(ids.map((customer_id) => ({ monitor_id: id, customer_id }))).execute();
    await appendAudit(trx, clock, { actor, action: 'monitor.updated', subjectType: 'monitor', subjectId: id, details: { name: row.name, target: targetOf(input), enabled: row.enabled, customers: input.customerIds, tokenRotated: token !== null } });
    return { monitor: view(row, ids.length ? ids : 'all'), heartbeatToken: token };
  });
}

/** Deletes a monitor and its history; an incident it opened stays open for the operators. */
export async function deleteMonitor(db: Db, clock: Clock, actor: Actor, id: string, reason: string | null): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('monitors').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('監視 / monitor', id);
    await trx.deleteFrom('monitors').where('id', '=', id).execute();
    await appendAudit(trx, clock, { actor, action: 'monitor.deleted', subjectType: 'monitor', subjectId: id, reason, details: { name: row.name, kind: row.kind, openIncidentId: row.open_incident_id } });
  });
}

export async function getMonitor(db: DbOrTx, id: string): Promise<MonitorView> {
  const row = await db.selectFrom('monitors').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('監視 / monitor', id);
  return view(row, await customersOf(db, row));
}

export async function listMonitors(db: DbOrTx, opts: { limit?: number } = {}): Promise<MonitorView[]> {
  const rows = await db.selectFrom('monitors').selectAll().orderBy('name').orderBy('id').limit(Math.min(opts.limit ?? 1000, 10_000)).execute();
  const restricted = rows.filter((r) => !r.all_customers).map((r) => r.id);
  const chosen = restricted.length ? await db.selectFrom('monitor_customers').select(['monitor_id', 'customer_id']).where('monitor_id', 'in', restricted).execute() : [];
  return rows.map((r) => view(r, r.all_customers ? 'all' : chosen.filter((c) => c.monitor_id === r.id).map((c) => c.customer_id).sort()));
}

/**
 * A heartbeat push from a periodic job. The token is compared in constant time; an unknown monitor
 * and a wrong token look the same (404), so the endpoint tells an outsider nothing.
 */
export async function recordHeartbeat(db: Db, clock: Clock, id: string, token: string): Promise<{ at: Date }> {
  const row = await db.selectFrom('monitors').select(['id', 'kind', 'heartbeat_token_hash']).where('id', '=', id).executeTakeFirst();
  const given = Buffer.from(hashToken(token), 'hex');
  const stored = row?.heartbeat_token_hash ? Buffer.from(row.heartbeat_token_hash, 'hex') : Buffer.alloc(32);
  const match = timingSafeEqual(given, stored.length === 32 ? stored : Buffer.alloc(32));
  if (!row || row.kind !== 'heartbeat' || !row.heartbeat_token_hash || !match) throw errors.notFound('監視 / monitor', id);
  const at = clock.now();
  // Never move a beat backwards (a late, slow request after a newer one).
  await db.updateTable('monitors').set({ last_beat_at: sql<Date>`greatest(last_beat_at, ${at})` }).where('id', '=', id).execute();
  return { at };
}

export interface ResultPoint {
  at: string;
  ok: boolean;
  latencyMs: number | null;
  error: string | null;
}

export interface ResultBucket {
  from: string;
  checks: number;
  failed: number;
  avgLatencyMs: number | null;
  maxLatencyMs: number | null;
}

export interface ResultHistory {
  monitorId: string;
  from: string;
  to: string;
  summary: { checks: number; failed: number; uptimePct: number | null; avgLatencyMs: number | null; maxLatencyMs: number | null };
  /** Every check, when there are at most `maxPoints`; otherwise null and `buckets` holds the chart. */
  points: ResultPoint[] | null;
  bucketSeconds: number | null;
  buckets: ResultBucket[] | null;
}

export const MAX_RESULT_RANGE_DAYS = 93;
const MAX_POINTS = 2000;

/** The results of one monitor in [from, to): every check, or fixed-width buckets for a long range. */
export async function monitorResults(db: DbOrTx, id: string, from: Date, to: Date, maxPoints = MAX_POINTS): Promise<ResultHistory> {
  if (to.getTime() <= from.getTime()) throw errors.invalidField('to', '終了時刻は開始時刻より後にしてください。', 'must be after from');
  if (to.getTime() - from.getTime() > MAX_RESULT_RANGE_DAYS * 86_400_000) throw errors.invalidField('to', `期間は${MAX_RESULT_RANGE_DAYS}日以内にしてください。`, `the range must be at most ${MAX_RESULT_RANGE_DAYS} days`);
  const exists = await db.selectFrom('monitors').select('id').where('id', '=', id).executeTakeFirst();
  if (!exists) throw errors.notFound('監視 / monitor', id);
  const inRange = db.selectFrom('monitor_results').where('monitor_id', '=', id).where('checked_at', '>=', from).where('checked_at', '<', to);
  const s = await inRange
    .select((eb) => [
      eb.fn.countAll<string>().as('checks'),
      eb.fn.sum<string | null>(sql`case when ok then 0 else 1 end`).as('failed'),
      eb.fn.avg<string | null>('latency_ms').as('avg'),
      eb.fn.max('latency_ms').as('max'),
    ])
    .executeTakeFirstOrThrow();
  const checks = Number(s.checks);
  const failed = Number(s.failed ?? 0);
  const summary = {
    checks,
    failed,
    uptimePct: checks ? Math.round(((checks - failed) / checks) * 100_000) / 1000 : null,
    avgLatencyMs: s.avg === null ? null : Math.round(Number(s.avg)),
    maxLatencyMs: s.max === null ? null : Number(s.max),
  };
  const base = { monitorId: id, from: from.toISOString(), to: to.toISOString(), summary };
  if (checks <= maxPoints) {
    const rows = await inRange.select(['checked_at', 'ok', 'latency_ms', 'error']).orderBy('checked_at').execute();
    return { ...base, points: rows.map((r) => ({ at: r.checked_at.toISOString(), ok: r.ok, latencyMs: r.latency_ms, error: r.error })), bucketSeconds: null, buckets: null };
  }
  const rangeS = (to.getTime() - from.getTime()) / 1000;
  const step = Math.max(60, Math.ceil(rangeS / maxPoints / 60) * 60);
  const fromS = Math.floor(from.getTime() / 1000);
  const bucket = sql<number>`floor((extract(epoch from checked_at) - ${fromS}) / ${step})::integer`;
  const rows = await inRange
    .select((eb) => [
      bucket.as('b'),
      eb.fn.countAll<string>().as('checks'),
      eb.fn.sum<string | null>(sql`case when ok then 0 else 1 end`).as('failed'),
      eb.fn.avg<string | null>('latency_ms').as('avg'),
      eb.fn.max('latency_ms').as('max'),
    ])
    // By position: the parameterised expression written twice would not count as the same one.
    .groupBy(sql`1`)
    .orderBy(sql`1`)
    .execute();
  return {
    ...base,
    points: null,
    bucketSeconds: step,
    buckets: rows.map((r) => ({
      from: new Date((fromS + Number(r.b) * step) * 1000).toISOString(),
      checks: Number(r.checks),
      failed: Number(r.failed ?? 0),
      avgLatencyMs: r.avg === null ? null : Math.round(Number(r.avg)),
      maxLatencyMs: r.max === null ? null : Number(r.max),
    })),
  };
}

/** Drops results older than the retention; returns how many went. */
export async function pruneMonitorResults(db: Db, clock: Clock, retentionDays: number): Promise<number> {
  const cutoff = new Date(clock.now().getTime() - retentionDays * 86_400_000);
  const res = await db.deleteFrom('monitor_results').where('checked_at', '<', cutoff).executeTakeFirst();
  return Number(res.numDeletedRows);
}
