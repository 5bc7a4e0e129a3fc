import type { JobQueue } from '../core/jobs/job-queue.js';
import { pruneMonitorResults } from './monitors.js';

export const PRUNE_MONITOR_RESULTS = 'monitoring.prune-results';

/** Daily (03:30 JST): check results older than the retention go; state changes live on in incidents and the audit log. */
export function registerMonitoringJobs(queue: JobQueue, opts: { resultDays: number }): void {
  queue.register(PRUNE_MONITOR_RESULTS, async ({ db, clock }) => {
    await pruneMonitorResults(db, clock, opts.resultDays);
  });
  queue.schedule({ name: PRUNE_MONITOR_RESULTS, queue: PRUNE_MONITOR_RESULTS, everyMs: 86_400_000, offsetMs: 18.5 * 3_600_000 });
}
