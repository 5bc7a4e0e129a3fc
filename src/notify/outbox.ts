import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
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
  /** Messages of one claim handed to the transport at the same time (its pool spreads them over connections). */
  concurrency?: number;
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
// Accepted messages are marked sent ten at a time: a crash can then resend only the sends in
// flight and at most nine accepted-but-unrecorded ones, each with its original Message-ID. One
// UPDATE per message would narrow that further but costs the 10,000-contact fan-out its 60 s target
// on this machine (measured: 68 s against 17 s); decision 0023.
const SETTLE_EVERY = 10;

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
 * A subject made from names people typed (a rule, a checklist): line breaks and other control
 * characters become spaces. queueEmail refuses them (a line break would start a new header), and an
 * alert whose only e-mail is refused for its rule's name would be an alarm nobody hears.
 */
export function subjectLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
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

const QUEUE_CHUNK = 500;

/**
 * Queues many e-mails at once (R8.1 fan-out), in chunks of 500 rows per INSERT, inside the
 * caller's transaction when given one. Every address is checked before anything is written.
 * Returns how many rows were new (repeats of a dedupe key are ignored, as in queueEmail).
 */
export async function queueEmails(dbOrTx: DbOrTx, clock: Clock, inputs: readonly QueueEmailInput[]): Promise<number> {
  for (const input of inputs) {
    if (!isValidEmailAddress(input.to)) throw errors.invalidField('to', `メールアドレス「${input.to}」は正しくありません。`, `"${input.to}" is not a valid e-mail address.`);
    if (input.dedupeKey.trim() === '') throw errors.invalidField('dedupeKey', '重複防止キーが空です。', 'the dedupe key is empty.');
    if (/[\r\n]/.test(input.subject)) throw errors.invalidField('subject', '件名に改行は使えません。', 'the subject must not contain line breaks.');
  }
  const now = clock.now();
  // One stored text per distinct body: 10,000 recipients of one notice share two (ja, en).
  const bodies = new Map<string, string>();
  for (const input of inputs) if (!bodies.has(input.text)) bodies.set(input.text, randomUUID());
  const bodyRows = [...bodies].map(([text_body, id]) => ({ id, text_body, created_at: now }));
  for (let i = 0; i < bodyRows.length; i += QUEUE_CHUNK) await dbOrTx.insertInto('outbound_email_bodies').values(bodyRows.slice(i, i + QUEUE_CHUNK)).execute();
  let queued = 0;
  for (let i = 0; i < inputs.length; i += QUEUE_CHUNK) {
    const rows = inputs.slice(i, i + QUEUE_CHUNK).map((input) => ({
      id: randomUUID(),
      dedupe_key: input.dedupeKey,
      to_address: input.to,
      subject: input.subject,
      text_body: '',
      body_id: bodies.get(input.text)!,
      created_at: now,
      state: 'queued' as const,
      attempts: 0,
      next_attempt_at: now,
      last_error: null,
      sent_at: null,
      message_id: null,
    }));
    const inserted = await dbOrTx.insertInto('outbound_emails').values(rows).onConflict((oc) => oc.column('dedupe_key').doNothing()).returning('id').execute();
    queued += inserted.length;
  }
  return queued;
}

export interface MailTransportOptions {
  /** SMTP connections kept open and used in parallel (nodemailer's pool). */
  maxConnections?: number;
}

/**
 * A pooled SMTP transporter for a URL such as smtp://127.0.0.1:2525 or smtps://user:pass@host:465:
 * connections are reused across messages, several in parallel, so a notice to thousands of
 * contacts is not one TCP and SMTP handshake per message.
 */
export function createMailTransport(smtpUrl: string, from: string, opts: MailTransportOptions = {}): Transporter<SMTPTransport.SentMessageInfo> {
  return nodemailer.createTransport(
    { url: smtpUrl, pool: true, maxConnections: opts.maxConnections ?? 5, maxMessages: 1000, connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000 } as SMTPTransport.Options,
    { from },
  );
}

/**
 * Sends the due e-mails. Rows are claimed with FOR UPDATE SKIP LOCKED and leased by moving
 * next_attempt_at past the lease, so a concurrent instance skips them; each is then marked sent
 * (with its message id) or given a later attempt with exponential backoff, failed after
 * MAX_ATTEMPTS. When SMTP is down the e-mails simply wait for a later run.
 */
