import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { searchDataAccess, verifyDataAccessChain } from '../../src/data/access-log.js';
import { runExportJob } from '../../src/data/export-jobs.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe.each(databaseKinds)('the data access log records every read of customer data (who, when, from where) on %s', (kind) => {
  let app: TestApp;
  let customerId: string;
  let admin: string;
  let secondAdmin: string;
  let token: string;

  const entries = () => searchDataAccess(app.ctx.db, { customerId, limit: 1000 });

  beforeAll(async () => {
    app = await startTestApp(kind);
    customerId = (await addCustomerWithContract(app, 'aoi')).customer.id;
    await addCustomerUser(app, customerId, 'aoi-admin', 'customer_admin');
    await addCustomerUser(app, customerId, 'aoi-admin2', 'customer_admin');
    admin = await app.signIn('aoi-admin');
    secondAdmin = await app.signIn('aoi-admin2');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie: admin, payload: { name: 'care-software' } })).json().token;
    await app.request({ method: 'POST', url: '/api/v1/data/collections/residents/records', token, payload: { id: 'r1', data: { name: '山田 花子' } } });
  });
  afterAll(async () => app?.close());

  /** Asks for an export through the portal, as the admin signed in with `cookie`, and runs it. */
  async function finishedExport(cookie: string): Promise<string> {
    const page = await app.request({ method: 'GET', url: '/portal/export', cookie });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
    const asked = await app.request({ method: 'POST', url: '/portal/export', cookie, headers: FORM, payload: `_csrf=${encodeURIComponent(csrf)}` });
    expect(asked.statusCode).toBe(303);
    const id = /job=([0-9a-f-]{36})/.exec(String(asked.headers.location))?.[1];
    if (!id) throw new Error(`no export id in ${String(asked.headers.location)}`);
    await runExportJob({ db: app.ctx.db, clock: app.clock, files: app.ctx.files }, id);
    return id;
  }

  it('R10.5 each download of a finished export archive is logged: the admin who took it, when, from where, which export', async () => {
    const exportId = await finishedExport(admin);
    app.clock.advance(60_000);
    const first = await app.request({ method: 'GET', url: `/portal/exports/${exportId}/download`, cookie: secondAdmin });
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('application/zip');
    app.clock.advance(60_000);
    expect((await app.request({ method: 'GET', url: `/portal/exports/${exportId}/download`, cookie: secondAdmin })).statusCode).toBe(200);

    const downloads = (await entries()).filter((e) => e.operation === 'download' && e.targetId === exportId);
    expect(downloads).toHaveLength(2);
    for (const e of downloads) expect(e).toMatchObject({ targetType: 'export', actor: { kind: 'customer_user', label: expect.stringContaining('aoi-admin2') }, sourceIp: '127.0.0.1' });
    expect(downloads.map((e) => e.at)).toEqual(['2026-11-24T01:01:00.000Z', '2026-11-24T01:02:00.000Z']);
    // The customer's admin finds them through the API too.
    const listed = await app.request({ method: 'GET', url: `/api/v1/data-access-log?operation=download&targetId=${exportId}`, cookie: admin });
    expect(listed.json().entries).toHaveLength(2);
    expect(await verifyDataAccessChain(app.ctx.db, customerId)).toMatchObject({ ok: true });
  });

  it("R3.1 HEAD of a file's content, of the export and of an export archive reads nothing and logs nothing", async () => {
    const up = await app.request({ method: 'POST', url: '/api/v1/data/files?name=scan.pdf', token, headers: { 'content-type': 'application/pdf' }, payload: Buffer.alloc(4096, 1) });
    expect(up.statusCode).toBe(201);
    const fileId = up.json().file.id as string;
    const exportId = await finishedExport(admin);
    const before = (await entries()).length;

    for (const [url, who] of [
      [`/api/v1/data/files/${fileId}/content`, { token }],
      ['/api/v1/data/export', { cookie: admin }],
      [`/portal/exports/${exportId}/download`, { cookie: admin }],
    ] as const) {
      const head = await app.request({ method: 'HEAD', url, ...who });
      expect(head.statusCode, url).toBe(404);
    }
    expect((await entries()).slice(before)).toEqual([]);

    // GET still serves them, and logs them.
    expect((await app.request({ method: 'GET', url: `/api/v1/data/files/${fileId}/content`, token })).statusCode).toBe(200);
    expect((await entries()).slice(before).map((e) => [e.operation, e.targetType, e.targetId])).toEqual([['download', 'file', fileId]]);
  });

  it('R3.1 listing the collections and their record counts is logged as a read', async () => {
    const before = (await entries()).length;
    const res = await app.request({ method: 'GET', url: '/api/v1/data/collections', token });
    expect(res.statusCode).toBe(200);
    expect(res.json().collections).toEqual([{ collection: 'residents', records: 1 }]);
    const logged = (await entries()).slice(before);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ operation: 'list', targetType: 'collection', collection: null, actor: { kind: 'api_token', label: 'token care-software' }, sourceIp: '127.0.0.1', at: app.clock.now().toISOString() });
  });
});
