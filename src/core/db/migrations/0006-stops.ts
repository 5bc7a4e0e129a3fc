import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R7.2–R7.4: planned and emergency service stops, for all customers or a list of them.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table service_stops (
      id uuid primary key,
      kind text not null check (kind in ('planned', 'emergency')),
      reason text not null,
      description text not null,
      starts_at timestamptz not null,
      ends_at timestamptz,
      all_customers boolean not null,
      announced_at timestamptz,
      override_reason text,
      ended_at timestamptz,
      cancelled_at timestamptz,
      created_by text not null,
      created_at timestamptz not null,
      check (kind = 'emergency' or ends_at is not null),
      check (ends_at is null or ends_at >= starts_at)
    );
    -- The stops that may still be in force: what the data API looks at on every request.
    create index service_stops_open_idx on service_stops (starts_at) where cancelled_at is null and ended_at is null;

    create table service_stop_customers (
      stop_id uuid not null references service_stops(id),
      customer_id uuid not null references customers(id),
      primary key (stop_id, customer_id)
    );
    create index service_stop_customers_customer_idx on service_stop_customers (customer_id);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
