import { randomUUID } from 'node:crypto';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { CustomerRole, OperatorRole, Principal } from '../core/auth/principal.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors } from '../core/errors.js';
import { assertCustomerMayAddCredentials } from './credential-gate.js';
import { checkPasswordPolicy, dummyPasswordHash, hashPassword, verifyPassword } from './passwords.js';

export interface UserView {
  id: string;
  kind: 'operator' | 'customer';
  customerId: string | null;
  loginId: string;
  displayName: string;
  email: string;
  roles: string[];
  disabled: boolean;
  createdAt: string;
}

type UserRow = {
  id: string;
  kind: 'operator' | 'customer';
  customer_id: string | null;
  login_id: string;
  display_name: string;
  email: string;
  roles: string[];
  disabled_at: Date | null;
  created_at: Date;
};

export function userView(r: UserRow): UserView {
  return {
    id: r.id,
    kind: r.kind,
    customerId: r.customer_id,
    loginId: r.login_id,
    displayName: r.display_name,
    email: r.email,
    roles: r.roles,
    disabled: r.disabled_at !== null,
    createdAt: r.created_at.toISOString(),
  };
}

export const USER_COLUMNS = ['id', 'kind', 'customer_id', 'login_id', 'display_name', 'email', 'roles', 'disabled_at', 'created_at'] as const;

export interface NewOperator {
  loginId: string;
  displayName: string;
  email: string;
  roles: OperatorRole[];
  password: string;
}

export interface NewCustomerUser {
  customerId: string;
  loginId: string;
  displayName: string;
  email: string;
  role: CustomerRole;
  password: string;
}

async function insertUser(
  db: Db,
  clock: Clock,
  actor: Actor,
  row: { kind: 'operator' | 'customer'; customerId: string | null; loginId: string; displayName: string; email: string; roles: string[]; password: string },
): Promise<UserView> {
  // Before the password policy: a suspended customer is told what stops it, not to pick a longer
  // password first (R11.1). In the domain, so the portal's form is held to it too.
  if (row.customerId !== null) await assertCustomerMayAddCredentials(db, actor, row.customerId);
  checkPasswordPolicy(row.password);
  const passwordHash = await hashPassword(row.password);
  return db.transaction().execute(async (trx) => {
    const taken = await trx.selectFrom('users').select('id').where('login_id', '=', row.loginId).executeTakeFirst();
    if (taken) throw errors.duplicate('ID', row.loginId);
    const now = clock.now();
    const inserted = await trx
      .insertInto('users')
      .values({
        id: randomUUID(),
        kind: row.kind,
        customer_id: row.customerId,
        login_id: row.loginId,
        display_name: row.displayName,
        email: row.email,
        roles: row.roles,
        password_hash: passwordHash,
        disabled_at: null,
        created_at: now,
      })
      .returning(USER_COLUMNS)
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, {
      actor,
      action: row.kind === 'operator' ? 'operator.created' : 'customer_user.created',
      subjectType: 'user',
      subjectId: inserted.id,
      customerId: row.customerId,
      details: { loginId: row.loginId, roles: row.roles },
    });
    return userView(inserted);
  });
}

export function createOperator(db: Db, clock: Clock, actor: Actor, input: NewOperator): Promise<UserView> {
  return insertUser(db, clock, actor, { ...input, kind: 'operator', customerId: null, roles: [...new Set(input.roles)] });
}

export function createCustomerUser(db: Db, clock: Clock, actor: Actor, input: NewCustomerUser): Promise<UserView> {
  return insertUser(db, clock, actor, { ...input, kind: 'customer', roles: [input.role] });
}

export async function listOperators(db: DbOrTx): Promise<UserView[]> {
  const rows = await db.selectFrom('users').select(USER_COLUMNS).where('kind', '=', 'operator').orderBy('login_id').execute();
  return rows.map(userView);
}

export async function listCustomerUsers(db: DbOrTx, customerId: string): Promise<UserView[]> {
  const rows = await db.selectFrom('users').select(USER_COLUMNS).where('customer_id', '=', customerId).orderBy('login_id').execute();
  return rows.map(userView);
}

export async function countOperators(db: DbOrTx): Promise<number> {
  const r = await db.selectFrom('users').select((eb) => eb.fn.countAll<string>().as('n')).where('kind', '=', 'operator').executeTakeFirstOrThrow();
  return Number(r.n);
}

export function principalOfUser(r: { id: string; kind: string; customer_id: string | null; login_id: string; display_name: string; roles: string[] }): Principal {
  if (r.kind === 'operator') {
    return { kind: 'operator', userId: r.id, loginId: r.login_id, displayName: r.display_name, roles: r.roles as OperatorRole[] };
  }
  return {
    kind: 'customer_user',
    userId: r.id,
    loginId: r.login_id,
    displayName: r.display_name,
    customerId: r.customer_id ?? '',
    role: (r.roles[0] ?? 'member') as CustomerRole,
  };
}

/** A person whose password was right, with what their second factor needs (R12.1). */
export interface PasswordChecked {
  principal: Extract<Principal, { kind: 'operator' | 'customer_user' }>;
  totpSecret: string | null;
  totpLastStep: number | null;
}

/**
 * Checks an ID and password. Unknown IDs cost a full hash too, so timing does not reveal which IDs
 * exist; the TOTP columns come in the same query, so a right password does not cost a second
 * round trip a caller could time.
 */
export async function authenticate(db: DbOrTx, loginId: string, password: string): Promise<PasswordChecked> {
  const row = await db
    .selectFrom('users')
    .select(['id', 'kind', 'customer_id', 'login_id', 'display_name', 'roles', 'password_hash', 'disabled_at', 'totp_secret', 'totp_last_step'])
    .where('login_id', '=', loginId)
    .executeTakeFirst();
  const ok = await verifyPassword(password, row?.password_hash ?? (await dummyPasswordHash()));
  if (!row || !ok || row.disabled_at) throw errors.invalidCredentials();
  const principal = principalOfUser(row);
  if (principal.kind === 'api_token') throw errors.invalidCredentials();
  return { principal, totpSecret: row.totp_secret, totpLastStep: row.totp_last_step === null ? null : Number(row.totp_last_step) };
}
