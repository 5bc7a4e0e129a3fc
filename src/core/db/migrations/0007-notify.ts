import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// notify: the e-mail outbox. A row is queued in the transaction of the event it reports and
// sent later by the notify.deliver job, so a notice is neither lost nor sent twice.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table outbound_emails (
      id uuid primary key,
      dedupe_key text not null unique,
      to_address text not null,
      subject text not null,
      text_body text not null,
      created_at timestamptz not null,
      state text not null check (state in ('queued', 'sent', 'failed')),
      attempts integer not null default 0,
      next_attempt_at timestamptz not null,
      last_error text,
      sent_at timestamptz,
      message_id text
    );
    -- What the delivery job looks at: the queued rows by when they are due.
    create index outbound_emails_due_idx on outbound_emails (next_attempt_at) where state = 'queued';
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
