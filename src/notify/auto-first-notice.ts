import type { Logger } from 'pino';
import { systemActor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { isHokanError } from '../core/errors.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { listComponents, setIncidentComponents } from './components.js';
import { deliveryKick } from './jobs.js';
import { postIncidentNotice } from './notices.js';

export interface AutoFirstNoticeDeps {
  db: Db;
  clock: Clock;
  queue: JobQueue;
  providerName: string;
  publicUrl: string;
  logger?: Logger;
}

/**
 * R8.1, R8.3: when a monitor opens an incident, the first notice (第一報: the fact only — what, since
 * when, which component) is posted at once to the status page and e-mailed to the affected
 * customers, instead of waiting for an operator to write it. Later notices (続報, 復旧報, 報告書)
 * stay with the operators, who know the cause. The affected component is the monitor's, when it is
 * a published status component; otherwise the notice names the service as a whole.
 * Never throws: the incident stands even if the notice fails, and the failure is logged for operators.
 */
export function autoFirstNotice(deps: AutoFirstNoticeDeps): (incidentId: string, componentKey: string | null) => Promise<void> {
  const actor = systemActor('auto-first-notice');
  return async (incidentId, componentKey) => {
    try {
      if (componentKey && (await listComponents(deps.db)).some((c) => c.key === componentKey)) {
        await setIncidentComponents(deps.db, deps.clock, actor, incidentId, [componentKey]);
      }
      await postIncidentNotice(deps.db, deps.clock, actor, incidentId, { stage: 'first', fields: {} }, { providerName: deps.providerName, publicUrl: deps.publicUrl, kick: deliveryKick(deps.queue) });
    } catch (err) {
      // An operator who posted the first notice in the meantime is not a failure.
      if (isHokanError(err) && err.code === 'invalid_transition') return;
      deps.logger?.error({ incident: incidentId, err: err instanceof Error ? err.message : String(err) }, 'automatic first notice failed; post it from the console');
    }
  };
}
