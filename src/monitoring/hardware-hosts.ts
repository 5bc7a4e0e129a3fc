import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import type { Selectable } from 'kysely';
import { tokenDigest } from '../accounts/sessions.js';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { HardwareHostsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';

/**
 * R12.3①: the hosts whose hardware is monitored. An agent host pushes with its own token
 * `hkh_<id>_<secret>`, shown once and stored as a digest like the customers' API tokens; the
 * hokan server's own host (`self`) is sampled in-process and has no token.
 */
const TOKEN_RE = /^hkh_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

type HostRow = Selectable<HardwareHostsTable>;

export interface HostView {
  id: string;
  name: string;
  kind: 'agent' | 'self';
  createdAt: string;
  tokenIssuedAt: string | null;
  lastSeenAt: string | null;
  lastSampleAt: string | null;
  retiredAt: string | null;
}

export const hostView = (r: HostRow): HostView => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  createdAt: r.created_at.toISOString(),
  tokenIssuedAt: r.token_issued_at?.toISOString() ?? null,
  lastSeenAt: r.last_seen_at?.toISOString() ?? null,
  lastSampleAt: r.last_sample_at?.toISOString() ?? null,
  retiredAt: r.retired_at?.toISOString() ?? null,
});

/** True for anything shaped like a host push token (the HTTP layer lets its route check it). */
export function isHostTokenShape(token: string): boolean {
  return token.startsWith('hkh_');
}

function newToken(id: string): { token: string; digest: string } {
  const secret = randomBytes(32).toString('base64url');
  return { token: `hkh_${id.replaceAll('-', '')}_${secret}`, digest: tokenDigest(secret) };
}

async function assertNameFree(db: DbOrTx, name: string, exceptId?: string): Promise<void> {
  let q = db.selectFrom('hardware_hosts').select('id').where('name', '=', name).where('retired_at', 'is', null);
  if (exceptId) q = q.where('id', '<>', exceptId);
  if (await q.executeTakeFirst()) throw errors.duplicate('ホスト名 / host name', name);
}

/** Registers an agent host and returns its push token, shown only now. */
export async function registerHost(db: Db, clock: Clock, actor: Actor, name: string): Promise<{ host: HostView; token: string }> {
  const id = randomUUID();
  const { token, digest } = newToken(id);
  return db.transaction().execute(async (trx) => {
    await assertNameFree(trx, name);
    const now = clock.now();
    const row = await trx
      .insertInto('hardware_hosts')
      .values({ id, name, kind: 'agent', token_hash: digest, created_by: actor.label, created_at: now, token_issued_at: now, last_seen_at: null, last_sample_at: null, retired_at: null })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'hardware.host_registered', subjectType: 'hardware_host', subjectId: id, details: { name } });
    return { host: hostView(row), token };
  });
}

/** Issues a new push token for an agent host; the old one stops working at once. */
export async function reissueHostToken(db: Db, clock: Clock, actor: Actor, hostId: string): Promise<{ host: HostView; token: string }> {
  const { token, digest } = newToken(hostId);
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('hardware_hosts')
      .set({ token_hash: digest, token_issued_at: clock.now() })
      .where('id', '=', hostId)
      .where('kind', '=', 'agent')
      .where('retired_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw errors.notFound('ホスト / host', hostId);
    await appendAudit(trx, clock, { actor, action: 'hardware.host_token_issued', subjectType: 'hardware_host', subjectId: hostId });
    return { host: hostView(row), token };
  });
}

export async function renameHost(db: Db, clock: Clock, actor: Actor, hostId: string, name: string): Promise<HostView> {
  return db.transaction().execute(async (trx) => {
    await assertNameFree(trx, name, hostId);
    // hokan's own hosts keep the name they are found by (`hokan:<hostname>`).
    const before = await trx.selectFrom('hardware_hosts').select('name').where('id', '=', hostId).where('kind', '=', 'agent').where('retired_at', 'is', null).executeTakeFirst();
    if (!before) throw errors.notFound('ホスト / host', hostId);
    const row = await trx.updateTable('hardware_hosts').set({ name }).where('id', '=', hostId).returningAll().executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'hardware.host_renamed', subjectType: 'hardware_host', subjectId: hostId, details: { from: before.name, to: name } });
    return hostView(row);
  });
}

/** Retires a host: its token stops working and its rules stop being evaluated; samples stay until retention. */
export async function retireHost(db: Db, clock: Clock, actor: Actor, hostId: string): Promise<HostView> {
  return db.transaction().execute(async (trx) => {
    const now = clock.now();
    const row = await trx
      .updateTable('hardware_hosts')
      .set({ retired_at: now, token_hash: null })
      .where('id', '=', hostId)
      .where('retired_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw errors.notFound('ホスト / host', hostId);
    // Open alert episodes of a retired host are closed: nobody can see it recover any more.
    await trx.updateTable('hardware_alerts').set({ recovered_at: now, closed_reason: 'host_retired' }).where('host_id', '=', hostId).where('recovered_at', 'is', null).execute();
    await appendAudit(trx, clock, { actor, action: 'hardware.host_retired', subjectType: 'hardware_host', subjectId: hostId, details: { name: row.name } });
    return hostView(row);
  });
}

export async function listHosts(db: DbOrTx, opts: { includeRetired?: boolean } = {}): Promise<HostView[]> {
  let q = db.selectFrom('hardware_hosts').selectAll().orderBy('name');
  if (!opts.includeRetired) q = q.where('retired_at', 'is', null);
  return (await q.execute()).map(hostView);
}

export async function getHostRow(db: DbOrTx, hostId: string): Promise<HostRow> {
  const row = await db.selectFrom('hardware_hosts').selectAll().where('id', '=', hostId).executeTakeFirst();
  if (!row) throw errors.notFound('ホスト / host', hostId);
  return row;
}

/** The active agent host a push token belongs to, or null (unknown, wrong secret, retired). */
export async function resolveHostToken(db: DbOrTx, token: string): Promise<HostRow | null> {
  const m = TOKEN_RE.exec(token);
  if (!m) return null;
  const hex = m[1]!;
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const row = await db.selectFrom('hardware_hosts').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || row.retired_at || !row.token_hash) return null;
  const given = Buffer.from(tokenDigest(m[2]!), 'hex');
  const stored = Buffer.from(row.token_hash, 'hex');
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return null;
  return row;
}

/** The row of the host this process runs on (`self`), created on first use. */
export async function ensureSelfHost(db: Db, clock: Clock, hostname = os.hostname()): Promise<HostRow> {
  const name = `hokan:${hostname}`.slice(0, 200);
  const existing = await db.selectFrom('hardware_hosts').selectAll().where('name', '=', name).where('kind', '=', 'self').where('retired_at', 'is', null).executeTakeFirst();
  if (existing) return existing;
  await db
    .insertInto('hardware_hosts')
    .values({ id: randomUUID(), name, kind: 'self', token_hash: null, created_by: 'hokan', created_at: clock.now(), token_issued_at: null, last_seen_at: null, last_sample_at: null, retired_at: null })
    .onConflict((oc) => oc.column('name').where('retired_at', 'is', null).doNothing())
    .execute();
  return db.selectFrom('hardware_hosts').selectAll().where('name', '=', name).where('retired_at', 'is', null).executeTakeFirstOrThrow();
}
