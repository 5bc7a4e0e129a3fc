import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R10.4: a restore started from the console runs as a job whose progress the console shows.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table backup_restore_jobs (
      id uuid primary key,
      backup_id uuid not null references backups(id),
      customer_id uuid not null references customers(id),
      from_target text not null check (from_target in ('primary', 'offsite')),
      state text not null check (state in ('queued', 'running', 'done', 'failed')),
      phase text check (phase in ('manifest', 'files', 'records', 'cleanup', 'done')),
      done integer not null default 0,
      total integer not null default 0,
      records integer,
      files integer,
      error text,
      job_id uuid,
      requested_by_kind text not null,
      requested_by_id uuid,
      requested_by_label text not null,
      created_at timestamptz not null,
      started_at timestamptz,
      finished_at timestamptz
    );
    create index backup_restore_jobs_created_idx on backup_restore_jobs (created_at desc);
    -- One restore of a customer at a time: two would both replace the same rows and files.
    create unique index backup_restore_jobs_one_active_idx on backup_restore_jobs (customer_id) where state in ('queued', 'running');
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
