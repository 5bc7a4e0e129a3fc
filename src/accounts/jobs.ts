import type { JobQueue } from '../core/jobs/job-queue.js';
import { deleteExpiredSessions } from './sessions.js';

export const PRUNE_SESSIONS = 'accounts.prune-sessions';

export function registerAccountJobs(queue: JobQueue): void {
  queue.register(PRUNE_SESSIONS, async ({ db, clock }) => {
    await deleteExpiredSessions(db, clock);
  });
  queue.schedule({ name: PRUNE_SESSIONS, queue: PRUNE_SESSIONS, everyMs: 3_600_000 });
}
