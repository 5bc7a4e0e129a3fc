import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

describe.each(databaseKinds)('R3.1 If-Match on records as RFC 9110 §13.1.1 has it, on %s', (kind) => {
  let app: TestApp;
  let token: string;
  const url = '/api/v1/data/collections/residents/records';

  beforeAll(async () => {
    app = await startTestApp(kind);
    const customerId = (await addCustomerWithContract(app, 'aoi')).customer.id;
    await addCustomerUser(app, customerId, 'aoi-admin', 'customer_admin');
    const cookie = await app.signIn('aoi-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie, payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => app?.close());

  const put = (id: string, ifMatch: string, data: Record<string, unknown>) => app.request({ method: 'PUT', url: `${url}/${id}`, token, headers: { 'if-match': ifMatch }, payload: { data } });

  it('R3.1 `*` matches whatever version the record is at, for update and delete; a missing record stays 404', async () => {
    expect((await app.request({ method: 'POST', url, token, payload: { id: 'star', data: { room: '201' } } })).statusCode).toBe(201);
    expect((await put('star', '"v1"', { room: '202' })).headers.etag).toBe('"v2"');
    const any = await put('star', '*', { room: '203' });
    expect(any.statusCode).toBe(200);
    expect(any.headers.etag).toBe('"v3"');
    expect((await put('nobody', '*', { room: '1' })).statusCode).toBe(404);
    expect((await app.request({ method: 'DELETE', url: `${url}/star`, token, headers: { 'if-match': '*' } })).statusCode).toBe(200);
    expect((await app.request({ method: 'GET', url: `${url}/star`, token })).statusCode).toBe(404);
  });

  it('R3.1 a list of ETags matches when the current version is any of them; a stale list is 412 naming them', async () => {
    expect((await app.request({ method: 'POST', url, token, payload: { id: 'list', data: { n: 1 } } })).statusCode).toBe(201);
    expect((await put('list', '"v1"', { n: 2 })).statusCode).toBe(200);
    const listed = await put('list', '"v1", "v2"', { n: 3 });
    expect(listed.statusCode).toBe(200);
    expect(listed.headers.etag).toBe('"v3"');
    const stale = await put('list', '"v1", W/"v2"', { n: 4 });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().error.message.en).toContain('one of 1, 2');
    expect((await app.request({ method: 'DELETE', url: `${url}/list`, token, headers: { 'if-match': '"v2","v3"' } })).statusCode).toBe(200);
  });

  it('R3.1 a weak ETag names its version exactly and is taken; anything else is 400', async () => {
    expect((await app.request({ method: 'POST', url, token, payload: { id: 'weak', data: { n: 1 } } })).statusCode).toBe(201);
    expect((await put('weak', 'W/"v1"', { n: 2 })).statusCode).toBe(200);
    for (const bad of ['soon', '"v2", soon', '**', '', ',']) {
      const res = await put('weak', bad, { n: 3 });
      expect(res.statusCode, JSON.stringify(bad)).toBe(400);
      expect(res.json().error.details[0].path).toBe('If-Match');
    }
  });
});
