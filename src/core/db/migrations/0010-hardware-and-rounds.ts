import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R12.3①: hardware hosts, their samples, threshold rules and alert episodes.
// R12.3③: visual-round checklists (versioned) and the rounds recorded against them.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table hardware_hosts (
      id uuid primary key,
      name text not null,
      kind text not null check (kind in ('agent', 'self')),
      token_hash text,
      created_by text not null,
      created_at timestamptz not null,
      token_issued_at timestamptz,
      last_seen_at timestamptz,
      last_sample_at timestamptz,
      retired_at timestamptz
    );
    create unique index hardware_hosts_name_idx on hardware_hosts (name) where retired_at is null;
    create table hardware_samples (
      host_id uuid not null references hardware_hosts(id),
      at timestamptz not null,
      received_at timestamptz not null,
      metrics jsonb not null,
      primary key (host_id, at)
    );
    create index hardware_samples_at_idx on hardware_samples (at);
    create table hardware_rules (
      id uuid primary key,
      name text not null,
      host_id uuid references hardware_hosts(id),
      metric text not null,
      target text,
      comparison text not null check (comparison in ('>', '>=', '<', '<=')),
      threshold double precision not null,
      duration_seconds integer not null check (duration_seconds >= 0),
      severity text not null check (severity in ('critical', 'major', 'minor', 'warning')),
      enabled boolean not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      deleted_at timestamptz
    );
    create table hardware_rule_states (
      rule_id uuid not null references hardware_rules(id),
      host_id uuid not null references hardware_hosts(id),
      breach_since timestamptz,
      primary key (rule_id, host_id)
    );
    create table hardware_alerts (
      id uuid primary key,
      rule_id uuid not null references hardware_rules(id),
      host_id uuid not null references hardware_hosts(id),
      severity text not null,
      metric text not null,
      value double precision not null,
      started_at timestamptz not null,
      raised_at timestamptz not null,
      recovered_at timestamptz,
      closed_reason text,
      incident_id uuid,
      incident_claimed_at timestamptz
    );
    create unique index hardware_alerts_open_idx on hardware_alerts (rule_id, host_id) where recovered_at is null;
    create index hardware_alerts_raised_idx on hardware_alerts (raised_at desc);
    create table round_checklists (
      id uuid primary key,
      name text not null,
      interval_hours integer check (interval_hours between 1 and 8760),
      current_version integer not null,
      created_at timestamptz not null,
      retired_at timestamptz
    );
    create table round_checklist_versions (
      checklist_id uuid not null references round_checklists(id),
      version integer not null,
      items jsonb not null,
      created_by text not null,
      created_at timestamptz not null,
      note text,
      primary key (checklist_id, version)
    );
    create table rounds (
      id uuid primary key,
      checklist_id uuid not null references round_checklists(id),
      checklist_version integer not null,
      performed_by text not null,
      performed_by_id uuid,
      performed_at timestamptz not null,
      recorded_at timestamptz not null,
      results jsonb not null,
      findings integer not null
    );
    create index rounds_checklist_idx on rounds (checklist_id, performed_at desc);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
