import type { Selectable } from 'kysely';
import type { DbOrTx } from '../core/db/database.js';
import type { BackupsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';

export type BackupRow = Selectable<BackupsTable>;

export interface BackupPart {
  name: string;
  kind: 'records' | 'file' | 'manifest';
  /** Bytes as stored (encrypted), and their SHA-256: checkable without the key. */
  size: number;
  sha256: string;
}

export const backupPrefix = (customerId: string, backupId: string) => `backups/${customerId}/${backupId}/`;
export const partKey = (customerId: string, backupId: string, name: string) => `${backupPrefix(customerId, backupId)}${name}`;
/** Binds each encrypted part to its backup and name, so parts cannot be swapped between backups. */
export const partAad = (customerId: string, backupId: string, name: string) => `${customerId}|${backupId}|${name}`;

export function partsOf(row: BackupRow): BackupPart[] {
  return (typeof row.parts === 'string' ? JSON.parse(row.parts) : row.parts) as BackupPart[];
}

export interface BackupView {
  id: string;
  customerId: string;
  generation: BackupRow['generation'];
  state: BackupRow['state'];
  startedAt: string;
  finishedAt: string | null;
  records: number | null;
  files: number | null;
  plainBytes: number | null;
  storedBytes: number | null;
  parts: number;
  primaryTarget: string;
  retainUntil: string;
  offsite: { target: string | null; state: BackupRow['offsite_state']; copiedAt: string | null; error: string | null };
  error: string | null;
}

export function backupView(r: BackupRow): BackupView {
  return {
    id: r.id,
    customerId: r.customer_id,
    generation: r.generation,
    state: r.state,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    records: r.snapshot_records,
    files: r.snapshot_files,
    plainBytes: r.plain_bytes === null ? null : Number(r.plain_bytes),
    storedBytes: r.stored_bytes === null ? null : Number(r.stored_bytes),
    parts: partsOf(r).length,
    primaryTarget: r.primary_target,
    retainUntil: r.retain_until.toISOString(),
    offsite: { target: r.offsite_target, state: r.offsite_state, copiedAt: r.offsite_copied_at?.toISOString() ?? null, error: r.offsite_error },
    error: r.error,
  };
}

export async function getBackup(db: DbOrTx, id: string): Promise<BackupRow> {
  const row = await db.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('バックアップ / backup', id);
  return row;
}

export async function listBackups(db: DbOrTx, filter: { customerId?: string; state?: BackupRow['state']; limit?: number } = {}): Promise<BackupRow[]> {
  let q = db.selectFrom('backups').selectAll().orderBy('started_at', 'desc').limit(Math.min(filter.limit ?? 200, 1000));
  if (filter.customerId) q = q.where('customer_id', '=', filter.customerId);
  if (filter.state) q = q.where('state', '=', filter.state);
  return q.execute();
}

export async function latestGoodBackup(db: DbOrTx, customerId: string): Promise<BackupRow | undefined> {
  return db.selectFrom('backups').selectAll().where('customer_id', '=', customerId).where('state', '=', 'good').orderBy('started_at', 'desc').limit(1).executeTakeFirst();
}

export interface BackupCheckView {
  id: string;
  backupId: string;
  customerId: string;
  /** A drill writes two rows: a 'verify' of every part it reads, then the 'drill' (restore into scratch, compare). */
  kind: 'verify' | 'drill';
  target: 'primary' | 'offsite';
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  problems: string[];
}

/** The latest verifications and drills (backup_checks), newest first, with what went wrong in words. */
export async function listBackupChecks(db: DbOrTx, filter: { customerId?: string; limit?: number } = {}): Promise<BackupCheckView[]> {
  let q = db
    .selectFrom('backup_checks')
    .innerJoin('backups', 'backups.id', 'backup_checks.backup_id')
    .select(['backup_checks.id', 'backup_checks.backup_id', 'backups.customer_id', 'backup_checks.kind', 'backup_checks.target', 'backup_checks.ok', 'backup_checks.started_at', 'backup_checks.finished_at', 'backup_checks.detail'])
    .orderBy('backup_checks.started_at', 'desc')
    .orderBy('backup_checks.finished_at', 'desc')
    .limit(Math.min(filter.limit ?? 50, 500));
  if (filter.customerId) q = q.where('backups.customer_id', '=', filter.customerId);
  return (await q.execute()).map((r) => {
    const detail = (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as { problems?: Array<string | { part: string; problem: string }> } | null;
    const problems = (detail?.problems ?? []).map((p) => (typeof p === 'string' ? p : `${p.part}: ${p.problem}`));
    return { id: r.id, backupId: r.backup_id, customerId: r.customer_id, kind: r.kind, target: r.target, ok: r.ok, startedAt: r.started_at.toISOString(), finishedAt: r.finished_at.toISOString(), problems };
  });
}
