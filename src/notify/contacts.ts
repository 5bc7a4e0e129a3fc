import { randomUUID } from 'node:crypto';
import { listCustomerUsers } from '../accounts/users.js';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { customerServiceState } from '../contracts/contracts.js';
import { findCustomer, listCustomers } from '../contracts/customers.js';
import { errors } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import { isValidEmailAddress } from './outbox.js';

/**
 * R8.1: the registered contacts a customer's notices go to. Three sources, merged per address:
 * the addresses the customer registered here (with a language), the customer's contact e-mail
 * from its contract record, and its active customer admins (both Japanese). The registered entry
 * wins for the language; an address appears once per customer.
 */

export interface NoticeContactView {
  id: string;
  customerId: string;
  email: string;
  name: string;
  lang: Locale;
  createdAt: string;
}

export interface NoticeRecipient {
  customerId: string;
  address: string;
  lang: Locale;
  source: 'contact' | 'customer' | 'admin';
}

type ContactRow = { id: string; customer_id: string; email: string; name: string; lang: Locale; created_at: Date };
const view = (r: ContactRow): NoticeContactView => ({ id: r.id, customerId: r.customer_id, email: r.email, name: r.name, lang: r.lang, createdAt: r.created_at.toISOString() });
const COLUMNS = ['id', 'customer_id', 'email', 'name', 'lang', 'created_at'] as const;

export interface ContactInput {
  email: string;
  name?: string;
  lang: Locale;
}

function checkAddress(email: string): string {
  const e = email.trim();
  if (!isValidEmailAddress(e)) throw errors.invalidField('email', `メールアドレス「${email}」は正しくありません。`, `"${email}" is not a valid e-mail address`);
  return e;
}

export async function listNoticeContacts(db: DbOrTx, customerId: string): Promise<NoticeContactView[]> {
  return (await db.selectFrom('notice_contacts').select(COLUMNS).where('customer_id', '=', customerId).orderBy('created_at').orderBy('email').execute()).map(view);
}

export async function addNoticeContact(db: Db, clock: Clock, actor: Actor, customerId: string, input: ContactInput): Promise<NoticeContactView> {
  const email = checkAddress(input.email);
  return db.transaction().execute(async (trx) => {
    if (!(await findCustomer(trx, customerId))) throw errors.notFound('お客様 / customer', customerId);
    const row = await trx
      .insertInto('notice_contacts')
      .values({ id: randomUUID(), customer_id: customerId, email, name: input.name?.trim() ?? '', lang: input.lang, created_at: clock.now(), created_by: actor.label })
      .onConflict((oc) => oc.doNothing())
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) throw errors.duplicate('通知先 / notice contact', email);
    await appendAudit(trx, clock, { actor, action: 'notice_contact.added', subjectType: 'notice_contact', subjectId: row.id, customerId, details: { email, lang: row.lang } });
    return view(row);
  });
}

export async function updateNoticeContact(db: Db, clock: Clock, actor: Actor, customerId: string, contactId: string, input: ContactInput): Promise<NoticeContactView> {
  const email = checkAddress(input.email);
  return db.transaction().execute(async (trx) => {
    const clash = await trx.selectFrom('notice_contacts').select('id').where('customer_id', '=', customerId).where((eb) => eb(eb.fn('lower', ['email']), '=', email.toLowerCase())).where('id', '<>', contactId).executeTakeFirst();
    if (clash) throw errors.duplicate('通知先 / notice contact', email);
    const row = await trx
      .updateTable('notice_contacts')
      .set({ email, name: input.name?.trim() ?? '', lang: input.lang })
      .where('id', '=', contactId)
      .where('customer_id', '=', customerId)
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) throw errors.notFound('通知先 / notice contact', contactId);
    await appendAudit(trx, clock, { actor, action: 'notice_contact.updated', subjectType: 'notice_contact', subjectId: row.id, customerId, details: { email, lang: row.lang } });
    return view(row);
  });
}

export async function removeNoticeContact(db: Db, clock: Clock, actor: Actor, customerId: string, contactId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx.deleteFrom('notice_contacts').where('id', '=', contactId).where('customer_id', '=', customerId).returning(['id', 'email']).executeTakeFirst();
    if (!row) throw errors.notFound('通知先 / notice contact', contactId);
    await appendAudit(trx, clock, { actor, action: 'notice_contact.removed', subjectType: 'notice_contact', subjectId: row.id, customerId, details: { email: row.email } });
  });
}

/** The customers a notice for `scope` reaches: the named ones, or every customer with a contract in force ('all'). */
export async function customersInScope(db: DbOrTx, scope: string[] | 'all'): Promise<string[]> {
  if (scope !== 'all') return [...new Set(scope)].sort();
  const out: string[] = [];
  for (const c of await listCustomers(db)) {
    const state = await customerServiceState(db, c.id);
    if (state === 'active' || state === 'suspended') out.push(c.id);
  }
  return out;
}

/** R8.1: every address the notices of these customers go to, once per customer and address. */
export async function noticeRecipients(db: DbOrTx, customerIds: readonly string[]): Promise<NoticeRecipient[]> {
  if (customerIds.length === 0) return [];
  const out: NoticeRecipient[] = [];
  const contacts = await db.selectFrom('notice_contacts').select(['customer_id', 'email', 'lang']).where('customer_id', 'in', [...customerIds]).orderBy('customer_id').orderBy('created_at').execute();
  const byCustomer = new Map<string, typeof contacts>();
  for (const c of contacts) {
    const list = byCustomer.get(c.customer_id);
    if (list) list.push(c);
    else byCustomer.set(c.customer_id, [c]);
  }
  for (const customerId of customerIds) {
    const seen = new Set<string>();
    const add = (address: string, lang: Locale, source: NoticeRecipient['source']) => {
      const key = address.toLowerCase();
      if (seen.has(key) || !isValidEmailAddress(address)) return;
      seen.add(key);
      out.push({ customerId, address, lang, source });
    };
    for (const c of byCustomer.get(customerId) ?? []) add(c.email, c.lang, 'contact');
    const customer = await findCustomer(db, customerId);
    if (customer) add(customer.contactEmail, 'ja', 'customer');
    for (const u of await listCustomerUsers(db, customerId)) {
      if (u.kind === 'customer' && u.roles.includes('customer_admin') && !u.disabled) add(u.email, 'ja', 'admin');
    }
  }
  return out;
}
