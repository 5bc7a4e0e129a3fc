import { randomUUID } from 'node:crypto';
import { sql, type Selectable } from 'kysely';
import type { Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { BackupRestoreJobsTable } from '../core/db/schema.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import type { BlobStore } from '../storage/index.js';
import { getBackup } from './catalog.js';
import { restoreCustomer, type RestoreProgress } from './restore.js';
import type { BackupSettings } from './settings.js';
import type { TargetName } from './verify.js';

/*
 * R10.4 as a job: an admin asks for a restore from the console (or the API), a worker runs
 * restoreCustomer and writes its progress into backup_restore_jobs, which the console's progress
 * page reads. The restore itself is atomic per customer, so a run that fails or is cut off leaves
 * the live data as it was; the job is never retried by itself (a restore replaces a customer's
 * data, so running it again must be a person's decision).
 */

export const RESTORE_JOB = 'backup.restore';

type Row = Selectable<BackupRestoreJobsTable>;
export type RestoreJobState = Row['state'];

export interface RestoreJobView {
  id: string;
  backupId: string;
  customerId: string;
  from: TargetName;
  state: RestoreJobState;
  phase: RestoreProgress['phase'] | null;
  done: number;
  total: number;
  /** 0–100 over the whole restore (each phase a share of it); null while nothing is known. */
  percent: number | null;
  records: number | null;
  files: number | null;
  error: string | null;
  requestedBy: { kind: Row['requested_by_kind']; id: string | null; label: string };
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const PHASES: Array<RestoreProgress['phase']> = ['manifest', 'records', 'files', 'cleanup', 'done'];
// Where each phase sits in the bar: the records load is most of a restore's time; the files are
// checked and staged while the database applies the records.
const PHASE_SPAN: Record<RestoreProgress['phase'], [number, number]> = { manifest: [0, 5], records: [5, 55], files: [55, 95], cleanup: [95, 99], done: [100, 100] };

export function restoreJobView(r: Row): RestoreJobView {
  let percent: number | null = null;
  if (r.state === 'done') percent = 100;
  else if (r.state === 'queued') percent = 0;
  else if (r.phase) {
    const [from, to] = PHASE_SPAN[r.phase];
    percent = Math.min(99, Math.floor(from + (r.total > 0 ? (to - from) * Math.min(1, r.done / r.total) : 0)));
  }
  return {
    id: r.id,
    backupId: r.backup_id,
    customerId: r.customer_id,
    from: r.from_target,
    state: r.state,
    phase: r.phase,
    done: r.done,
    total: r.total,
    percent,
    records: r.records,
    files: r.files,
    error: r.error,
    requestedBy: { kind: r.requested_by_kind, id: r.requested_by_id, label: r.requested_by_label },
    createdAt: r.created_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

const ACTIVE: RestoreJobState[] = ['queued', 'running'];

const alreadyRestoring = (customerId: string, jobId: string) =>
  new HokanError('conflict', bi(`このお客様の復元が既に実行中または待機中です（${jobId}）。終わってから開始してください。`, `A restore of this customer is already queued or running (${jobId}); start another when it has finished.`), [{ path: 'backupId', message: `customer ${customerId} is being restored by ${jobId}` }]);

/** Reading a backup (drill, verify, restore) needs the target it reads from; refused before anything is queued. */
export function assertTargetConfigured(settings: BackupSettings, t: TargetName): void {
  if (t === 'primary' ? settings.primary : settings.offsite) return;
  throw new HokanError(
    'conflict',
    bi(t === 'primary' ? 'バックアップ先（HOKAN_BACKUP_URL）が設定されていません。' : '遠隔地（HOKAN_OFFSITE_URL）が設定されていません。', t === 'primary' ? 'No backup target is configured (HOKAN_BACKUP_URL).' : 'No remote site is configured (HOKAN_OFFSITE_URL).'),
    [{ path: 'target', message: `the ${t} target is not configured` }],
  );
}

/** The queued or running restore of a customer, if any (the synchronous API refuses to run beside it). */
export async function activeRestoreOf(db: DbOrTx, customerId: string): Promise<RestoreJobView | null> {
  const row = await db.selectFrom('backup_restore_jobs').selectAll().where('customer_id', '=', customerId).where('state', 'in', ACTIVE).executeTakeFirst();
  return row ? restoreJobView(row) : null;
}

/** Refuses a synchronous restore while a restore job of the same customer is queued or running. */
export async function assertNoActiveRestore(db: DbOrTx, customerId: string): Promise<void> {
  const active = await activeRestoreOf(db, customerId);
  if (active) throw alreadyRestoring(customerId, active.id);
}

/**
 * Queues a restore of a backup's customer. Everything that can be known before the run is checked
 * here, so a refusal names its field and nothing is written: the backup is good, the chosen copy
 * exists, the caller named the right customer, and no other restore of that customer is pending.
 */
export async function requestRestore(
  deps: { db: Db; clock: Clock; queue: JobQueue; settings: BackupSettings },
  actor: Actor,
  input: { backupId: string; from: TargetName; confirmCustomerId: string },
): Promise<RestoreJobView> {
  const { db, clock, queue, settings } = deps;
  const backup = await getBackup(db, input.backupId);
  if (backup.customer_id !== input.confirmCustomerId) {
    throw errors.invalidField('confirmCustomerId', '復元するお客様がバックアップのお客様と一致しません。', "does not match the backup's customer");
  }
  if (backup.state !== 'good') {
    throw new HokanError('conflict', bi(`バックアップの状態が ${backup.state} のため復元できません。`, `Backup ${backup.id} is ${backup.state}; only good backups can be restored.`), [{ path: 'backupId', message: `backup is ${backup.state}, not good` }]);
  }
  if (input.from === 'offsite' && (backup.offsite_state !== 'copied' || !settings.offsite)) {
    throw new HokanError('conflict', bi('このバックアップは遠隔地に複製されていないため、遠隔地から復元できません。', `Backup ${backup.id} has no remote copy to restore from (state ${backup.offsite_state}).`), [{ path: 'from', message: `no remote copy (state ${backup.offsite_state})` }]);
  }
  if (input.from === 'primary' && !settings.primary) {
    throw new HokanError('conflict', bi('バックアップ先（HOKAN_BACKUP_URL）が設定されていません。', 'No backup target is configured (HOKAN_BACKUP_URL).'), [{ path: 'from', message: 'the primary target is not configured' }]);
  }
  const now = clock.now();
  return db.transaction().execute(async (trx) => {
    const id = randomUUID();
    // The partial unique index decides between two requests racing from two instances.
    const row = await trx
      .insertInto('backup_restore_jobs')
      .values({
        id,
        backup_id: backup.id,
        customer_id: backup.customer_id,
        from_target: input.from,
        state: 'queued',
        phase: null,
        done: 0,
        total: 0,
        records: null,
        files: null,
        error: null,
        job_id: null,
        requested_by_kind: actor.kind,
        requested_by_id: actor.id,
        requested_by_label: actor.label,
        created_at: now,
      })
      .onConflict((oc) => oc.column('customer_id').where('state', 'in', ACTIVE).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) {
      const active = await activeRestoreOf(trx, backup.customer_id);
      throw alreadyRestoring(backup.customer_id, active?.id ?? '?');
    }
    const jobId = await queue.enqueue(trx, RESTORE_JOB, { restoreJobId: id }, { maxAttempts: 1 });
    const withJob = await trx.updateTable('backup_restore_jobs').set({ job_id: jobId }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    return restoreJobView(withJob);
  });
}

export async function getRestoreJob(db: DbOrTx, id: string): Promise<RestoreJobView> {
  const row = await db.selectFrom('backup_restore_jobs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('復元 / restore', id);
  return restoreJobView(row);
}

export async function listRestoreJobs(db: DbOrTx, filter: { customerId?: string; limit?: number } = {}): Promise<RestoreJobView[]> {
  let q = db.selectFrom('backup_restore_jobs').selectAll().orderBy('created_at', 'desc').limit(Math.min(filter.limit ?? 20, 200));
  if (filter.customerId) q = q.where('customer_id', '=', filter.customerId);
  return (await q.execute()).map(restoreJobView);
}

const INTERRUPTED = 'interrupted: the instance running this restore stopped before it finished. A restore is atomic, so the live data was left as it was; start the restore again if it is still needed.';

/**
 * A run found 'running' when its job comes round again was cut off: its instance was shut down
 * (the queue hands the job back) or died (its lease ran out). It is settled, never re-run. Whether
 * the data was replaced is read from the audit entry restoreCustomer writes in its own transaction:
 * present, the restore committed and only its cleanup of unreferenced files was cut short.
 */
async function settleInterrupted(db: Db, clock: Clock, row: Row): Promise<void> {
  const committed = await db
    .selectFrom('audit_log')
    .select(['details'])
    .where('action', '=', 'backup.restored')
    .where('subject_type', '=', 'customer')
    .where('subject_id', '=', row.customer_id)
    .where('actor_label', '=', row.requested_by_label)
    .where('at', '>=', row.started_at ?? row.created_at)
    .where(sql<string>`details->>'backupId'`, '=', row.backup_id)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (committed) {
    const d = (typeof committed.details === 'string' ? JSON.parse(committed.details) : committed.details) as { records?: number; files?: number };
    await db
      .updateTable('backup_restore_jobs')
      .set({ state: 'done', phase: 'done', done: 1, total: 1, records: d.records ?? null, files: d.files ?? null, error: 'restored; the instance stopped while removing files the restored data no longer uses (they stay until the next restore or purge)', finished_at: clock.now() })
      .where('id', '=', row.id)
      .where('state', '=', 'running')
      .execute();
    return;
  }
  await db.updateTable('backup_restore_jobs').set({ state: 'failed', error: INTERRUPTED, finished_at: clock.now() }).where('id', '=', row.id).where('state', '=', 'running').execute();
}

/** Runs one queued restore, writing its progress as it goes; never throws for the restore's own failure. */
export async function runRestoreJob(
  deps: { db: Db; clock: Clock; settings: BackupSettings; live: BlobStore },
  restoreJobId: string,
  signal?: AbortSignal,
): Promise<RestoreJobView | null> {
  const { db, clock } = deps;
  const claimed = await db
    .updateTable('backup_restore_jobs')
    .set({ state: 'running', started_at: clock.now(), phase: 'manifest', done: 0, total: 1 })
    .where('id', '=', restoreJobId)
    .where('state', '=', 'queued')
    .returningAll()
    .executeTakeFirst();
  if (!claimed) {
    const row = await db.selectFrom('backup_restore_jobs').selectAll().where('id', '=', restoreJobId).executeTakeFirst();
    if (row?.state === 'running') await settleInterrupted(db, clock, row);
    return row ? getRestoreJob(db, restoreJobId) : null;
  }

  // Progress is written at most a few times a second, one write at a time: on PGlite a write waits
  // for the restore's transaction to end, and piling them up would only replay stale numbers. A new
  // phase is written at once. The bar only moves forward: a report of an earlier phase is dropped.
  const rank = (phase: RestoreProgress['phase']) => PHASES.indexOf(phase);
  let latest: RestoreProgress = { phase: 'manifest', done: 0, total: 1 };
  let lastWrite = 0;
  let inFlight: Promise<void> | null = null;
  let dirty = false;
  const write = () => {
    dirty = false;
    const p = latest;
    inFlight = db
      .updateTable('backup_restore_jobs')
      .set({ phase: p.phase, done: p.done, total: p.total })
      .where('id', '=', restoreJobId)
      .where('state', '=', 'running')
      .execute()
      .then(
        () => undefined,
        // A lost progress update is not worth failing a restore over; the final state is written below.
        () => undefined,
      )
      .finally(() => {
        inFlight = null;
        if (dirty) write();
      });
  };
  const onProgress = (p: RestoreProgress) => {
    if (rank(p.phase) < rank(latest.phase)) return;
    const phaseChanged = p.phase !== latest.phase;
    latest = p;
    const t = performance.now();
    if (!phaseChanged && t - lastWrite < 250) return;
    lastWrite = t;
    if (inFlight) dirty = true;
    else write();
  };
  const settled = async () => {
    while (inFlight) await inFlight;
  };
  try {
    const actor: Actor = { kind: claimed.requested_by_kind, id: claimed.requested_by_id, label: claimed.requested_by_label };
    const result = await restoreCustomer(deps, { backupId: claimed.backup_id, from: claimed.from_target, actor, onProgress, ...(signal ? { signal } : {}) });
    await settled();
    // 'failed' too: if this instance was written off while it finished the run, the truth is that it finished.
    await db
      .updateTable('backup_restore_jobs')
      .set({ state: 'done', phase: 'done', done: 1, total: 1, records: result.records, files: result.files, error: null, finished_at: clock.now() })
      .where('id', '=', restoreJobId)
      .where('state', 'in', ['running', 'failed'])
      .execute();
  } catch (err) {
    await settled();
    const message = err instanceof HokanError ? err.messages.en : err instanceof Error ? err.message : String(err);
    await db.updateTable('backup_restore_jobs').set({ state: 'failed', error: message.slice(0, 1000), finished_at: clock.now() }).where('id', '=', restoreJobId).where('state', '=', 'running').execute();
  }
  return getRestoreJob(db, restoreJobId);
}

/**
 * Restores whose queue job ended without settling them (the worker lost the database while
 * writing the outcome) are failed, so no row says 'queued' or 'running' for ever.
 */
export async function failOrphanedRestoreJobs(db: Db, clock: Clock): Promise<number> {
  const res = await db
    .updateTable('backup_restore_jobs')
    .set({ state: 'failed', error: 'the job running this restore ended without recording its outcome; check the data and start the restore again if needed', finished_at: clock.now() })
    .where('state', 'in', ACTIVE)
    .where((eb) => eb.or([eb('job_id', 'is', null), eb.not(eb.exists(eb.selectFrom('jobs').select('jobs.id').whereRef('jobs.id', '=', 'backup_restore_jobs.job_id').where('jobs.state', 'in', ['queued', 'active'])))]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}
