import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpCode } from '../../src/accounts/totp.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

const JP = '133.11.0.1';
const US = '8.8.8.8';
const DE = '193.99.144.80';

describe.each(databaseKinds)('the gateway chain on %s', (kind) => {
  let app: TestApp;
  let customerId: string;
  let token: string;
  let tokenId: string;
  let admin: string;
  let ops: string;

  beforeAll(async () => {
    app = await startTestApp(kind);
    const c = await addCustomerWithContract(app, 'momiji');
    customerId = c.customer.id;
    await addCustomerUser(app, customerId, 'momiji-admin', 'customer_admin');
    await addOperator(app, 'gw-admin', ['admin']);
    admin = await app.signIn('momiji-admin');
    ops = await app.signIn('gw-admin');
    const t = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie: admin, payload: { name: 'sw' } });
    token = t.json().token;
    tokenId = t.json().apiToken.id;
  });
  afterAll(async () => app?.close());

  it('R12.1 sends security headers on every response', async () => {
    const res = await app.request({ method: 'GET', url: '/healthz' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
  });

  it('R4.1 serves Japan and refuses abroad with a reason code in both languages, recorded with customer and credential', async () => {
    const home = await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: JP });
    expect(home.statusCode).toBe(200);
    const abroad = await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: US });
    expect(abroad.statusCode).toBe(403);
    const body = abroad.json();
    expect(body.error.code).toBe('forbidden');
    expect(body.error.details).toEqual([{ path: 'source', message: 'abroad' }]);
    expect(body.error.message.ja).toContain('日本国内');
    expect(body.error.message.en).toContain('Japan only');
    expect(abroad.body).not.toContain(US);
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').selectAll().where('kind', '=', 'abroad_refused').execute();
    expect(rows.at(-1)).toMatchObject({ class: 'abroad', country: 'US', source_ip: US, customer_id: customerId, credential_id: tokenId, path: '/api/v1/data/collections' });
    const anonymous = await app.request({ method: 'GET', url: '/api/v1/openapi.json', remoteAddress: DE });
    expect(anonymous.statusCode).toBe(403);
  });

  it('R4.1 believes X-Forwarded-For only from configured proxies', async () => {
    const spoofed = await app.request({ method: 'GET', url: '/api/v1/data/collections', token, headers: { 'x-forwarded-for': US } });
    expect(spoofed.statusCode).toBe(200);
  });

  it('R12.2 statistics of refusals by class, Japan day and customer, for operators only', async () => {
    const url = '/api/v1/gateway/statistics?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z';
    const res = await app.request({ method: 'GET', url, cookie: ops });
    expect(res.statusCode).toBe(200);
    const stats = res.json();
    expect(stats.byKindAndClass).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'abroad_refused', class: 'abroad', action: 'block' })]));
    expect(stats.byDay[0].day).toBe('2026-11-24');
    expect(stats.byCustomer).toEqual(expect.arrayContaining([expect.objectContaining({ customerId, kind: 'abroad_refused' })]));
    expect((await app.request({ method: 'GET', url, cookie: admin })).statusCode).toBe(403);
    expect((await app.request({ method: 'GET', url: '/api/v1/gateway/statistics?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z', cookie: ops })).statusCode).toBe(400);
    const status = await app.request({ method: 'GET', url: '/api/v1/gateway/status', cookie: ops });
    expect(status.json().geo.packageVersion).toMatch(/^\d/);
  });

  it('R18.1 repeated failed sign-ins lock the ID with back-off and Retry-After', async () => {
    await addCustomerUser(app, customerId, 'momiji-staff', 'member');
    for (let i = 0; i < 5; i++) {
      const r = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'momiji-staff', password: 'wrong wrong wrong' }, remoteAddress: JP });
      expect(r.statusCode).toBe(401);
    }
    const locked = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'momiji-staff', password: TEST_PASSWORD }, remoteAddress: JP });
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('too_many_attempts');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    app.clock.advance(61_000);
    expect((await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'momiji-staff', password: TEST_PASSWORD }, remoteAddress: JP })).statusCode).toBe(200);
  });

  it('R11.1③ one credential used from many sources at once is locked and the customer flagged; its admins see it', async () => {
    for (let i = 1; i <= 6; i++) {
      await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: `133.11.0.${i + 10}` });
    }
    const after = await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: JP });
    expect(after.statusCode).toBe(423);
    expect(after.json().error.code).toBe('credential_locked');
    admin = await app.signIn('momiji-admin');
    const flags = await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/misuse-flags`, cookie: admin });
    expect(flags.statusCode).toBe(200);
    expect(flags.json().misuseFlags.map((f: { kind: string }) => f.kind)).toContain('many_sources');
  });

  it('R12.1 an operator with TOTP must give a fresh code; a code is not accepted twice', async () => {
    ops = await app.signIn('gw-admin');
    const enroll = await app.request({ method: 'POST', url: '/api/v1/me/totp/enroll', cookie: ops, payload: {} });
    const { secret } = enroll.json();
    const confirm = await app.request({ method: 'POST', url: '/api/v1/me/totp/confirm', cookie: ops, payload: { secret, code: totpCode(secret, app.clock.now()) } });
    expect(confirm.statusCode).toBe(200);
    app.clock.advance(31_000);
    const without = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'gw-admin', password: TEST_PASSWORD } });
    expect(without.statusCode).toBe(401);
    // Refused as a wrong password is: a caller without the code learns nothing of the password.
    expect(without.json().error).toMatchObject({ code: 'invalid_credentials', details: [] });
    const code = totpCode(secret, app.clock.now());
    const ok = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'gw-admin', password: TEST_PASSWORD, totpCode: code } });
    expect(ok.statusCode).toBe(200);
    const replay = await app.request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'gw-admin', password: TEST_PASSWORD, totpCode: code } });
    expect(replay.statusCode).toBe(401);
    ops = `hokan_session=${ok.cookies.find((c) => c.name === 'hokan_session')!.value}`;
  });

  it('R13.1 an admin declares an emergency; it is audit-logged and visible in the status', async () => {
    const on = await app.request({ method: 'POST', url: '/api/v1/gateway/emergency', cookie: ops, payload: { on: true, reason: '地震による回線逼迫' } });
    expect(on.statusCode).toBe(200);
    expect(on.json().emergency.on).toBe(true);
    const status = await app.request({ method: 'GET', url: '/api/v1/gateway/status', cookie: ops });
    expect(status.json().admission.emergency.on).toBe(true);
    await app.request({ method: 'POST', url: '/api/v1/gateway/emergency', cookie: ops, payload: { on: false, reason: '復旧' } });
  });

  it('R13.1 the declaration is shared: another instance’s declaration is applied here at the next reading, and its end too', async () => {
    const gateway = app.ctx.gateway!;
    const stored = await app.ctx.db.selectFrom('gateway_emergency').selectAll().executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ active: false, reason: null });
    expect(stored.changed_by).toContain('gw-admin');
    // Another instance took the operator's request: only the shared row changed.
    const since = new Date('2026-11-24T02:00:00Z');
    await app.ctx.db.updateTable('gateway_emergency').set({ active: true, reason: '別の入口で宣言', since, changed_at: since, changed_by: 'gw-admin' }).where('id', '=', 1).execute();
    expect(gateway.admission.stats().emergency.on).toBe(false);
    await gateway.syncEmergency();
    expect(gateway.admission.stats().emergency).toEqual({ on: true, reason: '別の入口で宣言', since: since.toISOString() });
    expect((await app.request({ method: 'GET', url: '/api/v1/gateway/status', cookie: ops })).json().admission.emergency.on).toBe(true);
    await app.ctx.db.updateTable('gateway_emergency').set({ active: false, reason: null, since: null }).where('id', '=', 1).execute();
    await gateway.syncEmergency();
    expect(gateway.admission.stats().emergency.on).toBe(false);
  });
});

describe('R12.2 the IDS in the chain', () => {
  let app: TestApp;
  let token: string;
  beforeAll(async () => {
    app = await startTestApp('pglite');
    const c = await addCustomerWithContract(app, 'kaki');
    await addCustomerUser(app, c.customer.id, 'kaki-admin', 'customer_admin');
    const admin = await app.signIn('kaki-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${c.customer.id}/api-tokens`, cookie: admin, payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => app?.close());

  it('lets care records with Japanese text through and blocks an injection, recording rule, class and a redacted sample', async () => {
    const ok = await app.request({ method: 'POST', url: '/api/v1/data/collections/notes/records', token, payload: { id: 'n1', data: { text: '血圧 120/80、服薬 ○。select した献立は union 食堂の「drop 缶」', file: 'ケアプラン(2026-11).pdf' } } });
    expect(ok.statusCode).toBe(201);
    const attack = await app.request({ method: 'GET', url: `/api/v1/data/collections/notes/records?where=${encodeURIComponent(`{"id":"1' UNION SELECT password FROM users--"}`)}`, token });
    expect(attack.statusCode).toBe(403);
    expect(attack.json().error.details).toEqual([{ path: 'request', message: 'ids:sql_injection' }]);
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').selectAll().where('kind', '=', 'ids').execute();
    const hit = rows.find((r) => r.class === 'sql_injection')!;
    expect(hit).toMatchObject({ action: 'block', path: '/api/v1/data/collections/notes/records' });
    expect(hit.rule_id).toMatch(/^SQLI-/);
    expect(hit.customer_id).not.toBeNull();
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it('records malformed requests the framework refuses as protocol violations', async () => {
    const bad = await app.request({ method: 'POST', url: '/api/v1/data/collections/notes/records', token, headers: { 'content-type': 'application/json' }, payload: '{"id": ' });
    expect(bad.statusCode).toBe(400);
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').selectAll().where('class', '=', 'protocol_violation').execute();
    expect(rows.length).toBeGreaterThan(0);
  });
});

