import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R4.1, R12.2, R11.1③, R13.1: what the gateway saw and did, for records and statistics.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table gateway_events (
      id bigint generated always as identity primary key,
      at timestamptz not null,
      kind text not null check (kind in ('abroad_refused', 'ids', 'misuse', 'admission_rejected')),
      class text not null,
      rule_id text,
      action text not null,
      source_ip text,
      country text,
      customer_id uuid,
      credential_id text,
      method text,
      path text,
      sample text,
      details jsonb not null
    );
    create index gateway_events_at_idx on gateway_events (at);
    create index gateway_events_kind_idx on gateway_events (kind, at);
    create index gateway_events_customer_idx on gateway_events (customer_id, at);

    -- R11.1③: customers flagged for review (or suspended) after misuse of their credentials.
    create table misuse_flags (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      credential_id text,
      kind text not null,
      action text not null,
      detail text not null,
      source_ip text,
      created_at timestamptz not null,
      reviewed_at timestamptz,
      reviewed_by text
    );
    create index misuse_flags_customer_idx on misuse_flags (customer_id, created_at);

    alter table api_tokens add column locked_at timestamptz;
    alter table api_tokens add column locked_reason text;
    alter table users add column totp_secret text;
    alter table users add column totp_last_step bigint;
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
