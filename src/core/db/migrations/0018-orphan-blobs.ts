import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// Live file objects no row references, seen by the daily sweep; removed a day after first seen
// if still unreferenced (src/data/orphan-blobs.ts, decision 0026).
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table orphan_blob_candidates (
      blob_key text primary key,
      customer_id uuid not null,
      first_seen timestamptz not null
    );
    create index orphan_blob_candidates_customer_idx on orphan_blob_candidates (customer_id, first_seen);
  `);
}
