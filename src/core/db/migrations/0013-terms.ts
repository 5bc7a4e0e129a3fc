import type { Kysely } from 'kysely';
import { runScript } from './run-script.js';

// terms (R1.1–R2.2): terms versions, notices (お知らせ) with their audience, the per-customer record
// of how each change was notified, and consultations (協議) opened by a customer's disagreement.
// A published version or notice is immutable: the database refuses to change or delete it.
export async function up(db: Kysely<unknown>): Promise<void> {
  await runScript(db, `
    create table terms_versions (
      id uuid primary key,
      edition text not null unique,
      effective_date date not null,
      title text,
      document jsonb not null,
      source_text text not null,
      source_sha256 text not null,
      state text not null check (state in ('draft', 'published')),
      published_at timestamptz,
      published_by text,
      created_by text not null,
      created_at timestamptz not null,
      check ((state = 'published') = (published_at is not null))
    );

    create table terms_notices (
      id uuid primary key,
      channel text not null check (channel in ('support_site', 'support_guide')),
      guide_edition text,
      topic text not null,
      title_ja text not null,
      body_ja text not null,
      title_en text,
      body_en text,
      effective_at timestamptz not null,
      all_customers boolean not null,
      state text not null check (state in ('draft', 'published')),
      published_at timestamptz,
      published_by text,
      created_by text not null,
      created_at timestamptz not null,
      updated_at timestamptz not null,
      check ((state = 'published') = (published_at is not null)),
      check ((channel = 'support_guide') = (guide_edition is not null))
    );
    create index terms_notices_topic_idx on terms_notices (topic, published_at);
    create table terms_notice_customers (
      notice_id uuid not null references terms_notices(id) on delete cascade,
      customer_id uuid not null references customers(id),
      primary key (notice_id, customer_id)
    );
    create index terms_notice_customers_customer_idx on terms_notice_customers (customer_id);

    create function terms_published_immutable() returns trigger language plpgsql as $$
    begin
      if old.state = 'published' then
        raise exception 'a published % is immutable', tg_table_name;
      end if;
      if tg_op = 'DELETE' then
        return old;
      end if;
      return new;
    end $$;
    create trigger terms_versions_immutable before update or delete on terms_versions
      for each row execute function terms_published_immutable();
    create trigger terms_notices_immutable before update or delete on terms_notices
      for each row execute function terms_published_immutable();

    create table terms_notifications (
      id uuid primary key,
      change_kind text not null check (change_kind in ('terms_version', 'notice')),
      change_id uuid not null,
      customer_id uuid not null references customers(id),
      channel text not null check (channel in ('portal', 'email')),
      recipient text not null,
      recipient_roles text[] not null,
      outbox_email_id uuid,
      notified_at timestamptz not null,
      unique (change_kind, change_id, customer_id, channel, recipient)
    );
    create index terms_notifications_customer_idx on terms_notifications (customer_id, notified_at);

    create table terms_consultations (
      id uuid primary key,
      customer_id uuid not null references customers(id),
      change_kind text not null check (change_kind in ('terms_version', 'notice')),
      change_id uuid not null,
      state text not null check (state in ('open', 'closed')),
      opened_by text not null,
      opened_at timestamptz not null,
      closed_at timestamptz,
      closed_by text,
      close_note text
    );
    -- One open consultation per customer and change.
    create unique index terms_consultations_open_idx on terms_consultations (customer_id, change_kind, change_id) where state = 'open';
    create table terms_consultation_messages (
      id uuid primary key,
      seq bigint generated always as identity,
      consultation_id uuid not null references terms_consultations(id),
      author_kind text not null check (author_kind in ('customer_user', 'operator')),
      author_id text not null,
      author_label text not null,
      body text not null,
      created_at timestamptz not null
    );
    create index terms_consultation_messages_idx on terms_consultation_messages (consultation_id, seq);
  `);
}

export async function down(): Promise<void> {
  throw new Error('hokan migrations are forward-only');
}
