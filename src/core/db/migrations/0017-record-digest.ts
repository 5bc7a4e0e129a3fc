import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R10.4: every record carries a digest of its JSON text, kept by the database itself, so a restore
// finds the rows that differ from a backup by comparing 16 bytes instead of writing every live
// row out as text (decision 0026). Stored and generated: no code path, not even a direct SQL
// update, can leave it stale.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    alter table data_records add column data_digest uuid not null generated always as (md5(data::text)::uuid) stored;
  `);
}
