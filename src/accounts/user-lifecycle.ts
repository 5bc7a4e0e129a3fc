import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import { errors } from '../core/errors.js';
import { assertCustomerMayAddCredentials } from './credential-gate.js';
import { checkPasswordPolicy, hashPassword, verifyPassword } from './passwords.js';
import { USER_COLUMNS, userView, type UserView } from './users.js';

/**
 * Shutting a login off, letting it back in, and replacing its password (R18.1: the customer
 * manages its IDs and passwords; R11.1③: a misused ID must be stoppable at once).
 *
 * Whose users an action reaches: one customer's, or the provider's operators. The scope is part of
 * every lookup, so an id of another customer (or an operator's id through a customer's route) is
 * simply not found — the same 404 as any other cross-customer id.
 */
export type UserScope = { kind: 'customer'; customerId: string } | { kind: 'operator' };

/** The role whose last enabled holder must stay enabled, or nobody could manage the users any more. */
const adminRoleOf = (scope: UserScope): string => (scope.kind === 'customer' ? 'customer_admin' : 'admin');

const auditPrefix = (scope: UserScope): string => (scope.kind === 'customer' ? 'customer_user' : 'operator');
const customerIdOf = (scope: UserScope): string | null => (scope.kind === 'customer' ? scope.customerId : null);

/**
 * Locks every user of the scope, in id order, and returns them. Disabling reads the peers (is this
 * the last admin?) and writes the target: were only the target locked, two admins disabling each
 * other at once would each still see the other enabled and both succeed. A fixed order keeps two
 * such transactions from deadlocking.
 */
async function lockScope(trx: Tx, scope: UserScope) {
  const q = trx.selectFrom('users').select(USER_COLUMNS).orderBy('id').forUpdate();
  return scope.kind === 'customer' ? q.where('customer_id', '=', scope.customerId).execute() : q.where('kind', '=', 'operator').execute();
}

async function lockTarget(trx: Tx, scope: UserScope, userId: string) {
  const q = trx.selectFrom('users').select(USER_COLUMNS).where('id', '=', userId).forUpdate();
  const row = await (scope.kind === 'customer' ? q.where('customer_id', '=', scope.customerId) : q.where('kind', '=', 'operator')).executeTakeFirst();
  if (!row) throw errors.notFound('ユーザー / user', userId);
  return row;
}

const isSelf = (actor: Actor, userId: string): boolean => (actor.kind === 'operator' || actor.kind === 'customer_user') && actor.id === userId;

async function endSessions(trx: Tx, userId: string, keepTokenHash?: string): Promise<number> {
  let q = trx.deleteFrom('sessions').where('user_id', '=', userId);
  if (keepTokenHash !== undefined) q = q.where('token_hash', '<>', keepTokenHash);
  const r = await q.executeTakeFirst();
  return Number(r.numDeletedRows);
}

export interface DisableOptions {
  /** Why, for the audit log (e.g. the staff member left, or the ID was misused, R11.1③). */
  reason?: string | null | undefined;
}

/**
 * R18.1, R11.1③: the user can no longer sign in, and every session it holds ends in the same
 * transaction, so a session opened before the decision does not outlive it. Disabling a disabled
 * user changes nothing (the first time it was shut off is the one that matters).
 */
export async function disableUser(db: Db, clock: Clock, actor: Actor, scope: UserScope, userId: string, opts: DisableOptions = {}): Promise<UserView> {
  // Nobody shuts themselves out: for a customer that could be its only way in (R18.1).
  if (isSelf(actor, userId)) {
    throw errors.forbidden('you cannot disable your own ID; another administrator must do it', 'ご自身のIDは無効にできません。別の管理者が行ってください');
  }
  return db.transaction().execute(async (trx) => {
    const peers = await lockScope(trx, scope);
    const target = peers.find((u) => u.id === userId);
    if (!target) throw errors.notFound('ユーザー / user', userId);
    if (target.disabled_at) return userView(target);
    const adminRole = adminRoleOf(scope);
    if (target.roles.includes(adminRole) && !peers.some((u) => u.id !== userId && u.disabled_at === null && u.roles.includes(adminRole))) {
      throw errors.conflict(
        scope.kind === 'customer'
          ? 'お客様の有効な管理者はこのIDだけのため、無効にできません。先に別の管理者を追加してください。'
          : '事業者の有効な管理者（admin）はこのIDだけのため、無効にできません。先に別の管理者を追加してください。',
        scope.kind === 'customer'
          ? "This is the customer's last enabled administrator and cannot be disabled; add another administrator first."
          : "This is the provider's last enabled admin and cannot be disabled; add another admin first.",
      );
    }
    const row = await trx.updateTable('users').set({ disabled_at: clock.now() }).where('id', '=', userId).returning(USER_COLUMNS).executeTakeFirstOrThrow();
    const sessionsEnded = await endSessions(trx, userId);
    await appendAudit(trx, clock, {
      actor,
      action: `${auditPrefix(scope)}.disabled`,
      subjectType: 'user',
      subjectId: userId,
      customerId: customerIdOf(scope),
      reason: opts.reason || null,
      details: { loginId: row.login_id, sessionsEnded },
    });
    return userView(row);
  });
}

/**
 * Lets a disabled user sign in again with the password it had. Like adding a user, a customer
 * re-enabling its own users needs to be in service (credential-gate.ts, R11.1); the provider may.
 */
