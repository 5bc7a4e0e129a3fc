import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { TermsConsultationMessagesTable, TermsConsultationsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { getNotice } from './notices.js';
import type { ChangeKind } from './notifications.js';
import { getTermsVersion } from './versions.js';

/**
 * R2.2: a customer who does not agree with a change (a terms version or a notice) says so, which
 * opens a consultation (協議, Art. 2.3): a thread between the customer's admins and the provider's
 * operators, closed by an operator with a note. One open consultation per customer and change.
 */

type ConsultationRow = Selectable<TermsConsultationsTable>;
type MessageRow = Selectable<TermsConsultationMessagesTable>;

export interface ConsultationMessage {
  id: string;
  author: { kind: 'customer_user' | 'operator'; label: string };
  body: string;
  at: string;
}

export interface ConsultationView {
  id: string;
  customerId: string;
  change: { kind: ChangeKind; id: string; label: Bilingual };
  state: 'open' | 'closed';
  openedAt: string;
  closedAt: string | null;
  closeNote: string | null;
  messages: ConsultationMessage[];
}

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function checkBody(field: string, body: string): string {
  const b = body.trim();
  if (b === '' || b.length > 10_000 || CONTROL.test(b)) throw errors.invalidField(field, '1〜10000文字で、制御文字を含められません。', 'must be 1–10000 characters without control characters');
  return b;
}

/** The change the customer disagrees with, as that customer may see it (else not found). */
async function changeLabel(db: DbOrTx, customerId: string, kind: ChangeKind, id: string): Promise<Bilingual> {
  if (kind === 'terms_version') {
    const v = await getTermsVersion(db, id);
    return bi(`利用規約 ${v.edition}`, `terms of use, edition ${v.edition}`);
  }
  const n = await getNotice(db, id, { kind: 'customer', customerId });
  return bi(`お知らせ「${n.title.ja}」`, `notice "${n.title.en ?? n.title.ja}"`);
}

const messageView = (m: MessageRow): ConsultationMessage => ({ id: m.id, author: { kind: m.author_kind, label: m.author_label }, body: m.body, at: m.created_at.toISOString() });

async function view(db: DbOrTx, r: ConsultationRow): Promise<ConsultationView> {
  const messages = await db.selectFrom('terms_consultation_messages').selectAll().where('consultation_id', '=', r.id).orderBy('seq').execute();
  let label: Bilingual;
  try {
    label = await changeLabel(db, r.customer_id, r.change_kind, r.change_id);
  } catch {
    label = bi(r.change_id, r.change_id);
  }
  return {
    id: r.id,
    customerId: r.customer_id,
    change: { kind: r.change_kind, id: r.change_id, label },
    state: r.state,
    openedAt: r.opened_at.toISOString(),
    closedAt: r.closed_at?.toISOString() ?? null,
    closeNote: r.close_note,
    messages: messages.map(messageView),
  };
}

const authorKind = (actor: Actor): 'customer_user' | 'operator' => {
  if (actor.kind === 'operator' || actor.kind === 'customer_user') return actor.kind;
  throw errors.forbidden('only people take part in a consultation', '協議には担当者としてサインインして参加してください');
};

/** R2.2: registers the customer's disagreement with a change and opens the consultation. */
export async function openConsultation(db: Db, clock: Clock, actor: Actor, input: { customerId: string; changeKind: ChangeKind; changeId: string; message: string }): Promise<ConsultationView> {
  const body = checkBody('message', input.message);
  const label = await changeLabel(db, input.customerId, input.changeKind, input.changeId);
  return db.transaction().execute(async (trx) => {
    const open = await trx.selectFrom('terms_consultations').select('id').where('customer_id', '=', input.customerId).where('change_kind', '=', input.changeKind).where('change_id', '=', input.changeId).where('state', '=', 'open').executeTakeFirst();
    if (open) throw errors.conflict(`この変更についての協議は既に開かれています（${open.id}）。`, `A consultation about this change is already open (${open.id}).`);
    const now = clock.now();
    const row = await trx
      .insertInto('terms_consultations')
      .values({ id: randomUUID(), customer_id: input.customerId, change_kind: input.changeKind, change_id: input.changeId, state: 'open', opened_by: actor.label, opened_at: now, closed_at: null, closed_by: null, close_note: null })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.insertInto('terms_consultation_messages').values({ id: randomUUID(), consultation_id: row.id, author_kind: authorKind(actor), author_id: actor.id ?? actor.label, author_label: actor.label, body, created_at: now }).execute();
    await appendAudit(trx, clock, { actor, action: 'terms.disagreement_registered', subjectType: 'terms_consultation', subjectId: row.id, customerId: input.customerId, details: { changeKind: input.changeKind, changeId: input.changeId, change: label.en } });
    return view(trx, row);
  });
}

export async function findConsultation(db: DbOrTx, id: string): Promise<ConsultationView | undefined> {
  const row = await db.selectFrom('terms_consultations').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? view(db, row) : undefined;
}

export async function listConsultations(db: DbOrTx, filter: { customerId?: string; state?: 'open' | 'closed' } = {}): Promise<ConsultationView[]> {
  let q = db.selectFrom('terms_consultations').selectAll();
  if (filter.customerId) q = q.where('customer_id', '=', filter.customerId);
  if (filter.state) q = q.where('state', '=', filter.state);
  const rows = await q.orderBy('opened_at', 'desc').limit(500).execute();
  const out: ConsultationView[] = [];
  for (const r of rows) out.push(await view(db, r));
  return out;
}

/** A message in an open consultation: the customer's admins, or an operator's reply. */
export async function addConsultationMessage(db: Db, clock: Clock, actor: Actor, id: string, message: string): Promise<ConsultationView> {
  const body = checkBody('message', message);
  const kind = authorKind(actor);
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('terms_consultations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('協議 / consultation', id);
    if (row.state !== 'open') throw errors.conflict('この協議は終了しています。', 'This consultation is closed.');
    await trx.insertInto('terms_consultation_messages').values({ id: randomUUID(), consultation_id: id, author_kind: kind, author_id: actor.id ?? actor.label, author_label: actor.label, body, created_at: clock.now() }).execute();
    await appendAudit(trx, clock, { actor, action: kind === 'operator' ? 'terms.consultation_replied' : 'terms.consultation_message', subjectType: 'terms_consultation', subjectId: id, customerId: row.customer_id, details: { length: body.length } });
    return view(trx, row);
  });
}

/** An operator closes the consultation with the outcome. */
export async function closeConsultation(db: Db, clock: Clock, actor: Actor, id: string, note: string): Promise<ConsultationView> {
  const outcome = checkBody('note', note);
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('terms_consultations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('協議 / consultation', id);
    if (row.state !== 'open') throw errors.conflict('この協議は既に終了しています。', 'This consultation is already closed.');
    const closed = await trx.updateTable('terms_consultations').set({ state: 'closed', closed_at: clock.now(), closed_by: actor.label, close_note: outcome }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'terms.consultation_closed', subjectType: 'terms_consultation', subjectId: id, customerId: row.customer_id, reason: outcome });
    return view(trx, closed);
  });
}
