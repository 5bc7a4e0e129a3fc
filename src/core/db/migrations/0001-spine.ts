import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// Raw SQL keeps the schema readable as PostgreSQL, which both PGlite and the server speak.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table customers (
      id uuid primary key,
      code text not null unique,
      name text not null,
      contact_email text not null,
      created_at timestamptz not null
    );

    create table users (
      id uuid primary key,
      kind text not null check (kind in ('operator', 'customer')),
      customer_id uuid references customers(id),
      login_id text not null unique,
      display_name text not null,
      email text not null,
      roles text[] not null,
      password_hash text not null,
      disabled_at timestamptz,
      created_at timestamptz not null,
      check ((kind = 'operator') = (customer_id is null))
    );
    create index users_customer_idx on users (customer_id);

    create table sessions (
      token_hash text primary key,
      user_id uuid not null references users(id),
      created_at timestamptz not null,
      expires_at timestamptz not null
    );
    create index sessions_user_idx on sessions (user_id);

    create table api_tokens (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      name text not null,
      secret_hash text not null,
      created_by uuid not null references users(id),
      created_at timestamptz not null,
      revoked_at timestamptz,
      last_used_at timestamptz
    );
    create index api_tokens_customer_idx on api_tokens (customer_id);

    create table contracts (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      contract_number text not null unique,
      status text not null check (status in ('active', 'suspended', 'ended')),
      term_start date not null,
      term_end date not null,
      monthly_fee_yen integer check (monthly_fee_yen >= 0),
      system_use_contract_number text not null,
      system_use_contract_end date,
      support_contract_number text not null,
      support_contract_end date,
      suspension_reason text,
      suspension_note text,
      suspended_at timestamptz,
      scheduled_end_at timestamptz,
      scheduled_end_reason text,
      ended_at timestamptz,
      end_reason text,
      end_note text,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      version integer not null default 1,
      check (term_end >= term_start),
      check ((status = 'suspended') = (suspension_reason is not null)),
      check ((status = 'ended') = (ended_at is not null))
    );
    create index contracts_customer_idx on contracts (customer_id);
    create index contracts_open_idx on contracts (status) where status <> 'ended';

    create table termination_notices (
      id uuid primary key,
      contract_id uuid not null references contracts(id),
      received_at timestamptz not null,
      end_date date not null,
      earliest_end_date date not null,
      no_refund boolean not null,
      filed_by uuid not null references users(id),
      note text not null,
      check (end_date >= earliest_end_date)
    );
    create index termination_notices_contract_idx on termination_notices (contract_id);

    create table breach_notices (
      id uuid primary key,
      contract_id uuid not null references contracts(id),
      issued_at timestamptz not null,
      cure_deadline timestamptz not null,
      description text not null,
      issued_by uuid not null references users(id),
      cured_at timestamptz,
      cured_note text,
      check (cure_deadline > issued_at)
    );
    create index breach_notices_contract_idx on breach_notices (contract_id);

    create table data_deletion_due (
      id uuid primary key,
      contract_id uuid not null unique references contracts(id),
      customer_id uuid not null references customers(id),
      contract_ended_at timestamptz not null,
      created_at timestamptz not null,
      consumed_at timestamptz,
      consumed_by text
    );

    create table audit_log (
      seq bigint generated always as identity primary key,
      at timestamptz not null,
      actor_kind text not null,
      actor_id text,
      actor_label text not null,
      action text not null,
      subject_type text not null,
      subject_id text not null,
      customer_id uuid,
      reason text,
      details jsonb not null,
      prev_hash text not null,
      hash text not null unique
    );
    create index audit_log_subject_idx on audit_log (subject_type, subject_id);
    create index audit_log_customer_idx on audit_log (customer_id);

    -- Append-only: the application never rewrites history, and the database refuses to.
    create function audit_log_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_log is append-only';
    end $$;
    create trigger audit_log_no_update before update or delete or truncate on audit_log
      for each statement execute function audit_log_append_only();

    create table jobs (
      id uuid primary key,
      queue text not null,
      payload jsonb not null,
      state text not null check (state in ('queued', 'active', 'completed', 'failed')),
      singleton_key text unique,
      run_at timestamptz not null,
      attempts integer not null default 0,
      max_attempts integer not null,
      locked_by text,
      locked_until timestamptz,
      last_error text,
      created_at timestamptz not null,
      completed_at timestamptz
    );
    create index jobs_due_idx on jobs (run_at) where state = 'queued';
    create index jobs_lease_idx on jobs (locked_until) where state = 'active';
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
