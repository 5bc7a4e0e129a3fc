import type { JobQueue } from '../core/jobs/job-queue.js';
import { deliverDueEmails, type MailTransport } from './outbox.js';

export const DELIVER_EMAILS = 'notify.deliver';

/** Gives the SMTP transport, or null when none is configured (then e-mails stay queued). */
export type MailTransportFactory = () => MailTransport | null;

/** Sends the outbox every 30 s (a clock-driven schedule, so each tick runs once across instances). */
export function registerNotifyJobs(queue: JobQueue, transportFactory: MailTransportFactory): void {
  let transport: MailTransport | null | undefined;
  queue.register(DELIVER_EMAILS, async ({ db, clock, signal }) => {
    if (transport === undefined) transport = transportFactory();
    if (!transport) return;
    await deliverDueEmails(db, clock, transport, { signal });
  });
  queue.schedule({ name: DELIVER_EMAILS, queue: DELIVER_EMAILS, everyMs: 30_000 });
}
