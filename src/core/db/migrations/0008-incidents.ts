import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R8.1–R8.4, R20: incidents with their times, SLA targets and liability findings.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table incidents (
      id uuid primary key,
      title text not null,
      severity text not null check (severity in ('critical', 'major', 'minor')),
      cause text,
      opened_by text not null,
      occurred_at timestamptz not null,
      detected_at timestamptz not null,
      first_notice_at timestamptz,
      recovered_at timestamptz,
      recovery_notice_at timestamptz,
      report_at timestamptz,
      entirely_unusable boolean not null default false,
      provider_fault boolean not null default true,
      exclusion text,
      all_customers boolean not null,
      created_at timestamptz not null,
      check (detected_at >= occurred_at)
    );
    create index incidents_occurred_idx on incidents (occurred_at desc);
    create table incident_customers (
      incident_id uuid not null references incidents(id),
      customer_id uuid not null references customers(id),
      primary key (incident_id, customer_id)
    );
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
