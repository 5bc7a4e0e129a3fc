import type { Config } from '../core/config.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { pruneDataAccessLog } from './access-log.js';

export const PRUNE_ACCESS_LOG = 'data.prune-access-log';

/** The access log is kept for the retention period the provider sets (default 5 years), then dropped. */
export function registerDataJobs(queue: JobQueue, config: Config): void {
  queue.register(PRUNE_ACCESS_LOG, async ({ db, clock }) => {
    await pruneDataAccessLog(db, clock, config.accessLogRetentionDays);
  });
  queue.schedule({ name: PRUNE_ACCESS_LOG, queue: PRUNE_ACCESS_LOG, everyMs: 86_400_000, offsetMs: 18 * 3_600_000 });
}
