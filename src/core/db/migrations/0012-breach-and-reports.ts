import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// Personal-data breaches (漏えい・滅失・毀損) linked to an incident: what the processor must tell each
// affected customer (the controller) under APPI Art. 26 and 施行規則 第7条・第8条, per customer with
// its own clock and the record of each notice given. Decision 0020.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table personal_data_breaches (
      id uuid primary key,
      incident_id uuid not null unique references incidents(id),
      kinds text[] not null check (cardinality(kinds) between 1 and 3 and kinds <@ array['leak', 'loss', 'damage']::text[]),
      status text not null check (status in ('suspected', 'confirmed', 'ruled_out')),
      learned_at timestamptz not null,
      began_at timestamptz,
      unauthorised_purpose boolean not null,
      cause text not null default '',
      secondary_damage text not null default '',
      countermeasures text not null default '',
      contact text not null default '',
      timeline jsonb not null default '[]',
      created_by text not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      check (began_at is null or began_at <= learned_at)
    );
    create table personal_data_breach_customers (
      breach_id uuid not null references personal_data_breaches(id),
      customer_id uuid not null references customers(id),
      learned_at timestamptz not null,
      data_items text[] not null default '{}',
      people_count integer check (people_count is null or people_count >= 0),
      people_estimated boolean not null default false,
      sensitive boolean not null default false,
      financial_risk boolean not null default false,
      advanced_measures boolean not null default false,
      protection_note text not null default '',
      preliminary_at timestamptz,
      preliminary_by text,
      final_at timestamptz,
      final_by text,
      primary key (breach_id, customer_id),
      check (final_at is null or (preliminary_at is not null and final_at >= preliminary_at)),
      check (preliminary_at is null or preliminary_at >= learned_at)
    );
    create index personal_data_breach_customers_customer_idx on personal_data_breach_customers (customer_id);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
