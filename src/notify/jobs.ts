import type { Tx } from '../core/db/database.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { sendDueStopNotices, type NoticeContext } from './notices.js';
import { deliverDueEmails, type DeliverOptions, type MailTransport } from './outbox.js';
import { deliverDueWebhooks } from './webhooks.js';

export const DELIVER_EMAILS = 'notify.deliver';
export const DELIVER_WEBHOOKS = 'notify.webhooks';
export const STOP_NOTICES = 'notify.stop-notices';

/** Gives the SMTP transport, or null when none is configured (then e-mails stay queued). */
export type MailTransportFactory = () => (MailTransport & { close?: () => void }) | null;

export interface NoticeJobSettings {
  providerName: string;
  publicUrl: string;
  /** R7.2: how long before a planned stop its reminder goes out. */
  stopReminderHours: number;
}

/** Runs e-mail and webhook delivery now (in the posting transaction, so it sees the new rows). */
export function deliveryKick(queue: JobQueue): (trx: Tx) => Promise<void> {
  return async (trx) => {
    await queue.enqueue(trx, DELIVER_EMAILS, {});
    await queue.enqueue(trx, DELIVER_WEBHOOKS, {});
  };
}

/**
 * Sends the outbox every 30 s (a clock-driven schedule, so each tick runs once across instances),
 * and — given notice settings — delivers webhooks every 30 s and posts due stop notices every
 * minute (R7.2 notice and reminder, R7.3). A notice being posted also enqueues an immediate run.
 */
export function registerNotifyJobs(queue: JobQueue, transportFactory: MailTransportFactory, notices?: NoticeJobSettings, delivery: DeliverOptions = {}): { close(): void } {
  let transport: ReturnType<MailTransportFactory> | undefined;
  queue.register(DELIVER_EMAILS, async ({ db, clock, signal }) => {
    if (transport === undefined) transport = transportFactory();
    if (!transport) return;
    await deliverDueEmails(db, clock, transport, { ...delivery, signal });
  });
  queue.schedule({ name: DELIVER_EMAILS, queue: DELIVER_EMAILS, everyMs: 30_000 });
  if (notices) {
    queue.register(DELIVER_WEBHOOKS, async ({ db, clock }) => {
      await deliverDueWebhooks(db, clock);
    });
    queue.schedule({ name: DELIVER_WEBHOOKS, queue: DELIVER_WEBHOOKS, everyMs: 30_000 });
    const ctx: NoticeContext = { providerName: notices.providerName, publicUrl: notices.publicUrl, kick: deliveryKick(queue) };
    queue.register(STOP_NOTICES, async ({ db, clock }) => {
      await sendDueStopNotices(db, clock, { ...ctx, reminderLeadMs: notices.stopReminderHours * 3_600_000 });
    });
    queue.schedule({ name: STOP_NOTICES, queue: STOP_NOTICES, everyMs: 60_000 });
  }
  return {
    close() {
      transport?.close?.();
    },
  };
}
