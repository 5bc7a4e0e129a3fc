import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { findCustomer } from '../contracts/customers.js';
import { actorOf, canAccessCustomer, CUSTOMER_ROLES, isCustomerAdminOf, OPERATOR_ROLES, requireOperatorRole, hasOperatorRole, type Principal } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { appendAudit } from '../core/audit/audit-log.js';
import { deriveTotpKey, generateTotpSecret, openTotpSecret, sealTotpSecret, totpUri, verifyTotp } from './totp.js';
import type { AppContext } from '../http/context.js';
import { displayName, email, humanPrincipal, loginId, principalOf, router, SESSION_COOKIE, uuid } from '../http/route-kit.js';

import { createApiToken, listApiTokens, revokeApiToken } from './api-tokens.js';
import { deleteSession, tokenDigest } from './sessions.js';
import { signIn } from './sign-in.js';
import { changeOwnPassword, disableUser, enableUser, resetPassword, type UserScope } from './user-lifecycle.js';
import { createCustomerUser, createOperator, listCustomerUsers, listOperators } from './users.js';

const customerParams = z.object({ customerId: uuid });

/** TOTP secrets are sealed at rest with a key derived from the master key. */
const totpSealKey = (ctx: AppContext) => deriveTotpKey(ctx.backup.masterKey);

/**
 * Users and tokens of a customer are managed by the provider's admins and operators and by that
 * customer's own admins (R18.1: the customer manages its credentials). Another customer's id is
 * answered as unknown, so ids do not reveal which customers exist. Adding credentials also needs
 * the customer in service when a customer does it (credential-gate.ts, R11.1).
 */
async function requireCustomerManager(ctx: AppContext, p: Principal, customerId: string): Promise<void> {
  if (!canAccessCustomer(p, customerId) || !(await findCustomer(ctx.db, customerId))) {
    throw errors.notFound('お客様 / customer', customerId);
  }
  if (!hasOperatorRole(p, 'admin', 'operator') && !isCustomerAdminOf(p, customerId)) {
    throw errors.forbidden("requires the customer's admin or a provider operator", 'お客様の管理者または事業者の運用担当者の権限が必要です');
  }
}

/**
 * Disabling, enabling and resetting the password of a customer's user: that customer's own admins
 * (R18.1) and the provider's admins (R11.1③, e.g. a misused ID). Unlike adding users, not the
 * provider's `operator` role: these act on a person's access, not on setting a customer up.
 */
async function requireUserAdministrator(ctx: AppContext, p: Principal, customerId: string): Promise<void> {
  if (!canAccessCustomer(p, customerId) || !(await findCustomer(ctx.db, customerId))) {
    throw errors.notFound('お客様 / customer', customerId);
  }
  if (!hasOperatorRole(p, 'admin') && !isCustomerAdminOf(p, customerId)) {
    throw errors.forbidden("requires the customer's admin or a provider admin", 'お客様の管理者または事業者の管理者（admin）の権限が必要です');
  }
}

/** Request bodies, shared with the web forms (src/web/) so both validate alike. */
export const loginBody = z.object({ loginId: z.string().min(1).max(64), password: z.string().min(1).max(256), totpCode: z.string().regex(/^\d{6}$/, { error: 'a 6-digit code' }).optional() });
export const customerUserBody = z.object({ loginId, displayName, email, role: z.enum(CUSTOMER_ROLES), password: z.string().max(256) });
export const apiTokenBody = z.object({ name: z.string().trim().min(1).max(100) });
/** Optional (Fastify hands a bare POST over as null), so a bare POST works; the reason goes to the audit log. */
export const userAccessBody = z.object({ reason: z.string().trim().max(2000).optional() }).nullish();
export const passwordChangeBody = z.object({ currentPassword: z.string().min(1).max(256), newPassword: z.string().max(256) });
export const passwordResetBody = z.object({ newPassword: z.string().max(256) });

