import { sql, type Selectable } from 'kysely';
import type { Clock } from '../clock.js';
import type { Db, DbOrTx, Tx } from '../db/database.js';
import type { AuditLogTable } from '../db/schema.js';
import { GENESIS_HASH, linkHash } from '../hash-chain.js';

/** Who did something: a person, a machine credential, or hokan itself (a scheduled job). */
export interface Actor {
  kind: 'operator' | 'customer_user' | 'api_token' | 'system';
  id: string | null;
  label: string;
}

export const systemActor = (label: string): Actor => ({ kind: 'system', id: null, label });

export interface AuditEntryInput {
  actor: Actor;
  action: string;
  subjectType: string;
  subjectId: string;
  customerId?: string | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditEntry {
  seq: number;
  at: Date;
  actor: Actor;
  action: string;
  subjectType: string;
  subjectId: string;
  customerId: string | null;
  reason: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export { GENESIS_HASH };
// Every append in every instance takes this transaction-scoped lock, so the chain stays a line.
export const AUDIT_CHAIN_LOCK = 7_310_301;

function entryHash(e: Omit<AuditEntry, 'hash' | 'seq'>): string {
  return linkHash({
    prevHash: e.prevHash,
    at: e.at.toISOString(),
    actor: e.actor,
    action: e.action,
    subjectType: e.subjectType,
    subjectId: e.subjectId,
    customerId: e.customerId,
    reason: e.reason,
    details: e.details,
  });
}

/**
 * Appends one entry inside the caller's transaction, so the audit record and the change it
 * describes commit together or not at all.
 */
export async function appendAudit(trx: Tx, clock: Clock, input: AuditEntryInput): Promise<AuditEntry> {
  await sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`.execute(trx);
  const last = await trx.selectFrom('audit_log').select('hash').orderBy('seq', 'desc').limit(1).executeTakeFirst();
  const base = {
    at: clock.now(),
    actor: input.actor,
    action: input.action,
    subjectType: input.subjectType,
    subjectId: input.subjectId,
    customerId: input.customerId ?? null,
    reason: input.reason ?? null,
    details: JSON.parse(JSON.stringify(input.details ?? {})) as Record<string, unknown>,
    prevHash: last?.hash ?? GENESIS_HASH,
  };
  const hash = entryHash(base);
  const row = await trx
    .insertInto('audit_log')
    .values({
      at: base.at,
      actor_kind: base.actor.kind,
      actor_id: base.actor.id,
      actor_label: base.actor.label,
      action: base.action,
      subject_type: base.subjectType,
      subject_id: base.subjectId,
      customer_id: base.customerId,
      reason: base.reason,
      details: JSON.stringify(base.details),
      prev_hash: base.prevHash,
      hash,
    })
    .returning('seq')
    .executeTakeFirstOrThrow();
  return { ...base, seq: Number(row.seq), hash };
}

type AuditRow = Selectable<AuditLogTable>;

function fromRow(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    at: r.at,
    actor: { kind: r.actor_kind as Actor['kind'], id: r.actor_id, label: r.actor_label },
    action: r.action,
    subjectType: r.subject_type,
    subjectId: r.subject_id,
    customerId: r.customer_id,
    reason: r.reason,
    details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown>,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditQuery {
  subjectType?: string;
  subjectId?: string;
  customerId?: string;
  afterSeq?: number;
  limit?: number;
}

export async function listAudit(db: DbOrTx, q: AuditQuery): Promise<AuditEntry[]> {
  let query = db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc').limit(Math.min(q.limit ?? 100, 1000));
  if (q.subjectType) query = query.where('subject_type', '=', q.subjectType);
  if (q.subjectId) query = query.where('subject_id', '=', q.subjectId);
  if (q.customerId) query = query.where('customer_id', '=', q.customerId);
  if (q.afterSeq !== undefined) query = query.where('seq', '>', String(q.afterSeq));
  const rows = await query.execute();
  return rows.map(fromRow);
}

export type AuditVerification =
  | { ok: true; entries: number; headHash: string }
  | { ok: false; entries: number; brokenAtSeq: number; problem: string };

/**
 * Walks the chain in order. Sequence numbers may skip (a rolled-back transaction consumes one);
 * only the hashes decide, so a removed, altered or inserted entry shows as the first broken link.
 */
export async function verifyAuditChain(db: Db, batchSize = 1000): Promise<AuditVerification> {
  let prev = GENESIS_HASH;
  let after = 0;
  let count = 0;
  for (;;) {
    const rows = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>', String(after))
      .orderBy('seq', 'asc')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) return { ok: true, entries: count, headHash: prev };
    for (const raw of rows) {
      const e = fromRow(raw);
      if (e.prevHash !== prev) {
        return { ok: false, entries: count, brokenAtSeq: e.seq, problem: 'previous-hash link does not match the entry before it (an entry was removed, inserted or altered)' };
      }
      const { hash, seq: _seq, ...rest } = e;
      if (entryHash(rest) !== hash) {
        return { ok: false, entries: count, brokenAtSeq: e.seq, problem: 'entry content does not match its hash (the entry was altered)' };
      }
      prev = hash;
      after = e.seq;
      count++;
    }
  }
}
