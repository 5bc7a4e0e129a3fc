import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { appendAudit, systemActor } from '../core/audit/audit-log.js';
import { HashingStream } from './streams.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { getBackup, partKey, partsOf, type BackupRow } from './catalog.js';
import type { BackupSettings } from './settings.js';

const DAY_MS = 86_400_000;

/**
 * R10.3: copies one good backup, part by part, from the separate medium to the remote site, with
 * the same immutability period; every copied part must hash to what the catalog recorded.
 */
export async function copyBackupOffsite(deps: { db: Db; clock: Clock; settings: BackupSettings }, backupId: string): Promise<BackupRow> {
  const { db, clock, settings } = deps;
  const row = await getBackup(db, backupId);
  if (!settings.primary || !settings.offsite) throw new Error('both HOKAN_BACKUP_URL and HOKAN_OFFSITE_URL must be configured for remote copies');
  if (row.state !== 'good') throw new Error(`backup ${backupId} is ${row.state}; only good backups are copied`);
  try {
    for (const part of partsOf(row)) {
      const key = partKey(row.customer_id, row.id, part.name);
      const existing = await settings.offsite.head(key);
      if (existing && existing.size === part.size) {
        // Copied by an earlier, interrupted run: trust it only if its bytes hash to the catalog.
        const check = new HashingStream();
        await pipeline(await settings.offsite.get(key), check, new Writable({ write: (_c, _e, cb) => cb() }));
        if (check.sha256 === part.sha256) continue;
        throw new Error(`the remote copy of part ${part.name} exists but does not match the catalog (SHA-256 ${check.sha256}); it cannot be replaced before its retention ends`);
      }
      const copied = await settings.offsite.put(key, await settings.primary.get(key), { retainUntil: row.retain_until });
      if (copied.sha256 !== part.sha256) throw new Error(`part ${part.name} arrived with SHA-256 ${copied.sha256}, expected ${part.sha256}`);
    }
    return await db
      .updateTable('backups')
      .set({ offsite_state: 'copied', offsite_copied_at: clock.now(), offsite_error: null, offsite_target: settings.offsite.description })
      .where('id', '=', backupId)
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    await db.updateTable('backups').set({ offsite_state: 'failed', offsite_error: message.slice(0, 2000) }).where('id', '=', backupId).execute();
    throw err;
  }
}

export interface OffsiteStatus {
  customerId: string;
  lastCopiedAt: string | null;
  latestGoodBackupAt: string | null;
  /** Hours since the newest backup that should have reached the remote site. */
  lagHours: number | null;
  overdue: boolean;
}

/** Per customer with backups: when a copy last reached the remote site, and whether a cycle was missed. */
export async function offsiteStatus(db: Db, clock: Clock, settings: BackupSettings): Promise<OffsiteStatus[]> {
  const rows = await db
    .selectFrom('backups')
    .select((eb) => ['customer_id', eb.fn.max('offsite_copied_at').as('last_copied'), eb.fn.max('started_at').as('latest_good'), eb.fn.min('started_at').as('first_good')])
    .where('state', '=', 'good')
    .groupBy('customer_id')
    .execute();
  const now = clock.now().getTime();
  const allowed = (settings.offsiteCycleDays + 1) * DAY_MS;
  return rows.map((r) => {
    const last = r.last_copied ? new Date(r.last_copied as unknown as string) : null;
    const since = last ?? new Date(r.first_good as unknown as string);
    return {
      customerId: r.customer_id,
      lastCopiedAt: last?.toISOString() ?? null,
      latestGoodBackupAt: r.latest_good ? new Date(r.latest_good as unknown as string).toISOString() : null,
      lagHours: settings.offsite ? Math.round((now - since.getTime()) / 36_000) / 100 : null,
      overdue: settings.offsite !== null && now - since.getTime() > allowed,
    };
  });
}

/**
 * The remote-copy cycle (default weekly): for each customer whose last remote copy is a cycle old,
 * the newest good backup goes to the remote site; older pending ones are marked skipped. A customer
 * whose copies are overdue (a missed cycle) raises an alert in the log and the audit trail.
 */
export async function runOffsiteCycle(deps: { db: Db; clock: Clock; settings: BackupSettings; logger?: { error: (o: object, m: string) => void } }): Promise<{ copied: string[]; failed: string[]; overdue: string[] }> {
  const { db, clock, settings } = deps;
  const result = { copied: [] as string[], failed: [] as string[], overdue: [] as string[] };
  if (!settings.offsite || !settings.primary) return result;
  const cycleMs = settings.offsiteCycleDays * DAY_MS;
  const statuses = await offsiteStatus(db, clock, settings);
  for (const s of statuses) {
    const due = !s.lastCopiedAt || clock.now().getTime() - new Date(s.lastCopiedAt).getTime() >= cycleMs - 3_600_000;
    if (!due) continue;
    const newest = await db.selectFrom('backups').selectAll().where('customer_id', '=', s.customerId).where('state', '=', 'good').orderBy('started_at', 'desc').limit(1).executeTakeFirst();
    if (!newest || newest.offsite_state === 'copied') continue;
    try {
      await copyBackupOffsite(deps, newest.id);
      result.copied.push(newest.id);
      await db.updateTable('backups').set({ offsite_state: 'skipped' }).where('customer_id', '=', s.customerId).where('offsite_state', '=', 'pending').where('started_at', '<', newest.started_at).execute();
    } catch (err) {
      result.failed.push(newest.id);
      deps.logger?.error({ backupId: newest.id, err: (err as Error).message }, 'remote copy failed');
    }
  }
  for (const s of await offsiteStatus(db, clock, settings)) {
    if (!s.overdue) continue;
    result.overdue.push(s.customerId);
    deps.logger?.error({ customerId: s.customerId, lagHours: s.lagHours }, 'ALERT: remote copy overdue (R10.3): a cycle was missed');
    await db.transaction().execute((trx) =>
      appendAudit(trx, clock, { actor: systemActor('job backup.offsite'), action: 'backup.offsite_overdue', subjectType: 'customer', subjectId: s.customerId, customerId: s.customerId, details: { lagHours: s.lagHours, lastCopiedAt: s.lastCopiedAt } }),
    );
  }
  return result;
}
