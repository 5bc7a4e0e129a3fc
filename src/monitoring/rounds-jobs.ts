import type { JobQueue } from '../core/jobs/job-queue.js';
import { alertOverdueRounds } from './rounds.js';

export const ROUNDS_OVERDUE = 'rounds.overdue';

/** R12.3③: overdue visual rounds are looked for every 5 minutes; each alert goes out once per overdue period. */
export function registerRoundJobs(queue: JobQueue, opts: { defaultIntervalHours: number }): void {
  queue.register(ROUNDS_OVERDUE, async ({ db, clock }) => {
    await alertOverdueRounds(db, clock, opts.defaultIntervalHours);
  });
  queue.schedule({ name: ROUNDS_OVERDUE, queue: ROUNDS_OVERDUE, everyMs: 5 * 60_000 });
}
