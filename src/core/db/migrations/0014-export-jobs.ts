import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R10.5: the customer's own export, run as a job whose progress the portal shows.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table data_export_jobs (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      requested_by uuid not null,
      requested_by_label text not null,
      source_ip text,
      state text not null check (state in ('queued', 'running', 'done', 'failed')),
      items_total integer not null default 0,
      records_done integer not null default 0,
      files_done integer not null default 0,
      bytes bigint not null default 0,
      blob_key text,
      filename text,
      sha256 text,
      error text,
      created_at timestamptz not null,
      started_at timestamptz,
      finished_at timestamptz,
      expires_at timestamptz not null
    );
    create index data_export_jobs_customer_idx on data_export_jobs (customer_id, created_at desc);
  `);
}
