import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

describe.each(databaseKinds)('HTTP API on %s', (kind) => {
  let app: TestApp;
  let sakura: { customerId: string; contractId: string };
  let midori: { customerId: string; contractId: string };
  const cookies: Record<string, string> = {};

  beforeAll(async () => {
    app = await startTestApp(kind);
    const a = await addCustomerWithContract(app, 'sakura', { fee: 55_000 });
    const b = await addCustomerWithContract(app, 'midori', { fee: 88_000 });
    sakura = { customerId: a.customer.id, contractId: a.contractId };
    midori = { customerId: b.customer.id, contractId: b.contractId };
    await addOperator(app, 'admin1', ['admin']);
    await addOperator(app, 'ops1', ['operator']);
    await addOperator(app, 'bill1', ['billing']);
    await addOperator(app, 'sup1', ['support']);
    await addCustomerUser(app, sakura.customerId, 'sakura-admin', 'customer_admin');
    await addCustomerUser(app, sakura.customerId, 'sakura-staff', 'member');
    await addCustomerUser(app, midori.customerId, 'midori-admin', 'customer_admin');
    for (const id of ['admin1', 'ops1', 'bill1', 'sup1', 'sakura-admin', 'sakura-staff', 'midori-admin']) cookies[id] = await app.signIn(id);
  });
  afterAll(async () => app?.close());

  it('GET /healthz answers {"status":"ok"}', async () => {
    const res = await app.request({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('R18.1 signs in with ID and password into an HttpOnly session cookie; wrong or unknown IDs get one answer', async () => {
    const ok = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'ops1', password: TEST_PASSWORD } });
    expect(ok.statusCode).toBe(200);
    const c = ok.cookies.find((x) => x.name === 'hokan_session')!;
    expect(c.httpOnly).toBe(true);
    expect(c.sameSite).toBe('Lax');
    expect(ok.json().principal).toMatchObject({ kind: 'operator', loginId: 'ops1', roles: ['operator'] });
    expect(ok.body).not.toContain('password');
    const wrong = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'ops1', password: 'nope nope nope' } });
    const unknown = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'nobody', password: 'nope nope nope' } });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json()).toEqual(unknown.json());
    expect(wrong.json().error.code).toBe('invalid_credentials');
  });

  it('signs out, after which the cookie no longer works', async () => {
    const cookie = await app.signIn('sup1');
    expect((await app.request({ method: 'GET', url: '/api/v1/me', cookie })).statusCode).toBe(200);
    expect((await app.request({ method: 'POST', url: '/api/v1/auth/logout', cookie, payload: {} })).statusCode).toBe(200);
    expect((await app.request({ method: 'GET', url: '/api/v1/me', cookie })).statusCode).toBe(401);
  });

  it('sessions expire with the clock', async () => {
    const cookie = await app.signIn('sup1');
    app.clock.advance(12 * 3_600_000 + 1000);
    expect((await app.request({ method: 'GET', url: '/api/v1/me', cookie })).statusCode).toBe(401);
    app.clock.advance(-(12 * 3_600_000 + 1000));
  });

  it('answers 401 without credentials, with messages in Japanese and English', async () => {
    const res = await app.request({ method: 'GET', url: '/api/v1/contracts' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ error: { code: 'unauthenticated', message: { ja: 'サインインが必要です。', en: 'Sign-in is required.' }, details: [] } });
  });

  it('validation errors are 400 with a stable code, both languages and the field named', async () => {
    const res = await app.request({
      method: 'POST',
      url: `/api/v1/contracts/${sakura.contractId}/suspend`,
      cookie: cookies.ops1,
      payload: { reason: 'because', note: '' },
    });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.message.ja).toContain('入力内容に誤りがあります');
    expect(body.error.message.en).toContain('Invalid input');
    expect(body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['body.note', 'body.reason']);
  });

  it('malformed JSON, a wrong content type, a non-UUID id and an oversized body are clean 4xx', async () => {
    const url = `/api/v1/contracts/${sakura.contractId}/suspend`;
    const bad = await app.request({ method: 'POST', url, cookie: cookies.ops1, headers: { 'content-type': 'application/json' }, payload: '{"reason":' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('validation_failed');
    const type = await app.request({ method: 'POST', url, cookie: cookies.ops1, headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    expect(type.statusCode).toBe(415);
    expect(type.json().error.code).toBe('unsupported_media_type');
    const id = await app.request({ method: 'GET', url: '/api/v1/contracts/not-a-uuid', cookie: cookies.ops1 });
    expect(id.statusCode).toBe(400);
    expect(id.json().error.details[0].path).toBe('params.contractId');
    const big = await app.request({ method: 'POST', url, cookie: cookies.ops1, payload: { reason: 'unpaid_fees', note: 'x'.repeat(2 * 1024 * 1024) } });
    expect(big.statusCode).toBe(413);
  });

  it('unknown ids are 404 and unknown paths are 404', async () => {
    const res = await app.request({ method: 'GET', url: '/api/v1/contracts/00000000-0000-4000-8000-000000000000', cookie: cookies.ops1 });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
    expect((await app.request({ method: 'GET', url: '/api/v1/nothing-here', cookie: cookies.ops1 })).statusCode).toBe(404);
  });

  it('a role without the right is 403: support cannot suspend, a member cannot file termination', async () => {
    const s = await app.request({ method: 'POST', url: `/api/v1/contracts/${sakura.contractId}/suspend`, cookie: cookies.sup1, payload: { reason: 'unpaid_fees', note: 'x' } });
    expect(s.statusCode).toBe(403);
    expect(s.json().error.code).toBe('forbidden');
    const t = await app.request({ method: 'POST', url: `/api/v1/contracts/${sakura.contractId}/termination-notice`, cookie: cookies['sakura-staff'], payload: {} });
    expect(t.statusCode).toBe(403);
  });

  it('R14.1 the fee is shown to the customer admin and billing only, on every read path', async () => {
    const paths = [`/api/v1/contracts/${sakura.contractId}`, '/api/v1/contracts', `/api/v1/customers/${sakura.customerId}/contracts`];
    const feeOf = (body: { contract?: Record<string, unknown>; contracts?: Array<Record<string, unknown>> }) => {
      const list = body.contract ? [body.contract] : (body.contracts ?? []);
      return list.find((c) => c.id === sakura.contractId);
    };
    for (const url of paths) {
      for (const [who, sees] of [['sakura-admin', true], ['bill1', true], ['sakura-staff', false], ['admin1', false], ['ops1', false], ['sup1', false]] as const) {
        const res = await app.request({ method: 'GET', url, cookie: cookies[who] });
        expect(res.statusCode, `${who} ${url}`).toBe(200);
        const c = feeOf(res.json());
        expect(c, `${who} ${url}`).toBeDefined();
        if (sees) expect(c?.monthlyFeeYen, `${who} ${url}`).toBe(55_000);
        else {
          expect(c, `${who} ${url}`).not.toHaveProperty('monthlyFeeYen');
          expect(res.body).not.toContain('55000');
        }
      }
    }
    const history = await app.request({ method: 'GET', url: `/api/v1/contracts/${sakura.contractId}/history`, cookie: cookies.ops1 });
    expect(history.statusCode).toBe(200);
    expect(history.body).not.toContain('55000');
    const audit = await app.request({ method: 'GET', url: '/api/v1/audit?limit=1000', cookie: cookies.admin1 });
    expect(audit.body).not.toContain('55000');
  });

  it('R14.1 only billing sets the fee; operators cannot set it when creating a contract', async () => {
    const denied = await app.request({ method: 'PUT', url: `/api/v1/contracts/${midori.contractId}/fee`, cookie: cookies.ops1, payload: { monthlyFeeYen: 1, note: 'x' } });
    expect(denied.statusCode).toBe(403);
    const ok = await app.request({ method: 'PUT', url: `/api/v1/contracts/${midori.contractId}/fee`, cookie: cookies.bill1, payload: { monthlyFeeYen: 99_000, note: '改定' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().contract.monthlyFeeYen).toBe(99_000);
    const create = await app.request({
      method: 'POST',
      url: `/api/v1/customers/${midori.customerId}/contracts`,
      cookie: cookies.ops1,
      payload: { contractNumber: 'X-1', termStart: '2026-12-01', termEnd: '2027-11-30', monthlyFeeYen: 1000, systemUseContractNumber: 'SU-X', supportContractNumber: 'SP-X' },
    });
    expect(create.statusCode).toBe(403);
  });

  it('R22.3 the customer admin files a termination notice and gets the computed end date; too short is refused', async () => {
    const short = await app.request({ method: 'POST', url: `/api/v1/contracts/${sakura.contractId}/termination-notice`, cookie: cookies['sakura-admin'], payload: { endDate: '2026-12-01' } });
    expect(short.statusCode).toBe(400);
    expect(short.json().error.code).toBe('notice_too_short');
    expect(short.json().error.message.ja).toContain('30日前');
    const res = await app.request({ method: 'POST', url: `/api/v1/contracts/${sakura.contractId}/termination-notice`, cookie: cookies['sakura-admin'], payload: { note: '書面送付済み' } });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.terminationNotice).toMatchObject({ earliestEndDate: '2026-12-24', endDate: '2026-12-24', noRefund: true });
    expect(body.terminationNotice.noRefundNote.ja).toContain('返金されません');
    expect(body.contract.scheduledEnd).toMatchObject({ japanDate: '2026-12-24', reason: 'customer_notice' });
    expect(body.contract.monthlyFeeYen).toBe(55_000);
  });

  it('a malformed date and an impossible date are refused', async () => {
    for (const endDate of ['2027-02-30', '24/12/2026', '2027-1-1']) {
      const res = await app.request({ method: 'POST', url: `/api/v1/contracts/${midori.contractId}/termination-notice`, cookie: cookies['midori-admin'], payload: { endDate } });
      expect(res.statusCode, endDate).toBe(400);
      expect(res.json().error.details[0].path).toBe('body.endDate');
    }
  });

  it('lifecycle over HTTP: suspend, refuse double suspend, resume, breach notice in the past refused, immediate termination (admin only)', async () => {
    const { contractId } = await addCustomerWithContract(app, 'kaede');
    const url = (a: string) => `/api/v1/contracts/${contractId}/${a}`;
    expect((await app.request({ method: 'POST', url: url('suspend'), cookie: cookies.ops1, payload: { reason: 'insolvency_proceedings', note: '破産手続開始' } })).json().contract.suspension.reasonLabel.ja).toContain('④');
    const again = await app.request({ method: 'POST', url: url('suspend'), cookie: cookies.ops1, payload: { reason: 'unpaid_fees', note: 'x' } });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('invalid_transition');
    expect((await app.request({ method: 'POST', url: url('resume'), cookie: cookies.ops1, payload: { note: '解除' } })).json().contract.status).toBe('active');
    const past = await app.request({ method: 'POST', url: url('breach-notices'), cookie: cookies.ops1, payload: { description: '違反', cureDeadline: '2026-01-01T00:00:00+09:00' } });
    expect(past.statusCode).toBe(400);
    expect(past.json().error.code).toBe('deadline_in_past');
    const byOps = await app.request({ method: 'POST', url: url('terminate'), cookie: cookies.ops1, payload: { kind: 'immediate', ground: 'antisocial_forces', note: 'x' } });
    expect(byOps.statusCode).toBe(403);
    const byAdmin = await app.request({ method: 'POST', url: url('terminate'), cookie: cookies.admin1, payload: { kind: 'immediate', ground: 'antisocial_forces', note: '表明保証違反' } });
    expect(byAdmin.statusCode).toBe(200);
    expect(byAdmin.json().contract.ended.reason).toBe('antisocial_forces');
    const hist = await app.request({ method: 'GET', url: url('history'), cookie: cookies.admin1 });
    expect(hist.json().entries.map((e: { action: string }) => e.action)).toEqual([
      'contract.created', 'contract.suspended', 'contract.resumed', 'contract.terminated',
    ]);
    const due = await app.request({ method: 'GET', url: '/api/v1/data-deletion-due?pending=true', cookie: cookies.ops1 });
    expect(due.json().dataDeletionDue.map((d: { contractId: string }) => d.contractId)).toContain(contractId);
  });

  it('R3.1 API tokens: issued once to the customer admin, work as Bearer, stop working when revoked', async () => {
    const created = await app.request({ method: 'POST', url: `/api/v1/customers/${sakura.customerId}/api-tokens`, cookie: cookies['sakura-admin'], payload: { name: '介護記録ソフト本番' } });
    expect(created.statusCode).toBe(201);
    const { token, apiToken } = created.json();
    expect(token).toMatch(/^hkn_[0-9a-f]{32}_/);
    const me = await app.request({ method: 'GET', url: '/api/v1/me', token });
    expect(me.json().principal).toMatchObject({ kind: 'api_token', customerId: sakura.customerId });
    const contracts = await app.request({ method: 'GET', url: '/api/v1/contracts', token });
    expect(contracts.json().contracts.every((c: { customerId: string; monthlyFeeYen?: number }) => c.customerId === sakura.customerId && c.monthlyFeeYen === undefined)).toBe(true);
    const list = await app.request({ method: 'GET', url: `/api/v1/customers/${sakura.customerId}/api-tokens`, cookie: cookies['sakura-admin'] });
    // The secret is everything after 'hkn_<32 hex>_' (it may itself contain '_').
    expect(list.body).not.toContain(token.slice(37));
    const revoked = await app.request({ method: 'DELETE', url: `/api/v1/customers/${sakura.customerId}/api-tokens/${apiToken.id}`, cookie: cookies['sakura-admin'] });
    expect(revoked.statusCode).toBe(200);
    expect((await app.request({ method: 'GET', url: '/api/v1/me', token })).statusCode).toBe(401);
    expect((await app.request({ method: 'GET', url: '/api/v1/me', token: 'hkn_garbage' })).statusCode).toBe(401);
  });

  it('refuses a cookie-authenticated write from another site (CSRF)', async () => {
    const res = await app.request({ method: 'POST', url: `/api/v1/contracts/${midori.contractId}/suspend`, cookie: cookies.ops1, headers: { origin: 'https://evil.example' }, payload: { reason: 'unpaid_fees', note: 'x' } });
    expect(res.statusCode).toBe(403);
  });

  it('operators and customer users are created over the API with the password policy enforced', async () => {
    const weak = await app.request({ method: 'POST', url: '/api/v1/operators', cookie: cookies.admin1, payload: { loginId: 'newop', displayName: '新人', email: 'newop@provider.example.jp', roles: ['support'], password: 'short' } });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().error.details[0].path).toBe('password');
    const badMail = await app.request({ method: 'POST', url: '/api/v1/operators', cookie: cookies.admin1, payload: { loginId: 'newop', displayName: '新人', email: 'not-mail', roles: ['support'], password: TEST_PASSWORD } });
    expect(badMail.statusCode).toBe(400);
    const ok = await app.request({ method: 'POST', url: '/api/v1/operators', cookie: cookies.admin1, payload: { loginId: 'newop', displayName: '新人', email: 'newop@provider.example.jp', roles: ['support'], password: TEST_PASSWORD } });
    expect(ok.statusCode).toBe(201);
    expect(ok.body).not.toContain(TEST_PASSWORD);
    const dup = await app.request({ method: 'POST', url: '/api/v1/operators', cookie: cookies.admin1, payload: { loginId: 'newop', displayName: '新人', email: 'newop@provider.example.jp', roles: ['support'], password: TEST_PASSWORD } });
    expect(dup.statusCode).toBe(409);
    const byOps = await app.request({ method: 'POST', url: '/api/v1/operators', cookie: cookies.ops1, payload: { loginId: 'newop2', displayName: 'x', email: 'a@b.jp', roles: ['admin'], password: TEST_PASSWORD } });
    expect(byOps.statusCode).toBe(403);
    const member = await app.request({ method: 'POST', url: `/api/v1/customers/${sakura.customerId}/users`, cookie: cookies['sakura-admin'], payload: { loginId: 'sakura-nurse', displayName: '看護師', email: 'nurse@sakura.example.jp', role: 'member', password: TEST_PASSWORD } });
    expect(member.statusCode).toBe(201);
    expect((await app.signIn('sakura-nurse')).length).toBeGreaterThan(20);
  });

  it('serves an OpenAPI document listing the API', async () => {
    const res = await app.request({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/auth/login', '/api/v1/contracts/{contractId}/suspend', '/api/v1/contracts/{contractId}/termination-notice']));
    expect(doc.paths['/api/v1/contracts/{contractId}/suspend'].post.requestBody.content['application/json'].schema.properties.reason.enum).toEqual(['unpaid_fees', 'prohibited_act', 'credential_misuse', 'insolvency_proceedings']);
  });
});
