import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { terminateImmediately } from '../../src/contracts/contracts.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { readZip } from '../helpers/zip.js';

const op = systemActor('test');
const DAY = 86_400_000;

describe.each(databaseKinds)('R10.6 migration at contract end on %s', (kind) => {
  let app: TestApp;
  const c: Record<string, { id: string; contractId: string; token: string }> = {};
  const cookie = (who: string) => app.signIn(who);

  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-24T01:00:00Z');
    await addOperator(app, 'mig-ops', ['operator']);
    await addOperator(app, 'mig-bill', ['billing']);
    for (const code of ['sumire', 'ran']) {
      const x = await addCustomerWithContract(app, code);
      await addCustomerUser(app, x.customer.id, `${code}-admin`, 'customer_admin');
      const token = (await app.request({ method: 'POST', url: `/api/v1/customers/${x.customer.id}/api-tokens`, cookie: await cookie(`${code}-admin`), payload: { name: 'sw' } })).json().token;
      for (let i = 0; i < 12; i++) {
        await app.request({ method: 'POST', url: '/api/v1/data/collections/residents/records', token, payload: { id: `r${i}`, data: { name: `氏名${i}`, age: 80 + i, ...(i % 2 ? { allergies: ['卵'] } : {}) } } });
      }
      await app.request({ method: 'POST', url: '/api/v1/data/files?name=kiroku.pdf', token, headers: { 'content-type': 'application/pdf' }, payload: Buffer.from('%PDF-1.7 care record') });
      c[code] = { id: x.customer.id, contractId: x.contractId, token };
    }
  });
  afterAll(async () => app?.close());

  let requestId: string;

  it('the customer admin requests migration before the end; a second open request is refused', async () => {
    const res = await app.request({ method: 'POST', url: `/api/v1/customers/${c.sumire!.id}/migration-requests`, cookie: await cookie('sumire-admin'), payload: { note: '新システムへ移行予定' } });
    expect(res.statusCode).toBe(201);
    requestId = res.json().migrationRequest.id;
    expect(res.json().migrationRequest.state).toBe('requested');
    const again = await app.request({ method: 'POST', url: `/api/v1/customers/${c.sumire!.id}/migration-requests`, cookie: await cookie('sumire-admin'), payload: { note: 'x' } });
    expect(again.statusCode).toBe(409);
    const early = await app.request({ method: 'POST', url: `/api/v1/migration-requests/${requestId}/package`, cookie: await cookie('mig-ops') });
    expect(early.statusCode).toBe(409);
  });

  it('an open request holds the purge after the end, and the package is produced, billed and delivered', async () => {
    await terminateImmediately(app.ctx.db, app.clock, op, c.sumire!.contractId, { ground: 'third_party_claim', note: 'test' });
    app.clock.advance(2 * DAY);
    await app.ctx.queue.poll();
    expect((await app.ctx.db.selectFrom('data_records').select('id').where('customer_id', '=', c.sumire!.id).execute()).length).toBe(12);

    const produced = await app.request({ method: 'POST', url: `/api/v1/migration-requests/${requestId}/package`, cookie: await cookie('mig-ops') });
    expect(produced.statusCode).toBe(201);
    const mr = produced.json().migrationRequest;
    expect(mr).toMatchObject({ state: 'produced', billableItemId: expect.any(String) });

    const items = await app.request({ method: 'GET', url: `/api/v1/contracts/${c.sumire!.contractId}/billable-items`, cookie: await cookie('mig-ops') });
    expect(items.json().billableItems).toHaveLength(1);
    expect(items.json().billableItems[0]).not.toHaveProperty('amountYen');
    expect((await app.request({ method: 'PUT', url: `/api/v1/billable-items/${mr.billableItemId}/amount`, cookie: await cookie('mig-ops'), payload: { amountYen: 50000 } })).statusCode).toBe(403);
    expect((await app.request({ method: 'PUT', url: `/api/v1/billable-items/${mr.billableItemId}/amount`, cookie: await cookie('mig-bill'), payload: { amountYen: 50000 } })).statusCode).toBe(200);
    const forCustomer = await app.request({ method: 'GET', url: `/api/v1/contracts/${c.sumire!.contractId}/billable-items`, cookie: await cookie('sumire-admin') });
    expect(forCustomer.json().billableItems[0]).toMatchObject({ kind: 'data_migration', amountYen: 50000 });

    const other = await app.request({ method: 'GET', url: `/api/v1/migration-requests/${requestId}/package`, cookie: await cookie('ran-admin') });
    expect(other.statusCode).toBe(404);
    const download = await app.request({ method: 'GET', url: `/api/v1/migration-requests/${requestId}/package`, cookie: await cookie('sumire-admin') });
    expect(download.statusCode).toBe(200);
    const entries = await readZip(download.rawPayload);
    const names = entries.map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['README.txt', 'schema.json', 'records/residents.ndjson', 'manifest.json']));
    const schema = JSON.parse(entries.find((e) => e.name === 'schema.json')!.data.toString());
    expect(schema.collections).toEqual([
      { name: 'residents', records: 12, fields: [{ name: 'age', types: ['number'], presentIn: 12 }, { name: 'allergies', types: ['array'], presentIn: 6 }, { name: 'name', types: ['string'], presentIn: 12 }] },
    ]);
    expect(schema.files).toEqual({ count: 1, bytes: 20 });
    expect(entries.find((e) => e.name === 'records/residents.ndjson')!.data.toString().trim().split('\n')).toHaveLength(12);
    await new Promise((r) => setTimeout(r, 50));
    const list = await app.request({ method: 'GET', url: `/api/v1/customers/${c.sumire!.id}/migration-requests`, cookie: await cookie('mig-ops') });
    expect(list.json().migrationRequests[0].state).toBe('delivered');

    // Delivered: the purge goes ahead, the package goes with the rest.
    app.clock.advance(15 * 60_000);
    await app.ctx.queue.poll();
    expect((await app.ctx.db.selectFrom('data_records').select('id').where('customer_id', '=', c.sumire!.id).execute()).length).toBe(0);
    const left: string[] = [];
    for await (const b of app.ctx.files.list(`customers/${c.sumire!.id}/`)) left.push(b.key);
    expect(left).toEqual([]);
    expect((await app.request({ method: 'GET', url: `/api/v1/migration-requests/${requestId}/package`, cookie: await cookie('sumire-admin') })).statusCode).toBeGreaterThanOrEqual(400);
  });

  it("an undelivered request holds the purge only up to the provider's bound (30 days), then lapses", async () => {
    const res = await app.request({ method: 'POST', url: `/api/v1/customers/${c.ran!.id}/migration-requests`, cookie: await cookie('mig-ops'), payload: { note: '書面で受領' } });
    expect(res.statusCode).toBe(201);
    await terminateImmediately(app.ctx.db, app.clock, op, c.ran!.contractId, { ground: 'gross_breach', note: 'test' });
    app.clock.advance(29 * DAY);
    await app.ctx.queue.poll();
    expect((await app.ctx.db.selectFrom('data_records').select('id').where('customer_id', '=', c.ran!.id).execute()).length).toBe(12);
    app.clock.advance(DAY + 60 * 60_000);
    await app.ctx.queue.poll();
    expect((await app.ctx.db.selectFrom('data_records').select('id').where('customer_id', '=', c.ran!.id).execute()).length).toBe(0);
    const list = await app.request({ method: 'GET', url: `/api/v1/customers/${c.ran!.id}/migration-requests`, cookie: await cookie('mig-ops') });
    expect(list.json().migrationRequests[0].state).toBe('lapsed');
    const late = await app.request({ method: 'POST', url: `/api/v1/customers/${c.ran!.id}/migration-requests`, cookie: await cookie('mig-ops'), payload: { note: 'too late' } });
    expect(late.statusCode).toBe(409);
  });
});
