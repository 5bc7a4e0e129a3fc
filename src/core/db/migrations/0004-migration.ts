import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R10.6: data migration at contract end, on request, billed separately.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table billable_items (
      id uuid primary key,
      contract_id uuid not null references contracts(id),
      customer_id uuid not null references customers(id),
      kind text not null,
      description text not null,
      -- Set by the billing role; seen like the fee (R14.1).
      amount_yen integer check (amount_yen >= 0),
      created_at timestamptz not null
    );
    create index billable_items_contract_idx on billable_items (contract_id);

    create table migration_requests (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      requested_at timestamptz not null,
      requested_by text not null,
      note text not null,
      state text not null check (state in ('requested', 'produced', 'delivered', 'lapsed')),
      package_key text,
      package_sha256 text,
      package_size bigint,
      produced_at timestamptz,
      delivered_at timestamptz,
      billable_item_id uuid references billable_items(id)
    );
    create unique index migration_requests_open_idx on migration_requests (customer_id) where state in ('requested', 'produced');
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
