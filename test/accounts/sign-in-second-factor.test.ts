import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveTotpKey, generateTotpSecret, sealTotpSecret, totpCode } from '../../src/accounts/totp.js';
import { databaseKinds } from '../helpers/databases.js';
import { addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { csrfOf, mergeCookies } from '../web/helpers.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const WRONG = 'not the password at all';

/** What a caller sees of a refusal: everything but the per-response Date and request bookkeeping. */
function answer(res: LightMyRequestResponse) {
  return { status: res.statusCode, contentType: res.headers['content-type'], retryAfter: res.headers['retry-after'], body: res.body };
}

describe.each(databaseKinds)('R12.1 sign-in with a second factor on %s', (kind) => {
  let app: TestApp;
  let secret: string;

  const login = (loginId: string, password: string, code?: string) =>
    app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId, password, ...(code === undefined ? {} : { totpCode: code }) } });

  beforeAll(async () => {
    // "required": an operator without TOTP cannot sign in at all, the second refusal to hide.
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_OPERATOR_TOTP: 'required' });
    const enrolled = await addOperator(app, 'op-enrolled', ['admin']);
    await addOperator(app, 'op-unenrolled', ['admin']);
    await addOperator(app, 'op-locked', ['admin']);
    secret = generateTotpSecret();
    const key = deriveTotpKey(app.ctx.backup.masterKey);
    await app.ctx.db.updateTable('users').set({ totp_secret: sealTotpSecret(key, secret, enrolled.id) }).where('id', '=', enrolled.id).execute();
    const locked = await app.ctx.db.selectFrom('users').select('id').where('login_id', '=', 'op-locked').executeTakeFirstOrThrow();
    await app.ctx.db.updateTable('users').set({ totp_secret: sealTotpSecret(key, secret, locked.id) }).where('id', '=', locked.id).execute();
  });
  afterAll(async () => app?.close());

  it('R12.1 a wrong password and the right password without a code (or with a wrong one) get byte-identical answers', async () => {
    const wrongPassword = await login('op-enrolled', WRONG);
    const noCode = await login('op-enrolled', TEST_PASSWORD);
    const badCode = await login('op-enrolled', TEST_PASSWORD, totpCode(secret, new Date(app.clock.now().getTime() + 3_600_000)));
    const unknownId = await login('nobody-here', WRONG);
    expect(wrongPassword.statusCode).toBe(401);
    expect(wrongPassword.json().error.code).toBe('invalid_credentials');
    expect(wrongPassword.json().error.details).toEqual([]);
    for (const other of [noCode, badCode, unknownId]) expect(answer(other)).toEqual(answer(wrongPassword));
    // The code, given, still signs in: the uniform answer costs the rightful user nothing.
    const ok = await login('op-enrolled', TEST_PASSWORD, totpCode(secret, app.clock.now()));
    expect(ok.statusCode).toBe(200);
  });

  it('R12.1 replacing an enrolled authenticator needs a current code of it: a session alone cannot swap the second factor', async () => {
    app.clock.advance(31_000);
    const signedIn = await login('op-enrolled', TEST_PASSWORD, totpCode(secret, app.clock.now()));
    expect(signedIn.statusCode).toBe(200);
    const cookie = `hokan_session=${signedIn.cookies.find((c) => c.name === 'hokan_session')!.value}`;
    const fresh = (await app.request({ method: 'POST', url: '/api/v1/me/totp/enroll', cookie, payload: {} })).json().secret as string;
    const confirm = (payload: object) => app.request({ method: 'POST', url: '/api/v1/me/totp/confirm', cookie, payload: { secret: fresh, code: totpCode(fresh, app.clock.now()), ...payload } });
    app.clock.advance(31_000);
    for (const payload of [{}, { currentCode: totpCode(secret, new Date(app.clock.now().getTime() + 3_600_000)) }]) {
      const refused = await confirm(payload);
      expect(refused.statusCode, JSON.stringify(payload)).toBe(400);
      expect(refused.json().error.details[0].path).toBe('currentCode');
    }
    expect((await confirm({ currentCode: totpCode(secret, app.clock.now()) })).statusCode).toBe(200);
    const audit = await app.ctx.db.selectFrom('audit_log').select('action').where('subject_id', '=', signedIn.json().principal.userId).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    expect(audit.action).toBe('operator.totp_replaced');
    app.clock.advance(31_000);
    expect((await login('op-enrolled', TEST_PASSWORD, totpCode(secret, app.clock.now()))).statusCode).toBe(401);
    expect((await login('op-enrolled', TEST_PASSWORD, totpCode(fresh, app.clock.now()))).statusCode).toBe(200);
  });

  it('R12.1 with TOTP required, an unenrolled operator with the right password is answered as if the password were wrong', async () => {
    const wrongPassword = await login('op-unenrolled', WRONG);
    const rightPassword = await login('op-unenrolled', TEST_PASSWORD);
    const rightWithCode = await login('op-unenrolled', TEST_PASSWORD, '123456');
    expect(wrongPassword.statusCode).toBe(401);
    expect(answer(rightPassword)).toEqual(answer(wrongPassword));
    expect(answer(rightWithCode)).toEqual(answer(wrongPassword));
    expect(rightPassword.body).not.toContain('totpCode');
  });

  it('R11.1③ a missing code counts toward the lockout like a wrong password, so the lockout tells nothing either', async () => {
    for (let i = 0; i < 4; i++) expect((await login('op-locked', i % 2 ? WRONG : TEST_PASSWORD)).statusCode).toBe(401);
    expect((await login('op-locked', TEST_PASSWORD)).statusCode).toBe(401); // the fifth failure locks
    const locked = await login('op-locked', TEST_PASSWORD, totpCode(secret, app.clock.now()));
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('too_many_attempts');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    app.clock.advance(Number(locked.headers['retry-after']) * 1000 + 1000);
    expect((await login('op-locked', TEST_PASSWORD, totpCode(secret, app.clock.now()))).statusCode).toBe(200);
  });

  it('R12.1 the console sign-in page shows the same refusal for a wrong password and a missing code, and keeps the code field', async () => {
    const post = async (password: string) => {
      const page = await app.request({ method: 'GET', url: '/console/sign-in?lang=en' });
      expect(page.body).toContain('name="totpCode"');
      const cookie = mergeCookies('', page);
      return app.request({ method: 'POST', url: '/console/sign-in', headers: { ...FORM, cookie }, payload: new URLSearchParams({ _csrf: csrfOf(page.body), loginId: 'op-unenrolled', password }).toString() });
    };
    app.clock.advance(16 * 60_000); // past the failure window of the test above
    const wrong = await post(WRONG);
    const right = await post(TEST_PASSWORD);
    expect(wrong.statusCode).toBe(401);
    expect(right.statusCode).toBe(401);
    const withoutCsrf = (body: string) => body.replace(/name="_csrf" value="[^"]+"/g, '');
    expect(withoutCsrf(right.body)).toBe(withoutCsrf(wrong.body));
    expect(wrong.body).toContain('The ID or password is not correct.');
  });
});
