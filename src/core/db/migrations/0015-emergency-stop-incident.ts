import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R7.3: an emergency stop is linked to the incident that caused it (optional: a stop may come first).
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    alter table service_stops add column incident_id uuid references incidents(id);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