describe('behind a declared reverse proxy, with the provider\'s misuse policy', () => {
  let app: TestApp;
  let customerId: string;
  let contractId: string;
  let token: string;
  beforeAll(async () => {
    app = await startTestApp('pglite', '2026-11-24T01:00:00Z', { HOKAN_TRUSTED_PROXIES: '127.0.0.1', HOKAN_MISUSE_ACTIONS: 'abroad_use:suspend_customer' });
    const c = await addCustomerWithContract(app, 'ume');
    customerId = c.customer.id;
    contractId = c.contractId;
    await addCustomerUser(app, customerId, 'ume-admin', 'customer_admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie: await app.signIn('ume-admin'), payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => app?.close());

  it('R4.1 the client address comes from X-Forwarded-For of a trusted proxy', async () => {
    expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, headers: { 'x-forwarded-for': JP } })).statusCode).toBe(200);
    expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, headers: { 'x-forwarded-for': US } })).statusCode).toBe(403);
  });

  it('R11.1③ repeated use from abroad suspends the customer when the provider\'s policy says so', async () => {
    for (let i = 0; i < 3; i++) await app.request({ method: 'GET', url: '/api/v1/data/collections', token, headers: { 'x-forwarded-for': DE } });
    const contract = await app.ctx.db.selectFrom('contracts').select(['status', 'suspension_reason']).where('id', '=', contractId).executeTakeFirstOrThrow();
    expect(contract).toEqual({ status: 'suspended', suspension_reason: 'credential_misuse' });
    const home = await app.request({ method: 'GET', url: '/api/v1/data/collections', token, headers: { 'x-forwarded-for': JP } });
    expect(home.json().error.code).toMatch(/customer_suspended|credential_locked/);
  });
});