export function registerAccountRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);

  r.post('/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Sign in with ID and password (and a TOTP code for operators who enrolled); sets an HttpOnly session cookie. Every refusal is the same 401 invalid_credentials, whichever part was wrong or missing',
      body: loginBody,
    },
  }, async (req, reply) => {
    let signedIn;
    try {
      signedIn = await signIn(ctx, req.body, req.ip);
    } catch (err) {
      if (err instanceof HokanError && err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
      throw err;
    }
    const { principal, session } = signedIn;
    reply.setCookie(SESSION_COOKIE, session.token, {
      httpOnly: true,
      sameSite: 'lax',
      secure: ctx.config.cookieSecure,
      path: '/',
      expires: session.expiresAt,
    });
    return { principal, expiresAt: session.expiresAt.toISOString() };
  });

  r.post('/me/totp/enroll', { schema: { tags: ['auth'], summary: 'Start TOTP enrolment (operators): a new secret and its otpauth:// URI' } }, async (req) => {
    const p = principalOf(req);
    if (p.kind !== 'operator') throw errors.forbidden('TOTP is for operators', '二要素認証（TOTP）は事業者の担当者用です');
    const secret = generateTotpSecret();
    return { secret, uri: totpUri(secret, p.loginId) };
  });

  r.post('/me/totp/confirm', {
    schema: {
      tags: ['auth'],
      summary: 'Finish TOTP enrolment with a current code; from then on sign-in needs a code. Replacing an enrolled authenticator also needs a current code of the old one',
      body: z.object({
        secret: z.string().regex(/^[A-Z2-7]{32}$/, { error: 'the secret from /me/totp/enroll' }),
        code: z.string().regex(/^\d{6}$/, { error: 'a 6-digit code' }),
        currentCode: z.string().regex(/^\d{6}$/, { error: 'a 6-digit code of the authenticator enrolled now' }).optional(),
      }),
    },
  }, async (req) => {
    const p = principalOf(req);
    if (p.kind !== 'operator') throw errors.forbidden('TOTP is for operators', '二要素認証（TOTP）は事業者の担当者用です');
    const check = verifyTotp(req.body.secret, req.body.code, ctx.clock.now());
    if (!check.ok) throw errors.invalidField('code', 'コードが正しくありません。端末の時刻も確認してください。', 'is not the current code (check the device clock)');
    await ctx.db.transaction().execute(async (trx) => {
      const user = await trx.selectFrom('users').select(['totp_secret', 'totp_last_step']).where('id', '=', p.userId).forUpdate().executeTakeFirstOrThrow();
      // A session alone must not swap the second factor: whoever holds a stolen session would enrol
      // their own authenticator and keep the account. The one enrolled now has to agree.
      if (user.totp_secret) {
        const current = req.body.currentCode;
        if (!current) throw errors.invalidField('currentCode', '登録済みの認証アプリの現在のコードを入力してください。', 'replacing an enrolled authenticator needs a current code of it');
        const old = verifyTotp(openTotpSecret(totpSealKey(ctx), user.totp_secret, p.userId), current, ctx.clock.now(), user.totp_last_step === null ? undefined : Number(user.totp_last_step));
        if (!old.ok) throw errors.invalidField('currentCode', '登録済みの認証アプリのコードが正しくないか、既に使われています。', 'is not a current, unused code of the enrolled authenticator');
      }
      await trx
        .updateTable('users')
        .set({ totp_secret: sealTotpSecret(totpSealKey(ctx), req.body.secret, p.userId), totp_last_step: check.step ?? null })
        .where('id', '=', p.userId)
        .execute();
      await appendAudit(trx, ctx.clock, { actor: actorOf(p), action: user.totp_secret ? 'operator.totp_replaced' : 'operator.totp_enrolled', subjectType: 'user', subjectId: p.userId });
    });
    return { enrolled: true };
  });

  r.post('/auth/logout', { schema: { tags: ['auth'], summary: 'Sign out' } }, async (req, reply) => {
    const token = req.cookies[SESSION_COOKIE];
    if (token) await deleteSession(ctx.db, token);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { signedOut: true };
  });

  r.get('/me', { schema: { tags: ['auth'], summary: 'Who the request speaks for' } }, async (req) => ({ principal: principalOf(req) }));

  r.get('/operators', { schema: { tags: ['accounts'], summary: "The provider's operators (admin)" } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin');
    return { operators: await listOperators(ctx.db) };
  });

  r.post('/operators', {
    schema: {
      tags: ['accounts'],
      summary: 'Create an operator (admin)',
      body: z.object({ loginId, displayName, email, roles: z.array(z.enum(OPERATOR_ROLES)).min(1), password: z.string().max(256) }),
    },
  }, async (req, reply) => {
    const p = requireOperatorRole(principalOf(req), 'admin');
    const user = await createOperator(ctx.db, ctx.clock, actorOf(p), req.body);
    return reply.code(201).send({ user });
  });

  r.get('/customers/:customerId/users', { schema: { tags: ['accounts'], summary: "A customer's users", params: customerParams } }, async (req) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId) || !(await findCustomer(ctx.db, req.params.customerId))) {
      throw errors.notFound('お客様 / customer', req.params.customerId);
    }
    if (p.kind !== 'operator' && !isCustomerAdminOf(p, req.params.customerId)) {
      throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
    }
    return { users: await listCustomerUsers(ctx.db, req.params.customerId) };
  });

  r.post('/customers/:customerId/users', {
    schema: {
      tags: ['accounts'],
      summary: 'Create a customer user (provider admin/operator or the customer admin)',
      params: customerParams,
      body: customerUserBody,
    },
  }, async (req, reply) => {
    const p = humanPrincipal(req);
    await requireCustomerManager(ctx, p, req.params.customerId);
    const user = await createCustomerUser(ctx.db, ctx.clock, actorOf(p), { ...req.body, customerId: req.params.customerId });
    return reply.code(201).send({ user });
  });

  r.get('/customers/:customerId/api-tokens', { schema: { tags: ['accounts'], summary: "A customer's API tokens (never the secrets)", params: customerParams } }, async (req) => {
    const p = principalOf(req);
    await requireCustomerManager(ctx, p, req.params.customerId);
    return { apiTokens: await listApiTokens(ctx.db, req.params.customerId) };
  });

  r.post('/customers/:customerId/api-tokens', {
    schema: {
      tags: ['accounts'],
      summary: 'Issue an API token for the Software; the token is shown only in this response',
      params: customerParams,
      body: apiTokenBody,
    },
  }, async (req, reply) => {
    const p = humanPrincipal(req);
    await requireCustomerManager(ctx, p, req.params.customerId);
    const actor = { ...actorOf(p), id: p.userId };
    const result = await createApiToken(ctx.db, ctx.clock, actor, req.params.customerId, req.body.name);
    return reply.code(201).send(result);
  });

  r.delete('/customers/:customerId/api-tokens/:tokenId', {
    schema: { tags: ['accounts'], summary: 'Revoke an API token', params: z.object({ customerId: uuid, tokenId: uuid }) },
  }, async (req) => {
    const p = humanPrincipal(req);
    await requireCustomerManager(ctx, p, req.params.customerId);
    return { apiToken: await revokeApiToken(ctx.db, ctx.clock, actorOf(p), req.params.customerId, req.params.tokenId) };
  });

  r.post('/me/password', {
    schema: {
      tags: ['auth'],
      summary: "Change one's own password (people, not API tokens): the current password is checked, the new one must meet the policy and differ; every other session of the user ends, this one stays",
      body: passwordChangeBody,
    },
  }, async (req) => {
    const p = humanPrincipal(req);
    // A person is only ever signed in through the session cookie (API tokens are refused above).
    const token = req.cookies[SESSION_COOKIE];
    if (!token) throw errors.unauthenticated();
    const result = await changeOwnPassword(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, { ...req.body, keepSessionTokenHash: tokenDigest(token) });
    return { changed: true, otherSessionsEnded: result.sessionsEnded };
  });

  const customerUserParams = z.object({ customerId: uuid, userId: uuid });
  const customerScope = (customerId: string): UserScope => ({ kind: 'customer', customerId });
  const operatorScope: UserScope = { kind: 'operator' };

  r.post('/customers/:customerId/users/:userId/disable', {
    schema: {
      tags: ['accounts'],
      summary: "Disable a customer's user (the customer admin, or a provider admin): sign-in is refused and every session ends at once. Not one's own ID, nor the customer's last enabled admin",
      params: customerUserParams,
      body: userAccessBody,
    },
  }, async (req) => {
    const p = humanPrincipal(req);
    await requireUserAdministrator(ctx, p, req.params.customerId);
    return { user: await disableUser(ctx.db, ctx.clock, actorOf(p), customerScope(req.params.customerId), req.params.userId, { reason: req.body?.reason }) };
  });

  r.post('/customers/:customerId/users/:userId/enable', {
    schema: { tags: ['accounts'], summary: "Enable a disabled customer's user again (the customer admin, or a provider admin)", params: customerUserParams, body: userAccessBody },
  }, async (req) => {
    const p = humanPrincipal(req);
    await requireUserAdministrator(ctx, p, req.params.customerId);
    return { user: await enableUser(ctx.db, ctx.clock, actorOf(p), customerScope(req.params.customerId), req.params.userId, { reason: req.body?.reason }) };
  });

  r.post('/customers/:customerId/users/:userId/password', {
    schema: {
      tags: ['accounts'],
      summary: "Set a new password for a customer's user (the customer admin, or a provider admin); every session of the user ends. Not for one's own ID (POST /me/password)",
      params: customerUserParams,
      body: passwordResetBody,
    },
  }, async (req) => {
    const p = humanPrincipal(req);
    await requireUserAdministrator(ctx, p, req.params.customerId);
    return { user: await resetPassword(ctx.db, ctx.clock, actorOf(p), customerScope(req.params.customerId), req.params.userId, req.body.newPassword) };
  });

  const operatorParams = z.object({ userId: uuid });

  r.post('/operators/:userId/disable', {
    schema: {
      tags: ['accounts'],
      summary: "Disable an operator (admin): sign-in is refused and every session ends at once. Not one's own ID, nor the last enabled admin",
      params: operatorParams,
      body: userAccessBody,
    },
  }, async (req) => {
    const p = requireOperatorRole(humanPrincipal(req), 'admin');
    return { user: await disableUser(ctx.db, ctx.clock, actorOf(p), operatorScope, req.params.userId, { reason: req.body?.reason }) };
  });

  r.post('/operators/:userId/enable', {
    schema: { tags: ['accounts'], summary: 'Enable a disabled operator again (admin)', params: operatorParams, body: userAccessBody },
  }, async (req) => {
    const p = requireOperatorRole(humanPrincipal(req), 'admin');
    return { user: await enableUser(ctx.db, ctx.clock, actorOf(p), operatorScope, req.params.userId, { reason: req.body?.reason }) };
  });

  r.post('/operators/:userId/password', {
    schema: {
      tags: ['accounts'],
      summary: "Set a new password for an operator (admin); every session of the operator ends. Not for one's own ID (POST /me/password)",
      params: operatorParams,
      body: passwordResetBody,
    },
  }, async (req) => {
    const p = requireOperatorRole(humanPrincipal(req), 'admin');
    return { user: await resetPassword(ctx.db, ctx.clock, actorOf(p), operatorScope, req.params.userId, req.body.newPassword) };
  });
}
