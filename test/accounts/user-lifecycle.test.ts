import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiToken } from '../../src/accounts/api-tokens.js';
import { disableUser } from '../../src/accounts/user-lifecycle.js';
import { suspendContract } from '../../src/contracts/contracts.js';
import { systemActor, verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

const WRONG = 'not the password at all';
const NEW_PASSWORD = 'a brand new passphrase 2026';

describe.each(databaseKinds)('R18.1 R11.1③ disabling users and replacing passwords on %s', (kind) => {
  let app: TestApp;
  let providerAdmin: string;
  let providerOps: string;
  let customerA: string;
  let customerB: string;

  const login = (loginId: string, password: string) => app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId, password } });
  const me = (cookie: string) => app.request({ method: 'GET', url: '/api/v1/me', cookie });
  const post = (url: string, cookie: string, payload?: object) => app.request({ method: 'POST', url: `/api/v1${url}`, cookie, ...(payload ? { payload } : {}) });
  const sessionsOf = async (userId: string) => (await app.ctx.db.selectFrom('sessions').select('token_hash').where('user_id', '=', userId).execute()).length;
  const auditOf = (userId: string) =>
    app.ctx.db.selectFrom('audit_log').select(['action', 'actor_id', 'customer_id', 'reason', 'details']).where('subject_id', '=', userId).orderBy('seq').execute();
  const userRow = (userId: string) => app.ctx.db.selectFrom('users').select(['password_hash', 'disabled_at']).where('id', '=', userId).executeTakeFirstOrThrow();

  beforeAll(async () => {
    app = await startTestApp(kind);
    await addOperator(app, 'ul-admin', ['admin']);
    await addOperator(app, 'ul-ops', ['operator']);
    providerAdmin = await app.signIn('ul-admin');
    providerOps = await app.signIn('ul-ops');
    customerA = (await addCustomerWithContract(app, 'ula')).customer.id;
    customerB = (await addCustomerWithContract(app, 'ulb')).customer.id;
  });
  afterAll(async () => app?.close());
  // Each test starts outside the sign-in failure windows of the ones before (R11.1③ lockout).
  beforeEach(() => void app.clock.advance(3_600_000));

  it('R18.1 R11.1③ disabling ends every session at once, sign-in then fails exactly like a wrong password, enabling restores it; both audited', async () => {
    await addCustomerUser(app, customerA, 'ula-boss', 'customer_admin');
    const staff = await addCustomerUser(app, customerA, 'ula-leaver', 'member');
    const admin = await app.signIn('ula-boss');
    const phone = await app.signIn('ula-leaver');
    const desk = await app.signIn('ula-leaver');
    expect((await me(desk)).statusCode).toBe(200);

    const disabled = await post(`/customers/${customerA}/users/${staff.id}/disable`, admin, { reason: '退職のため' });
    expect(disabled.statusCode, disabled.body).toBe(200);
    expect(disabled.json().user).toMatchObject({ id: staff.id, loginId: 'ula-leaver', disabled: true });
    for (const cookie of [phone, desk]) expect((await me(cookie)).statusCode).toBe(401);
    expect(await sessionsOf(staff.id)).toBe(0);

    const rightPassword = await login('ula-leaver', TEST_PASSWORD);
    const wrongPassword = await login('ula-leaver', WRONG);
    expect(rightPassword.statusCode).toBe(401);
    expect(rightPassword.json().error.code).toBe('invalid_credentials');
    // A disabled ID is not told apart from a wrong password, so an outsider learns nothing from it.
    expect(rightPassword.body).toBe(wrongPassword.body);

    const list = await app.request({ method: 'GET', url: `/api/v1/customers/${customerA}/users`, cookie: admin });
    expect(list.json().users.find((u: { loginId: string }) => u.loginId === 'ula-leaver').disabled).toBe(true);
    // Again: nothing to do, and the first shut-off time is kept.
    const before = (await userRow(staff.id)).disabled_at;
    expect((await post(`/customers/${customerA}/users/${staff.id}/disable`, admin)).json().user.disabled).toBe(true);
    expect((await userRow(staff.id)).disabled_at).toEqual(before);

    const enabled = await post(`/customers/${customerA}/users/${staff.id}/enable`, admin);
    expect(enabled.statusCode, enabled.body).toBe(200);
    expect(enabled.json().user.disabled).toBe(false);
    expect((await userRow(staff.id)).disabled_at).toBeNull();
    expect((await login('ula-leaver', TEST_PASSWORD)).statusCode).toBe(200);

    const audit = (await auditOf(staff.id)).filter((a) => a.action !== 'customer_user.created');
    expect(audit.map((a) => a.action)).toEqual(['customer_user.disabled', 'customer_user.enabled']);
    expect(audit[0]).toMatchObject({ customer_id: customerA, reason: '退職のため', details: { loginId: 'ula-leaver', sessionsEnded: 2 } });
    expect(audit.every((a) => a.actor_id !== null)).toBe(true);
    expect((await verifyAuditChain(app.ctx.db)).ok).toBe(true);
  });

  it("R18.1 a customer admin manages only its own customer's users: another customer's user is 404, operators 403, itself and the last enabled admin refused; a member cannot disable anyone", async () => {
    const boss = await addCustomerUser(app, customerA, 'ula-chief', 'customer_admin');
    const member = await addCustomerUser(app, customerA, 'ula-member', 'member');
    const other = await addCustomerUser(app, customerB, 'ulb-someone', 'member');
    const ops = await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'ul-ops').executeTakeFirstOrThrow();
    const chief = await app.signIn('ula-chief');

    // Its own member: yes.
    expect((await post(`/customers/${customerA}/users/${member.id}/disable`, chief)).statusCode).toBe(200);
    expect((await post(`/customers/${customerA}/users/${member.id}/enable`, chief)).statusCode).toBe(200);

    // Another customer's user, through either customer's path: as unknown as any other foreign id.
    for (const url of [
      `/customers/${customerB}/users/${other.id}/disable`,
      `/customers/${customerA}/users/${other.id}/disable`,
      `/customers/${customerA}/users/${other.id}/enable`,
      `/customers/${customerA}/users/${other.id}/password`,
    ]) {
      const res = await post(url, chief, url.endsWith('/password') ? { newPassword: NEW_PASSWORD } : undefined);
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    // An operator's id through the customer's path is not a user of the customer.
    expect((await post(`/customers/${customerA}/users/${ops.id}/disable`, providerAdmin)).statusCode).toBe(404);
    expect((await post(`/operators/${ops.id}/disable`, chief)).statusCode).toBe(403);
    expect((await userRow(other.id)).disabled_at).toBeNull();
    expect((await userRow(ops.id)).disabled_at).toBeNull();

    const self = await post(`/customers/${customerA}/users/${boss.id}/disable`, chief);
    expect(self.statusCode).toBe(403);
    expect(self.json().error.code).toBe('forbidden');
    expect(self.json().error.message.ja).toContain('ご自身');
    expect(self.json().error.message.en).toContain('your own ID');

    // ula-chief and ula-boss (from the first test) are the admins; with ula-boss disabled the chief is the last.
    const firstBoss = await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'ula-boss').executeTakeFirstOrThrow();
    expect((await post(`/customers/${customerA}/users/${firstBoss.id}/disable`, chief)).statusCode).toBe(200);
    const last = await post(`/customers/${customerA}/users/${boss.id}/disable`, providerAdmin);
    expect(last.statusCode).toBe(409);
    expect(last.json().error.code).toBe('conflict');
    expect(last.json().error.message.en).toContain('last enabled administrator');
    expect(last.json().error.message.ja).toContain('管理者');
    expect((await me(chief)).statusCode).toBe(200);
    expect((await post(`/customers/${customerA}/users/${firstBoss.id}/enable`, providerAdmin)).statusCode).toBe(200);

    const memberCookie = await app.signIn('ula-member');
    for (const url of [`/customers/${customerA}/users/${boss.id}/disable`, `/customers/${customerA}/users/${firstBoss.id}/enable`]) {
      const res = await post(url, memberCookie);
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
    }
    expect((await post(`/customers/${customerA}/users/${boss.id}/password`, memberCookie, { newPassword: NEW_PASSWORD })).statusCode).toBe(403);
    // The provider's operator role sets customers up but does not shut people out.
    expect((await post(`/customers/${customerA}/users/${member.id}/disable`, providerOps)).statusCode).toBe(403);
    // API tokens are machines, not administrators.
    const { token } = await createApiToken(app.ctx.db, app.ctx.clock, { ...systemActor('test'), id: boss.id }, customerA, 'ula-software');
    const byToken = await app.request({ method: 'POST', url: `/api/v1/customers/${customerA}/users/${member.id}/disable`, token });
    expect(byToken.statusCode).toBe(403);
    expect((await userRow(boss.id)).disabled_at).toBeNull();
    expect((await userRow(member.id)).disabled_at).toBeNull();
  });

  it("R11.1③ a provider admin disables and enables operators and any customer's users; not itself, not the last enabled admin; other operator roles cannot", async () => {
    const ops = await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'ul-ops').executeTakeFirstOrThrow();
    const adminId = (await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'ul-admin').executeTakeFirstOrThrow()).id;
    const billing = await addOperator(app, 'ul-billing', ['billing']);
    const billingCookie = await app.signIn('ul-billing');
    const customerUser = await addCustomerUser(app, customerB, 'ulb-misused', 'member');
    const misused = await app.signIn('ulb-misused');

    expect((await post(`/operators/${ops.id}/disable`, billingCookie)).statusCode).toBe(403);
    expect((await post(`/operators/${ops.id}/disable`, providerOps)).statusCode).toBe(403);

    const res = await post(`/operators/${ops.id}/disable`, providerAdmin, { reason: '退職' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user).toMatchObject({ loginId: 'ul-ops', kind: 'operator', disabled: true });
    expect((await me(providerOps)).statusCode).toBe(401);
    expect((await login('ul-ops', TEST_PASSWORD)).json().error.code).toBe('invalid_credentials');
    const listed = await app.request({ method: 'GET', url: '/api/v1/operators', cookie: providerAdmin });
    expect(listed.json().operators.find((u: { loginId: string }) => u.loginId === 'ul-ops').disabled).toBe(true);

    const self = await post(`/operators/${adminId}/disable`, providerAdmin);
    expect(self.statusCode).toBe(403);
    expect((await me(providerAdmin)).statusCode).toBe(200);
    // A customer's user is not an operator.
    expect((await post(`/operators/${customerUser.id}/disable`, providerAdmin)).statusCode).toBe(404);

    // Suspected misuse of a customer's ID (R11.1③): the provider shuts it off.
    expect((await post(`/customers/${customerB}/users/${customerUser.id}/disable`, providerAdmin)).statusCode).toBe(200);
    expect((await me(misused)).statusCode).toBe(401);

    // With ul-admin the only enabled admin, only a caller outside the API (the CLI) could try it.
    const lastAdmin = disableUser(app.ctx.db, app.ctx.clock, systemActor('test'), { kind: 'operator' }, adminId);
    await expect(lastAdmin).rejects.toMatchObject({ code: 'conflict' });
    expect((await me(providerAdmin)).statusCode).toBe(200);

    expect((await post(`/operators/${ops.id}/enable`, providerAdmin)).statusCode).toBe(200);
    expect((await login('ul-ops', TEST_PASSWORD)).statusCode).toBe(200);
    providerOps = await app.signIn('ul-ops');

    const audit = (await auditOf(ops.id)).map((a) => a.action);
    expect(audit).toEqual(['operator.created', 'operator.disabled', 'operator.enabled']);
    expect((await auditOf(customerUser.id)).map((a) => a.action)).toContain('customer_user.disabled');
    expect((await auditOf(billing.id)).map((a) => a.action)).toEqual(['operator.created']);
  });

  it('R11.1 a suspended customer cannot re-enable its users; the provider still can, and can still disable', async () => {
    const { customer, contractId } = await addCustomerWithContract(app, 'ulsusp');
    await addCustomerUser(app, customer.id, 'ulsusp-admin', 'customer_admin');
    const worker = await addCustomerUser(app, customer.id, 'ulsusp-worker', 'member');
    const admin = await app.signIn('ulsusp-admin');
    expect((await post(`/customers/${customer.id}/users/${worker.id}/disable`, admin)).statusCode).toBe(200);
    await suspendContract(app.ctx.db, app.ctx.clock, systemActor('test'), contractId, { reason: 'credential_misuse', note: '不正利用の疑い' });

    const enable = await post(`/customers/${customer.id}/users/${worker.id}/enable`, admin);
    expect(enable.statusCode).toBe(403);
    expect(enable.json().error.code).toBe('customer_suspended');
    expect((await userRow(worker.id)).disabled_at).not.toBeNull();
    expect((await post(`/customers/${customer.id}/users/${worker.id}/enable`, providerAdmin)).statusCode).toBe(200);
    // Withdrawing access stays possible while suspended, like revoking a token.
    expect((await post(`/customers/${customer.id}/users/${worker.id}/disable`, admin)).statusCode).toBe(200);
  });

  it("R18.1 changing one's own password: a wrong current password is a 400 naming currentPassword and changes nothing", async () => {
    const user = await addCustomerUser(app, customerA, 'ula-pw-wrong', 'member');
    const here = await app.signIn('ula-pw-wrong');
    const there = await app.signIn('ula-pw-wrong');
    const hashBefore = (await userRow(user.id)).password_hash;

    // Even with a new password the policy refuses, only the current password is named.
    for (const newPassword of [NEW_PASSWORD, 'short']) {
      const res = await post('/me/password', here, { currentPassword: WRONG, newPassword });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toEqual(['currentPassword']);
      expect(res.json().error.message.ja).toContain('現在のパスワード');
    }
    expect((await userRow(user.id)).password_hash).toBe(hashBefore);
    expect((await me(here)).statusCode).toBe(200);
    expect((await me(there)).statusCode).toBe(200);
    expect(await sessionsOf(user.id)).toBe(2);
    expect((await login('ula-pw-wrong', TEST_PASSWORD)).statusCode).toBe(200);
    expect((await auditOf(user.id)).map((a) => a.action)).toEqual(['customer_user.created']);

    // The route exists and refuses the weak and the unchanged on their own terms.
    const weak = await post('/me/password', here, { currentPassword: TEST_PASSWORD, newPassword: 'short' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().error.details[0].path).toBe('newPassword');
    const same = await post('/me/password', here, { currentPassword: TEST_PASSWORD, newPassword: TEST_PASSWORD });
    expect(same.statusCode).toBe(400);
    expect(same.json().error.details[0].path).toBe('newPassword');
    expect(same.json().error.message.en).toContain('differ');
    expect((await userRow(user.id)).password_hash).toBe(hashBefore);
  });

  it("R18.1 changing one's own password: the old one is refused, the new one accepted, other sessions end, this one stays; audited without the password", async () => {
    const user = await addCustomerUser(app, customerA, 'ula-pw-ok', 'member');
    const here = await app.signIn('ula-pw-ok');
    const phone = await app.signIn('ula-pw-ok');
    const laptop = await app.signIn('ula-pw-ok');

    const res = await post('/me/password', here, { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ changed: true, otherSessionsEnded: 2 });
    expect(res.body).not.toContain(NEW_PASSWORD);
    expect((await me(here)).statusCode).toBe(200);
    for (const cookie of [phone, laptop]) expect((await me(cookie)).statusCode).toBe(401);
    expect(await sessionsOf(user.id)).toBe(1);

    expect((await login('ula-pw-ok', TEST_PASSWORD)).json().error.code).toBe('invalid_credentials');
    expect((await login('ula-pw-ok', NEW_PASSWORD)).statusCode).toBe(200);

    const audit = (await auditOf(user.id)).filter((a) => a.action === 'customer_user.password_changed');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_id: user.id, customer_id: customerA, details: { loginId: 'ula-pw-ok', sessionsEnded: 2 } });
    expect(JSON.stringify(audit[0])).not.toContain(NEW_PASSWORD);

    // Operators change theirs the same way; API tokens have no password to change.
    await addOperator(app, 'ul-pw-op', ['support']);
    const op = await app.signIn('ul-pw-op');
    expect((await post('/me/password', op, { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD })).statusCode).toBe(200);
    expect((await login('ul-pw-op', NEW_PASSWORD)).statusCode).toBe(200);
    const { token } = await createApiToken(app.ctx.db, app.ctx.clock, { ...systemActor('test'), id: user.id }, customerA, 'ula-pw-token');
    const byToken = await app.request({ method: 'POST', url: '/api/v1/me/password', token, payload: { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD } });
    expect(byToken.statusCode).toBe(403);
  });

  it("R18.1 an admin's password reset ends all the user's sessions, never echoes the password, is audited; one's own goes through /me/password", async () => {
    const bossId = (await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'ula-chief').executeTakeFirstOrThrow()).id;
    const user = await addCustomerUser(app, customerA, 'ula-forgot', 'member');
    const chief = await app.signIn('ula-chief');
    const old1 = await app.signIn('ula-forgot');
    const old2 = await app.signIn('ula-forgot');

    const weak = await post(`/customers/${customerA}/users/${user.id}/password`, chief, { newPassword: 'short' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().error.details[0].path).toBe('newPassword');
    expect((await me(old1)).statusCode).toBe(200);

    const res = await post(`/customers/${customerA}/users/${user.id}/password`, chief, { newPassword: NEW_PASSWORD });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user).toMatchObject({ id: user.id, loginId: 'ula-forgot', disabled: false });
    expect(res.body).not.toContain(NEW_PASSWORD);
    for (const cookie of [old1, old2]) expect((await me(cookie)).statusCode).toBe(401);
    expect(await sessionsOf(user.id)).toBe(0);
    expect((await login('ula-forgot', TEST_PASSWORD)).statusCode).toBe(401);
    expect((await login('ula-forgot', NEW_PASSWORD)).statusCode).toBe(200);

    const self = await post(`/customers/${customerA}/users/${bossId}/password`, chief, { newPassword: NEW_PASSWORD });
    expect(self.statusCode).toBe(403);
    expect(self.json().error.message.en).toContain('/me/password');
    expect((await me(chief)).statusCode).toBe(200);

    // The provider's admin resets an operator's.
    const op = await addOperator(app, 'ul-reset-op', ['operator']);
    const opCookie = await app.signIn('ul-reset-op');
    expect((await post(`/operators/${op.id}/password`, providerAdmin, { newPassword: NEW_PASSWORD })).statusCode).toBe(200);
    expect((await me(opCookie)).statusCode).toBe(401);
    expect((await login('ul-reset-op', NEW_PASSWORD)).statusCode).toBe(200);

    const audit = (await auditOf(user.id)).filter((a) => a.action === 'customer_user.password_reset');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_id: bossId, customer_id: customerA, details: { loginId: 'ula-forgot', sessionsEnded: 2 } });
    expect(JSON.stringify(audit[0])).not.toContain(NEW_PASSWORD);
    expect((await auditOf(op.id)).map((a) => a.action)).toEqual(['operator.created', 'operator.password_reset']);
  });
});
