import { randomUUID } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors } from '../core/errors.js';

/**
 * The e-mail outbox (table outbound_emails, owned by this domain). A notice is queued in the
 * transaction of the event it reports, and the notify.deliver job sends it later. The unique
 * dedupe key makes queueing exactly-once across restarts and instances; claiming rows with
 * FOR UPDATE SKIP LOCKED and a lease keeps two instances from sending the same row.
 */

/** What delivery needs of nodemailer: a transporter made by createMailTransport, or a test double. */
export type MailTransport = Pick<Transporter<SMTPTransport.SentMessageInfo>, 'sendMail'>;

export interface QueueEmailInput {
  /** One key per notice and recipient, e.g. `misuse:<flag id>:<user id>`; a repeat is ignored. */
  dedupeKey: string;
  /** One recipient: a notice to several people is one row (and one key) per recipient. */
  to: string;
  subject: string;
  text: string;
}

export interface DeliverOptions {
  /** How many rows one claim takes; delivery claims again until nothing is due. */
  batch?: number;
  /** How long a claimed row stays ours; a crashed instance's rows are due again after this. */
  leaseMs?: number;
  /** Aborted when the instance shuts down: rows claimed but not yet sent are released at once. */
  signal?: AbortSignal;
}

export interface DeliveryResult {
  sent: number;
  retried: number;
  failed: number;
}

export const MAX_ATTEMPTS = 20;
const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 3_600_000;
const DEFAULT_LEASE_MS = 5 * 60_000;

// Deliberately plain: one address, no display name, no whitespace or control characters.
const ADDRESS_RE = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function isValidEmailAddress(address: string): boolean {
  return address.length <= 254 && ADDRESS_RE.test(address) && !address.split('@')[0]!.startsWith('.') && !address.includes('..');
}

/** The wait after the given number of failed attempts: 1 min, 2, 4 … capped at 1 h. */
export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1), RETRY_MAX_MS);
}

/**
 * Queues one e-mail, inside the caller's transaction when given one. Returns the new row's id,
 * or null when an e-mail with the same dedupe key was queued before (then nothing changes).
 */
export async function queueEmail(dbOrTx: DbOrTx, clock: Clock, input: QueueEmailInput): Promise<string | null> {
  if (!isValidEmailAddress(input.to)) {
    throw errors.invalidField('to', `メールアドレス「${input.to}」は正しくありません。`, `"${input.to}" is not a valid e-mail address.`);
  }
  if (input.dedupeKey.trim() === '') throw errors.invalidField('dedupeKey', '重複防止キーが空です。', 'the dedupe key is empty.');
  if (/[\r\n]/.test(input.subject)) throw errors.invalidField('subject', '件名に改行は使えません。', 'the subject must not contain line breaks.');
  const now = clock.now();
  const row = await dbOrTx
    .insertInto('outbound_emails')
    .values({
      id: randomUUID(),
      dedupe_key: input.dedupeKey,
      to_address: input.to,
      subject: input.subject,
      text_body: input.text,
      created_at: now,
      state: 'queued',
      attempts: 0,
      next_attempt_at: now,
      last_error: null,
      sent_at: null,
      message_id: null,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row?.id ?? null;
}

/** An SMTP transporter for a URL such as smtp://127.0.0.1:2525 or smtps://user:pass@host:465. */
export function createMailTransport(smtpUrl: string, from: string): Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport({ url: smtpUrl, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000 }, { from });
}

/**
 * Sends the due e-mails. Rows are claimed with FOR UPDATE SKIP LOCKED and leased by moving
 * next_attempt_at past the lease, so a concurrent instance skips them; each is then marked sent
 * (with its message id) or given a later attempt with exponential backoff, failed after
 * MAX_ATTEMPTS. When SMTP is down the e-mails simply wait for a later run.
 */
export async function deliverDueEmails(db: Db, clock: Clock, transport: MailTransport, opts: DeliverOptions = {}): Promise<DeliveryResult> {
  const batch = opts.batch ?? 20;
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const result: DeliveryResult = { sent: 0, retried: 0, failed: 0 };
  for (;;) {
    const now = clock.now();
    const claimed = await db
      .updateTable('outbound_emails')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: new Date(now.getTime() + leaseMs) }))
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('outbound_emails')
          .select('id')
          .where('state', '=', 'queued')
          .where('next_attempt_at', '<=', now)
          .orderBy('next_attempt_at')
          .orderBy('created_at')
          .limit(batch)
          .forUpdate()
          .skipLocked(),
      )
      .returning(['id', 'to_address', 'subject', 'text_body', 'attempts'])
      .execute();
    if (claimed.length === 0) return result;
    for (const [i, row] of claimed.entries()) {
      if (opts.signal?.aborted) {
        // Shutting down: what is not sent yet goes back at once (attempt not counted) for another instance.
        for (const r of claimed.slice(i)) {
          await db
            .updateTable('outbound_emails')
            .set({ attempts: r.attempts - 1, next_attempt_at: clock.now() })
            .where('id', '=', r.id)
            .where('state', '=', 'queued')
            .where('attempts', '=', r.attempts)
            .execute();
        }
        return result;
      }
      // Only the holder of this claim (same attempt count, still queued) may settle the row.
      const mine = db.updateTable('outbound_emails').where('id', '=', row.id).where('state', '=', 'queued').where('attempts', '=', row.attempts);
      try {
        const info = await transport.sendMail({ to: row.to_address, subject: row.subject, text: row.text_body, messageId: `<${row.id}@hokan.outbox>` });
        await mine.set({ state: 'sent', sent_at: clock.now(), message_id: info.messageId, last_error: null }).execute();
        result.sent++;
      } catch (err) {
        const message = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
        const giveUp = row.attempts >= MAX_ATTEMPTS;
        await mine
          .set({ state: giveUp ? 'failed' : 'queued', next_attempt_at: new Date(clock.now().getTime() + retryDelayMs(row.attempts)), last_error: message })
          .execute();
        if (giveUp) result.failed++;
        else result.retried++;
      }
    }
  }
}
