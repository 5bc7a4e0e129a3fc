import { randomUUID } from 'node:crypto';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors } from '../core/errors.js';

export interface CustomerView {
  id: string;
  code: string;
  name: string;
  contactEmail: string;
  createdAt: string;
}

type Row = { id: string; code: string; name: string; contact_email: string; created_at: Date };
const view = (r: Row): CustomerView => ({ id: r.id, code: r.code, name: r.name, contactEmail: r.contact_email, createdAt: r.created_at.toISOString() });
const COLUMNS = ['id', 'code', 'name', 'contact_email', 'created_at'] as const;

export interface NewCustomer {
  code: string;
  name: string;
  contactEmail: string;
}

export async function createCustomer(db: Db, clock: Clock, actor: Actor, input: NewCustomer): Promise<CustomerView> {
  return db.transaction().execute(async (trx) => {
    const taken = await trx.selectFrom('customers').select('id').where('code', '=', input.code).executeTakeFirst();
    if (taken) throw errors.duplicate('お客様コード / customer code', input.code);
    const row = await trx
      .insertInto('customers')
      .values({ id: randomUUID(), code: input.code, name: input.name, contact_email: input.contactEmail, created_at: clock.now() })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'customer.created', subjectType: 'customer', subjectId: row.id, customerId: row.id, details: { code: row.code, name: row.name } });
    return view(row);
  });
}

export async function findCustomer(db: DbOrTx, id: string): Promise<CustomerView | undefined> {
  const row = await db.selectFrom('customers').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  return row ? view(row) : undefined;
}

export async function getCustomer(db: DbOrTx, id: string): Promise<CustomerView> {
  const c = await findCustomer(db, id);
  if (!c) throw errors.notFound('お客様 / customer', id);
  return c;
}

export async function listCustomers(db: DbOrTx): Promise<CustomerView[]> {
  const rows = await db.selectFrom('customers').select(COLUMNS).orderBy('code').execute();
  return rows.map(view);
}
