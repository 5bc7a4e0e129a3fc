import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R12.3②: service monitors, their state (streaks for retries and flap damping, the incident a
// monitor opened), and a compact history of results (one narrow row per check) for the charts.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table monitors (
      id uuid primary key,
      name text not null,
      kind text not null check (kind in ('http', 'tcp', 'dns', 'tls', 'heartbeat', 'database', 'backup_freshness', 'offsite_lag')),
      target jsonb not null,
      interval_s integer not null check (interval_s >= 10),
      retry_interval_s integer not null check (retry_interval_s >= 10),
      timeout_ms integer not null check (timeout_ms > 0),
      retries integer not null check (retries >= 0),
      recover_after integer not null check (recover_after >= 1),
      severity text not null check (severity in ('critical', 'major', 'minor')),
      component text not null,
      all_customers boolean not null,
      enabled boolean not null,
      heartbeat_token_hash text,
      state text not null check (state in ('unknown', 'up', 'down')),
      fail_streak integer not null default 0,
      ok_streak integer not null default 0,
      streak_started_at timestamptz,
      last_check_at timestamptz,
      last_ok boolean,
      last_latency_ms integer,
      last_error text,
      last_beat_at timestamptz,
      next_check_at timestamptz not null,
      open_incident_id uuid,
      created_at timestamptz not null,
      updated_at timestamptz not null
    );
    create index monitors_due_idx on monitors (next_check_at) where enabled;
    create table monitor_customers (
      monitor_id uuid not null references monitors(id) on delete cascade,
      customer_id uuid not null references customers(id),
      primary key (monitor_id, customer_id)
    );
    create table monitor_results (
      monitor_id uuid not null references monitors(id) on delete cascade,
      checked_at timestamptz not null,
      ok boolean not null,
      latency_ms integer,
      error text,
      primary key (monitor_id, checked_at)
    );
    create index monitor_results_checked_idx on monitor_results (checked_at);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
