import { systemActor } from '../core/audit/audit-log.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { enforceContractEnds } from './contracts.js';

export const ENFORCE_CONTRACT_ENDS = 'contracts.enforce-ends';

/**
 * R21.1, R22.3, R22.4: one tick a minute ends the contracts whose end has come. Ends fall at
 * 00:00 JST, so a contract is never served more than a minute past its end.
 */
export function registerContractJobs(queue: JobQueue): void {
  queue.register(ENFORCE_CONTRACT_ENDS, async ({ db, clock }) => {
    await enforceContractEnds(db, clock, systemActor(`job ${ENFORCE_CONTRACT_ENDS}`));
  });
  queue.schedule({ name: ENFORCE_CONTRACT_ENDS, queue: ENFORCE_CONTRACT_ENDS, everyMs: 60_000 });
}
