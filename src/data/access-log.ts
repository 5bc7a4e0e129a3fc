import { sql, type Selectable } from 'kysely';
import type { Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { DataAccessLogTable } from '../core/db/schema.js';
import { HokanError } from '../core/errors.js';
import { GENESIS_HASH, linkHash } from '../core/hash-chain.js';
import { bi } from '../core/i18n.js';

/**
 * Who read or changed which record or file, when and from where — what Japanese guidelines for
 * medical and care data expect. Chained per customer (not globally) so one customer's traffic
 * never waits on another's lock, and so each customer's trail verifies on its own.
 */
export type DataOperation = 'read' | 'list' | 'create' | 'update' | 'delete' | 'upload' | 'download' | 'export' | 'restore';
export type DataTargetType = 'record' | 'collection' | 'file' | 'customer' | 'export';

export interface DataAccess {
  customerId: string;
  actor: Actor;
  sourceIp: string | null;
  operation: DataOperation;
  targetType: DataTargetType;
  collection?: string | null;
  targetId?: string | null;
}

export interface DataAccessEntry extends Required<Omit<DataAccess, 'collection' | 'targetId'>> {
  seq: number;
  at: string;
  collection: string | null;
  targetId: string | null;
  prevHash: string;
  hash: string;
}

const ACCESS_LOG_LOCK_CLASS = 7_310_302;
const CUSTOMER_DATA_LOCK_CLASS = 7_310_303;

function hashOf(e: Omit<DataAccessEntry, 'seq' | 'hash'>): string {
  return linkHash({ ...e });
}

/**
 * How long a change waits for the customer's data. A restore holds it for its whole run, which for
 * a large customer is minutes; a change asked for then is refused after this wait with a 503 and
 * Retry-After, instead of keeping the Software's request open for as long.
 */
export const CHANGE_WAIT_MS = 10_000;

/**
 * Holds the customer's data lock until the transaction ends, waiting as long as it takes. A restore
 * and a purge take it first, so a restore never runs beside a change (decision 0030); changes take
 * it through `changeCustomerData`. Reads do not take it: they go on during a restore and see the
 * data as it was until the restore commits. It is not the access log's lock, which reads take too,
 * and which a restore takes only for its last moment.
 */
export async function lockCustomerData(trx: Tx, customerId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(${CUSTOMER_DATA_LOCK_CLASS}, hashtext(${customerId}))`.execute(trx);
}

/**
 * Changes of one customer waiting in this process, per database: only the first of them waits for
 * the lock in the database, holding a pooled connection; the others wait here, holding none.
 */
const waitingChanges = new WeakMap<Db, Map<string, Promise<void>>>();

/**
 * Runs a change to the customer's records or files in a transaction that takes the customer's data
 * lock first (decision 0030). Changes of one customer queue in this process, so at most one of them
 * per process waits in the database: waiting in the database holds a pooled connection, and during
 * a long restore ten waiting requests would leave none for anyone else. Within the queue and then
 * for the lock, a change waits at most CHANGE_WAIT_MS in all; then it is refused (503, Retry-After).
 */
export async function changeCustomerData<T>(db: Db, customerId: string, work: (trx: Tx) => Promise<T>): Promise<T> {
  const deadline = performance.now() + CHANGE_WAIT_MS;
  let queues = waitingChanges.get(db);
  if (!queues) waitingChanges.set(db, (queues = new Map()));
  const before = queues.get(customerId) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const turn = before.then(() => mine);
  queues.set(customerId, turn);
  try {
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      before.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CHANGE_WAIT_MS))),
    ]);
    clearTimeout(timer);
    const left = Math.round(deadline - performance.now());
    if (!inTime || left <= 0) throw customerDataBusy(CHANGE_WAIT_MS);
    return await db.transaction().execute(async (trx) => {
      // Mostly free (this process's changes of the customer are queued above): one statement then.
      const first = await sql<{ got: boolean }>`select pg_try_advisory_xact_lock(${CUSTOMER_DATA_LOCK_CLASS}, hashtext(${customerId})) as got`.execute(trx);
      if (!first.rows[0]?.got) {
        // Held by a restore, a purge or another process: wait for what is left of the time.
        // Local to the transaction, and put back at once: the change's own row locks wait as before.
        await sql`select set_config('lock_timeout', ${`${left}ms`}, true)`.execute(trx);
        try {
          await lockCustomerData(trx, customerId);
        } catch (err) {
          // 55P03 lock_not_available: the wait ran out (the transaction is aborted and rolls back).
          if ((err as { code?: unknown }).code === '55P03') throw customerDataBusy(CHANGE_WAIT_MS);
          throw err;
        }
        await sql`set local lock_timeout to default`.execute(trx);
      }
      return work(trx);
    });
  } finally {
    // The next change's turn comes when this one is over, or, if this one gave up in the queue,
    // when the change before it is over.
    done();
    if (queues.get(customerId) === turn) queues.delete(customerId);
  }
}

function customerDataBusy(waitedMs: number): HokanError {
  const err = new HokanError(
    'service_unavailable',
    bi(
      'お客様のデータは復元などの処理中のため、現在変更できません。しばらくしてから再度お試しください。',
      "The customer's data is being restored or otherwise worked on and cannot be changed now; please retry shortly.",
    ),
    [{ path: 'data', message: `waited ${Math.round(waitedMs / 1000)} s for the customer's data` }],
  );
  err.retryAfterSeconds = 30;
  return err;
}