export async function enableUser(db: Db, clock: Clock, actor: Actor, scope: UserScope, userId: string, opts: DisableOptions = {}): Promise<UserView> {
  return db.transaction().execute(async (trx) => {
    const target = await lockTarget(trx, scope, userId);
    if (!target.disabled_at) return userView(target);
    if (scope.kind === 'customer') await assertCustomerMayAddCredentials(trx, actor, scope.customerId);
    const row = await trx.updateTable('users').set({ disabled_at: null }).where('id', '=', userId).returning(USER_COLUMNS).executeTakeFirstOrThrow();
    await appendAudit(trx, clock, {
      actor,
      action: `${auditPrefix(scope)}.enabled`,
      subjectType: 'user',
      subjectId: userId,
      customerId: customerIdOf(scope),
      reason: opts.reason || null,
      details: { loginId: row.login_id },
    });
    return userView(row);
  });
}

/**
 * An administrator sets a new password for someone else (R18.1): the user forgot it, or it may be
 * known to others (R11.1③). Every session of the user ends, since whoever used the old password
 * may hold one. One's own password goes through changeOwnPassword, which asks for the current one:
 * otherwise a stolen admin session would be enough to take the account over for good.
 */
export async function resetPassword(db: Db, clock: Clock, actor: Actor, scope: UserScope, userId: string, newPassword: string): Promise<UserView> {
  if (isSelf(actor, userId)) {
    throw errors.forbidden(
      'change your own password with POST /me/password, which asks for the current one',
      'ご自身のパスワードは、現在のパスワードを確かめる「パスワードの変更」（POST /me/password）で変更してください',
    );
  }
  checkPasswordPolicy(newPassword, 'newPassword');
  // Hashed before the transaction: scrypt is slow on purpose, and the row stays locked meanwhile otherwise.
  const passwordHash = await hashPassword(newPassword);
  return db.transaction().execute(async (trx) => {
    const target = await lockTarget(trx, scope, userId);
    await trx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
    const sessionsEnded = await endSessions(trx, userId);
    await appendAudit(trx, clock, {
      actor,
      action: `${auditPrefix(scope)}.password_reset`,
      subjectType: 'user',
      subjectId: userId,
      customerId: customerIdOf(scope),
      // Never the password nor its hash: the audit log is read by more people than the user.
      details: { loginId: target.login_id, sessionsEnded },
    });
    return userView(target);
  });
}

export interface OwnPasswordChange {
  currentPassword: string;
  newPassword: string;
  /** The digest of the session making the change: it stays, every other session of the user ends. */
  keepSessionTokenHash: string;
}

/**
 * R18.1: a person replaces their own password, e.g. the initial one an administrator set and so
 * knows. The current password is asked for, so a session left open (or stolen) is not enough to
 * keep the account; sessions elsewhere end, since they may be exactly that.
 */
export async function changeOwnPassword(db: Db, clock: Clock, actor: Actor & { id: string }, input: OwnPasswordChange): Promise<{ sessionsEnded: number }> {
  const user = await db.selectFrom('users').select(['id', 'kind', 'customer_id', 'login_id', 'password_hash']).where('id', '=', actor.id).where('disabled_at', 'is', null).executeTakeFirst();
  if (!user) throw errors.unauthenticated();
  // First, and alone: a wrong current password is not told anything about the new one.
  if (!(await verifyPassword(input.currentPassword, user.password_hash))) {
    throw errors.invalidField('currentPassword', '現在のパスワードが正しくありません。', 'is not your current password');
  }
  checkPasswordPolicy(input.newPassword, 'newPassword');
  // Compared as they are hashed (NFKC), so a look-alike spelling does not count as a new password.
  if (input.newPassword.normalize('NFKC') === input.currentPassword.normalize('NFKC')) {
    throw errors.invalidField('newPassword', '現在のパスワードと異なるパスワードにしてください。', 'must differ from the current password');
  }
  const passwordHash = await hashPassword(input.newPassword);
  return db.transaction().execute(async (trx) => {
    // Only over the hash that was checked: a change or reset that committed meanwhile wins, and
    // this one, made against a password that is no longer current, is refused.
    const updated = await trx
      .updateTable('users')
      .set({ password_hash: passwordHash })
      .where('id', '=', user.id)
      .where('password_hash', '=', user.password_hash)
      .where('disabled_at', 'is', null)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) {
      throw errors.conflict('パスワードは直前に別の操作で変更されました。もう一度お試しください。', 'The password was changed by another request just now; please try again.');
    }
    const sessionsEnded = await endSessions(trx, user.id, input.keepSessionTokenHash);
    await appendAudit(trx, clock, {
      actor,
      action: `${user.kind === 'operator' ? 'operator' : 'customer_user'}.password_changed`,
      subjectType: 'user',
      subjectId: user.id,
      customerId: user.customer_id,
      details: { loginId: user.login_id, sessionsEnded },
    });
    return { sessionsEnded };
  });
}

/** For the CLI, which names operators by their sign-in ID. */
export async function findOperatorIdByLoginId(db: DbOrTx, loginId: string): Promise<string> {
  const row = await db.selectFrom('users').select('id').where('login_id', '=', loginId).where('kind', '=', 'operator').executeTakeFirst();
  if (!row) throw errors.notFound('事業者の担当者 / operator', loginId);
  return row.id;
}
