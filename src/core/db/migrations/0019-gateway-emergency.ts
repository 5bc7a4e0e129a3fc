import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R13.1: an operator's emergency declaration, shared by every instance (decision 0014): each one
// reads it on start and at a short interval, so the declaration holds wherever a request lands.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table gateway_emergency (
      id smallint primary key check (id = 1),
      active boolean not null,
      reason text,
      since timestamptz,
      changed_at timestamptz not null,
      changed_by text not null
    );
  `);
}