/** Appends inside the caller's transaction: a change and its log entry commit together. */
export async function logDataAccess(trx: Tx, clock: Clock, access: DataAccess): Promise<void> {
  // Orders the customer's chain. A change holds the customer's data lock already, always taken
  // before this one, so the two are taken in the same order everywhere.
  await sql`select pg_advisory_xact_lock(${ACCESS_LOG_LOCK_CLASS}, hashtext(${access.customerId}))`.execute(trx);
  const last = await trx
    .selectFrom('data_access_log')
    .select('hash')
    .where('customer_id', '=', access.customerId)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  const entry = {
    customerId: access.customerId,
    at: clock.now().toISOString(),
    actor: access.actor,
    sourceIp: access.sourceIp,
    operation: access.operation,
    targetType: access.targetType,
    collection: access.collection ?? null,
    targetId: access.targetId ?? null,
    prevHash: last?.hash ?? GENESIS_HASH,
  };
  await trx
    .insertInto('data_access_log')
    .values({
      customer_id: entry.customerId,
      at: entry.at,
      actor_kind: entry.actor.kind,
      actor_id: entry.actor.id,
      actor_label: entry.actor.label,
      source_ip: entry.sourceIp,
      operation: entry.operation,
      target_type: entry.targetType,
      collection: entry.collection,
      target_id: entry.targetId,
      prev_hash: entry.prevHash,
      hash: hashOf(entry),
    })
    .execute();
}

/** For reads, which change nothing: the entry gets its own short transaction. */
export function logDataRead(db: Db, clock: Clock, access: DataAccess): Promise<void> {
  return db.transaction().execute((trx) => logDataAccess(trx, clock, access));
}

/** A row as the database returns it; the schema is the one description of the table. */
type Row = Selectable<DataAccessLogTable>;

function fromRow(r: Row): DataAccessEntry {
  return {
    seq: Number(r.seq),
    customerId: r.customer_id,
    at: r.at.toISOString(),
    actor: { kind: r.actor_kind as Actor['kind'], id: r.actor_id, label: r.actor_label },
    sourceIp: r.source_ip,
    operation: r.operation as DataOperation,
    targetType: r.target_type as DataTargetType,
    collection: r.collection,
    targetId: r.target_id,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface DataAccessQuery {
  customerId?: string;
  from?: Date;
  to?: Date;
  actorId?: string;
  operation?: DataOperation;
  collection?: string;
  targetId?: string;
  afterSeq?: number;
  limit?: number;
}

export async function searchDataAccess(db: DbOrTx, q: DataAccessQuery): Promise<DataAccessEntry[]> {
  let query = db.selectFrom('data_access_log').selectAll().orderBy('seq', 'asc').limit(Math.min(q.limit ?? 100, 1000));
  if (q.customerId) query = query.where('customer_id', '=', q.customerId);
  if (q.from) query = query.where('at', '>=', q.from);
  if (q.to) query = query.where('at', '<', q.to);
  if (q.actorId) query = query.where('actor_id', '=', q.actorId);
  if (q.operation) query = query.where('operation', '=', q.operation);
  if (q.collection) query = query.where('collection', '=', q.collection);
  if (q.targetId) query = query.where('target_id', '=', q.targetId);
  if (q.afterSeq !== undefined) query = query.where('seq', '>', String(q.afterSeq));
  return (await query.execute()).map(fromRow);
}

export type AccessLogVerification = { ok: true; entries: number } | { ok: false; entries: number; brokenAtSeq: number };

/**
 * Verifies one customer's chain. Entries older than the retention period are pruned from the
 * front, so the oldest remaining entry's predecessor hash is taken as the anchor.
 */
export async function verifyDataAccessChain(db: Db, customerId: string): Promise<AccessLogVerification> {
  let prev: string | null = null;
  let after = 0;
  let count = 0;
  for (;;) {
    const rows = await db.selectFrom('data_access_log').selectAll().where('customer_id', '=', customerId).where('seq', '>', String(after)).orderBy('seq').limit(1000).execute();
    if (rows.length === 0) return { ok: true, entries: count };
    for (const raw of rows) {
      const e = fromRow(raw);
      const { seq, hash, ...rest } = e;
      if ((prev !== null && e.prevHash !== prev) || hashOf(rest) !== hash) return { ok: false, entries: count, brokenAtSeq: seq };
      prev = hash;
      after = seq;
      count++;
    }
  }
}

/** Drops entries older than the retention period (default 5 years, set by the provider). */
export async function pruneDataAccessLog(db: DbOrTx, clock: Clock, retentionDays: number): Promise<number> {
  const cutoff = new Date(clock.now().getTime() - retentionDays * 86_400_000);
  const r = await db.deleteFrom('data_access_log').where('at', '<', cutoff).executeTakeFirst();
  return Number(r.numDeletedRows);
}
