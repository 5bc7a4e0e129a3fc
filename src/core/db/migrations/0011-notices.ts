import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// notify: notices (R7.2, R7.3, R8.1, R8.2) — contacts, public status components, posts to the
// status page and their recipients (the proof of notice), signed webhooks and the public e-mail
// subscription. E-mail itself goes through outbound_emails (0007).
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    -- A notice to thousands of contacts has one text per language: the outbox rows of a batch
    -- share it instead of each carrying a copy (what was sent stays in this table).
    create table outbound_email_bodies (
      id uuid primary key,
      text_body text not null,
      created_at timestamptz not null
    );
    alter table outbound_emails add column body_id uuid references outbound_email_bodies(id);

    -- R8.1: the addresses a customer registered for notices, besides its contact e-mail and admins.
    create table notice_contacts (
      id uuid primary key,
      customer_id uuid not null references customers(id) on delete cascade,
      email text not null,
      name text not null default '',
      lang text not null check (lang in ('ja', 'en')),
      created_at timestamptz not null,
      created_by text not null
    );
    create unique index notice_contacts_address_idx on notice_contacts (customer_id, lower(email));

    -- The parts of the service the public status page shows.
    create table status_components (
      key text primary key check (key ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
      name_ja text not null,
      name_en text not null,
      position integer not null default 0,
      created_at timestamptz not null
    );
    create table incident_components (
      incident_id uuid not null references incidents(id) on delete cascade,
      component_key text not null references status_components(key) on delete cascade,
      primary key (incident_id, component_key)
    );
    create table stop_components (
      stop_id uuid not null references service_stops(id) on delete cascade,
      component_key text not null references status_components(key) on delete cascade,
      primary key (stop_id, component_key)
    );

    -- One notice as posted: shown on the status page (public) and e-mailed. Incident posts are
    -- numbered per stage (第一報 = first/1, 第二報 = update/2 …); a stop has each stage once.
    create table notice_posts (
      id uuid primary key,
      incident_id uuid references incidents(id) on delete cascade,
      stop_id uuid references service_stops(id) on delete cascade,
      stage text not null check (stage in ('first', 'update', 'recovery', 'report', 'stop_planned', 'stop_reminder', 'stop_emergency')),
      seq integer not null,
      subject_ja text not null,
      subject_en text not null,
      body_ja text not null,
      body_en text not null,
      public boolean not null default true,
      posted_at timestamptz not null,
      posted_by text not null,
      check ((incident_id is null) <> (stop_id is null))
    );
    create unique index notice_posts_incident_seq_idx on notice_posts (incident_id, seq) where incident_id is not null;
    create unique index notice_posts_incident_stage_idx on notice_posts (incident_id, stage) where incident_id is not null and stage <> 'update';
    create unique index notice_posts_stop_stage_idx on notice_posts (stop_id, stage) where stop_id is not null;
    create index notice_posts_posted_idx on notice_posts (posted_at desc);

    -- Proof of notice: who each post was addressed to (customer_id null: a public subscriber);
    -- the delivery state is the outbox row with the same dedupe key.
    create table notice_recipients (
      post_id uuid not null references notice_posts(id) on delete cascade,
      customer_id uuid references customers(id) on delete cascade,
      address text not null,
      lang text not null check (lang in ('ja', 'en')),
      source text not null check (source in ('contact', 'customer', 'admin', 'subscriber')),
      dedupe_key text not null,
      queued_at timestamptz not null
    );
    create unique index notice_recipients_idx on notice_recipients (post_id, customer_id, lower(address)) nulls not distinct;
    create index notice_recipients_customer_idx on notice_recipients (customer_id, post_id);

    -- Signed webhooks registered by operators; the secret signs every delivery.
    create table webhooks (
      id uuid primary key,
      url text not null,
      description text not null default '',
      secret text not null,
      active boolean not null default true,
      created_at timestamptz not null,
      created_by text not null
    );
    create table webhook_deliveries (
      id uuid primary key,
      webhook_id uuid not null references webhooks(id) on delete cascade,
      post_id uuid not null references notice_posts(id) on delete cascade,
      body text not null,
      state text not null check (state in ('queued', 'delivered', 'failed')),
      attempts integer not null default 0,
      next_attempt_at timestamptz not null,
      last_status integer,
      last_error text,
      delivered_at timestamptz,
      created_at timestamptz not null,
      unique (webhook_id, post_id)
    );
    create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where state = 'queued';

    -- The public e-mail subscription to the status page (double opt-in).
    create table status_subscribers (
      id uuid primary key,
      email text not null,
      lang text not null check (lang in ('ja', 'en')),
      confirm_token_hash text not null unique,
      unsubscribe_token text not null unique,
      created_at timestamptz not null,
      confirmation_sent_at timestamptz not null,
      confirmed_at timestamptz,
      unsubscribed_at timestamptz
    );
    create unique index status_subscribers_email_idx on status_subscribers (lower(email));
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
