import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

const JP = '133.11.0.1';
/** Placed in Germany by the geo database; the provider declares its /24 Japanese (HOKAN_GEO_ALLOW_CIDRS). */
const ALLOWLISTED = '193.99.144.80';
const US = '8.8.8.8';

describe('R4.1 R15.1① a source in HOKAN_GEO_ALLOW_CIDRS counts as Japan for misuse detection', () => {
  let app: TestApp;
  let customerId: string;
  let token: string;
  beforeAll(async () => {
    app = await startTestApp('pglite', '2026-11-24T01:00:00Z', { HOKAN_GEO_ALLOW_CIDRS: '193.99.144.0/24' });
    const c = await addCustomerWithContract(app, 'kuri');
    customerId = c.customer.id;
    await addCustomerUser(app, customerId, 'kuri-admin', 'customer_admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie: await app.signIn('kuri-admin'), payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => app?.close());

  const flagKinds = async () => (await app.ctx.db.selectFrom('misuse_flags').select('kind').where('customer_id', '=', customerId).execute()).map((r) => r.kind);

  it('R15.1① use from Japan and from the allowlisted network makes no abroad_use or impossible_travel finding', async () => {
    expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: JP })).statusCode).toBe(200);
    for (let i = 0; i < 4; i++) {
      expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: ALLOWLISTED })).statusCode).toBe(200);
      app.clock.advance(60_000);
    }
    expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: JP })).statusCode).toBe(200);
    expect(await flagKinds()).toEqual([]);
  });

  it('R15.1① use from a real foreign address is still refused and still a finding', async () => {
    expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: US })).statusCode).toBe(403);
    expect(await flagKinds()).toEqual(['impossible_travel']);
  });
});