export async function deliverDueEmails(db: Db, clock: Clock, transport: MailTransport, opts: DeliverOptions = {}): Promise<DeliveryResult> {
  const batch = opts.batch ?? 100;
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const concurrency = Math.max(1, opts.concurrency ?? 10);
  const bodyCache = new Map<string, string>();
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
      .returning(['id', 'to_address', 'subject', 'text_body', 'body_id', 'attempts'])
      .execute();
    if (claimed.length === 0) return result;
    // A send starts only in the first half of the claim's lease. A send ends within the transport's
    // timeouts (90 s at most with createMailTransport's, against a 5-minute lease), so every send
    // of this claim ends before another run may take its rows over: none is sent twice by two runs.
    const claimHolds = () => clock.now().getTime() < now.getTime() + leaseMs / 2;
    const missing = [...new Set(claimed.map((c) => c.body_id).filter((b): b is string => !!b && !bodyCache.has(b)))];
    if (missing.length) for (const b of await db.selectFrom('outbound_email_bodies').select(['id', 'text_body']).where('id', 'in', missing).execute()) bodyCache.set(b.id, b.text_body);
    let next = 0;
    // Accepted messages are marked sent a few at a time (one UPDATE for up to SETTLE_EVERY rows),
    // each still only if this claim holds it (same attempt count, still queued).
    const accepted: Array<{ id: string; attempts: number; at: string; messageId: string }> = [];
    const flush = async (): Promise<void> => {
      const rows = accepted.splice(0);
      if (rows.length === 0) return;
      const values = sql.join(rows.map((r) => sql`(${r.id}::uuid, ${r.attempts}::int, ${r.at}::timestamptz, ${r.messageId}::text)`));
      const settled = await sql`update outbound_emails as o set state = 'sent', sent_at = v.sent_at, message_id = v.message_id, last_error = null
        from (values ${values}) as v(id, attempts, sent_at, message_id)
        where o.id = v.id and o.state = 'queued' and o.attempts = v.attempts`.execute(db);
      result.sent += Number(settled.numAffectedRows ?? rows.length);
    };
    const settleOne = async (row: (typeof claimed)[number]): Promise<void> => {
      // Only the holder of this claim (same attempt count, still queued) may settle the row.
      const mine = db.updateTable('outbound_emails').where('id', '=', row.id).where('state', '=', 'queued').where('attempts', '=', row.attempts);
      let info: SMTPTransport.SentMessageInfo;
      try {
        const text = row.body_id ? bodyCache.get(row.body_id) : row.text_body;
        if (text === undefined) throw new Error(`the text of e-mail ${row.id} is missing`);
        info = await transport.sendMail({ to: row.to_address, subject: row.subject, text, messageId: `<${row.id}@hokan.outbox>` });
      } catch (err) {
        const message = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
        const giveUp = row.attempts >= MAX_ATTEMPTS;
        await mine
          .set({ state: giveUp ? 'failed' : 'queued', next_attempt_at: new Date(clock.now().getTime() + retryDelayMs(row.attempts)), last_error: message })
          .execute();
        if (giveUp) result.failed++;
        else result.retried++;
        return;
      }
      accepted.push({ id: row.id, attempts: row.attempts, at: clock.now().toISOString(), messageId: info.messageId });
      if (accepted.length >= SETTLE_EVERY) await flush();
    };
    // A few sends of the claim in flight at once; each row is still settled only by this claim.
    const lane = async (): Promise<void> => {
      while (next < claimed.length && !opts.signal?.aborted && claimHolds()) await settleOne(claimed[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, claimed.length) }, lane));
    await flush();
    if (opts.signal?.aborted || next < claimed.length) {
      // Shutting down, or the claim is half over (a slow relay): what is not sent yet goes back at
      // once (attempt not counted), for another instance or this run's next claim.
      for (const r of claimed.slice(next)) {
        await db
          .updateTable('outbound_emails')
          .set({ attempts: r.attempts - 1, next_attempt_at: clock.now() })
          .where('id', '=', r.id)
          .where('state', '=', 'queued')
          .where('attempts', '=', r.attempts)
          .execute();
      }
      if (opts.signal?.aborted) return result;
    }
  }
}

export interface EmailDeliveryState {
  id: string;
  to: string;
  state: 'queued' | 'sent' | 'failed';
  queuedAt: Date;
  sentAt: Date | null;
  attempts: number;
  lastError: string | null;
}

/** Where queued e-mails stand (for records of who was told what and when, e.g. R2.1); unknown ids are left out. */
export async function emailDeliveryStates(db: DbOrTx, ids: readonly string[]): Promise<Map<string, EmailDeliveryState>> {
  const out = new Map<string, EmailDeliveryState>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('outbound_emails')
    .select(['id', 'to_address', 'state', 'created_at', 'sent_at', 'attempts', 'last_error'])
    .where('id', 'in', [...new Set(ids)])
    .execute();
  for (const r of rows) out.set(r.id, { id: r.id, to: r.to_address, state: r.state, queuedAt: r.created_at, sentAt: r.sent_at, attempts: r.attempts, lastError: r.last_error });
  return out;
}
