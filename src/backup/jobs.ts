import type { Logger } from 'pino';
import { customerServiceState } from '../contracts/contracts.js';
import { listCustomers } from '../contracts/customers.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import type { BlobStore } from '../storage/index.js';
import { restoreDrill } from './drill.js';
import { runOffsiteCycle } from './offsite.js';
import { purgeDueCustomers } from './purge.js';
import { failOrphanedRestoreJobs, RESTORE_JOB, runRestoreJob } from './restore-jobs.js';
import { expireBackups } from './retention.js';
import { failAbandonedBackups, runBackup } from './run-backup.js';
import type { BackupSettings } from './settings.js';
import { verifyBackup, type TargetName } from './verify.js';

export const BACKUP_DAILY = 'backup.daily';
export const BACKUP_CUSTOMER = 'backup.customer';
export const BACKUP_OFFSITE = 'backup.offsite';
export const BACKUP_EXPIRE = 'backup.expire';
export const BACKUP_PURGE = 'backup.purge';
export const BACKUP_DRILL = 'backup.drill';
/** One customer's restore drill, asked for from the console (the weekly drill picks its own customers). */
export const BACKUP_DRILL_CUSTOMER = 'backup.drill.customer';
export const BACKUP_RESTORE = RESTORE_JOB;
/** One backup re-read and checked, asked for from the console (reading every part can take minutes). */
export const BACKUP_VERIFY = 'backup.verify';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface BackupJobDeps {
  live: BlobStore;
  settings: BackupSettings;
  instanceId: string;
  providerName: string;
  logger: Logger;
  /** How many customers a weekly drill restores; the least recently drilled go first. */
  drillPerRun?: number;
}

/** The customers whose data is in custody now: any contract active or suspended (suspension keeps data). */
export async function customersInCustody(db: Db): Promise<string[]> {
  const out: string[] = [];
  for (const c of await listCustomers(db)) {
    const state = await customerServiceState(db, c.id);
    if (state === 'active' || state === 'suspended') out.push(c.id);
  }
  return out;
}

/**
 * R10.1 daily at HOKAN_BACKUP_HOUR_JST (default 02:00 JST): the daily tick fans out one job per
 * customer, each a singleton for that day, so every customer is backed up once per day whichever
 * instance takes it, and a failed customer retries without repeating the others.
 * R10.3 remote copies, retention, the R10.7 purge and the drill run on their own schedules.
 */
export function registerBackupJobs(queue: JobQueue, deps: BackupJobDeps): void {
  const { settings } = deps;
  const base = (db: Db, clock: Clock) => ({ db, clock, live: deps.live, settings, instanceId: deps.instanceId, logger: deps.logger });

  queue.register<{ scheduledFor: string }>(BACKUP_DAILY, async ({ db, payload }) => {
    if (!settings.primary) {
      deps.logger.warn('daily backup skipped: HOKAN_BACKUP_URL is not configured (R10.1, R10.2 are not met)');
      return;
    }
    for (const customerId of await customersInCustody(db)) {
      await queue.enqueue(db, BACKUP_CUSTOMER, { customerId }, { singletonKey: `backup:${customerId}@${payload.scheduledFor}`, maxAttempts: 4 });
    }
  });
  queue.register<{ customerId: string; generation?: 'manual' }>(BACKUP_CUSTOMER, async ({ db, clock, payload }) => {
    await runBackup(base(db, clock), payload.customerId, payload.generation ? { generation: payload.generation } : {});
  }, { maxAttempts: 4 });
  queue.register(BACKUP_OFFSITE, async ({ db, clock }) => {
    await runOffsiteCycle(base(db, clock));
  });
  queue.register(BACKUP_EXPIRE, async ({ db, clock }) => {
    await failAbandonedBackups(db, clock);
    await failOrphanedRestoreJobs(db, clock);
    await expireBackups(base(db, clock));
  });
  queue.register(BACKUP_PURGE, async ({ db, clock }) => {
    await purgeDueCustomers({ db, clock, live: deps.live, settings, providerName: deps.providerName }, settings.purgeGraceHours);
  });
  queue.register(BACKUP_DRILL, async ({ db, clock }) => {
    const customers = await customersInCustody(db);
    const lastDrill = new Map<string, number>();
    for (const r of await db
      .selectFrom('backup_checks')
      .innerJoin('backups', 'backups.id', 'backup_checks.backup_id')
      .select((eb) => ['backups.customer_id', eb.fn.max('backup_checks.started_at').as('at')])
      .where('backup_checks.kind', '=', 'drill')
      .groupBy('backups.customer_id')
      .execute()) {
      lastDrill.set(r.customer_id, new Date(r.at as unknown as string).getTime());
    }
    const chosen = customers.sort((a, b) => (lastDrill.get(a) ?? 0) - (lastDrill.get(b) ?? 0)).slice(0, deps.drillPerRun ?? 5);
    for (const customerId of chosen) {
      const r = await restoreDrill({ db, clock, settings }, customerId);
      if (r && !r.ok) deps.logger.error({ customerId, problems: r.problems }, 'ALERT: restore drill failed');
    }
  });

  queue.register<{ customerId: string; target?: TargetName }>(BACKUP_DRILL_CUSTOMER, async ({ db, clock, payload }) => {
    const r = await restoreDrill({ db, clock, settings }, payload.customerId, payload.target ?? 'primary');
    if (!r) deps.logger.warn({ customerId: payload.customerId }, 'restore drill skipped: the customer has no good backup');
    else if (!r.ok) deps.logger.error({ customerId: payload.customerId, problems: r.problems }, 'ALERT: restore drill failed');
  }, { maxAttempts: 1 });
  queue.register<{ backupId: string; target?: TargetName }>(BACKUP_VERIFY, async ({ db, clock, payload }) => {
    const r = await verifyBackup({ db, clock, settings }, payload.backupId, payload.target ?? 'primary');
    if (!r.ok) deps.logger.error({ backupId: payload.backupId, problems: r.problems }, 'ALERT: backup verification failed');
  }, { maxAttempts: 1 });
  // R10.4: never retried by the queue (maxAttempts 1). A run cut off by a shutdown or a crash comes
  // back once (handed back, or its lease ran out) and is then settled as interrupted, not re-run.
  queue.register<{ restoreJobId: string }>(BACKUP_RESTORE, async ({ db, clock, payload, signal }) => {
    // At shutdown the signal stops the restore before it commits; the row is then failed.
    await runRestoreJob({ db, clock, settings, live: deps.live }, payload.restoreJobId, signal);
  }, { maxAttempts: 1 });

  // 02:00 JST is 17:00 UTC the day before.
  queue.schedule({ name: BACKUP_DAILY, queue: BACKUP_DAILY, everyMs: DAY, offsetMs: (((settings.dailyAtJstHour - 9) % 24) + 24) % 24 * HOUR });
  queue.schedule({ name: BACKUP_OFFSITE, queue: BACKUP_OFFSITE, everyMs: 6 * HOUR, offsetMs: 30 * 60_000 });
  queue.schedule({ name: BACKUP_EXPIRE, queue: BACKUP_EXPIRE, everyMs: 6 * HOUR, offsetMs: 45 * 60_000 });
  queue.schedule({ name: BACKUP_PURGE, queue: BACKUP_PURGE, everyMs: 10 * 60_000 });
  queue.schedule({ name: BACKUP_DRILL, queue: BACKUP_DRILL, everyMs: 7 * DAY, offsetMs: 4 * DAY + 20 * HOUR });
}
