import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// R10.1–R10.7: per-customer keys, the backup catalog, checks and drills, deletion certificates.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    -- The customer's data key, wrapped by the master key. Destroying it (wrapped_key = null)
    -- makes every backup of the customer undecryptable, wherever a copy lies (R10.7).
    create table customer_keys (
      customer_id uuid primary key references customers(id),
      wrapped_key text,
      key_fingerprint text not null,
      master_key_fingerprint text not null,
      created_at timestamptz not null,
      destroyed_at timestamptz,
      check ((wrapped_key is null) = (destroyed_at is not null))
    );

    create table backups (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      generation text not null check (generation in ('daily', 'weekly', 'manual')),
      state text not null check (state in ('running', 'good', 'failed', 'expired', 'purged')),
      started_at timestamptz not null,
      finished_at timestamptz,
      snapshot_records integer,
      snapshot_files integer,
      plain_bytes bigint,
      stored_bytes bigint,
      parts jsonb not null,
      key_fingerprint text not null,
      primary_target text not null,
      retain_until timestamptz not null,
      offsite_target text,
      offsite_state text not null check (offsite_state in ('pending', 'copied', 'failed', 'skipped', 'not_configured', 'removed')),
      offsite_copied_at timestamptz,
      offsite_error text,
      error text,
      instance_id text not null
    );
    create index backups_customer_idx on backups (customer_id, started_at desc);
    create index backups_state_idx on backups (state, retain_until);

    create table backup_checks (
      id uuid primary key,
      backup_id uuid not null references backups(id),
      kind text not null check (kind in ('verify', 'drill')),
      target text not null check (target in ('primary', 'offsite')),
      started_at timestamptz not null,
      finished_at timestamptz not null,
      ok boolean not null,
      detail jsonb not null
    );
    create index backup_checks_backup_idx on backup_checks (backup_id, started_at desc);

    -- Progress of a purge, so a purge interrupted half-way resumes and still certifies everything.
    alter table data_deletion_due add column purge_progress jsonb;

    create table deletion_certificates (
      id uuid primary key,
      customer_id uuid not null unique references customers(id),
      issued_at timestamptz not null,
      body jsonb not null,
      sha256 text not null
    );
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
