import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R3.1: the Software's records and files, one customer (tenant) per row; R10.* access log.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table data_records (
      customer_id uuid not null references customers(id),
      collection text not null,
      id text not null,
      version integer not null,
      data jsonb not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      primary key (customer_id, collection, id)
    );
    create index data_records_data_idx on data_records using gin (data jsonb_path_ops);

    create table data_files (
      customer_id uuid not null references customers(id),
      id uuid not null,
      name text not null,
      content_type text not null,
      size bigint not null,
      sha256 text not null,
      blob_key text not null,
      created_at timestamptz not null,
      primary key (customer_id, id)
    );

    -- Who read or changed which record or file, hash-chained per customer.
    create table data_access_log (
      seq bigint generated always as identity primary key,
      customer_id uuid not null,
      at timestamptz not null,
      actor_kind text not null,
      actor_id text,
      actor_label text not null,
      source_ip text,
      operation text not null,
      target_type text not null,
      collection text,
      target_id text,
      prev_hash text not null,
      hash text not null
    );
    create index data_access_log_customer_idx on data_access_log (customer_id, seq);
    create index data_access_log_at_idx on data_access_log (at);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
