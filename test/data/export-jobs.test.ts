import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestExport } from '../../src/data/export-jobs.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

describe.each(databaseKinds)('R10.5 export requests on %s', (kind) => {
  let app: TestApp;
  let customerId: string;
  let userId: string;

  beforeAll(async () => {
    app = await startTestApp(kind);
    customerId = (await addCustomerWithContract(app, 'aoi')).customer.id;
    userId = (await addCustomerUser(app, customerId, 'aoi-admin', 'customer_admin')).id;
  });
  afterAll(async () => app?.close());

  it('R10.5 requests made at the same moment queue one export, and each gets that one', async () => {
    const who = { customerId, actor: { kind: 'customer_user' as const, id: userId, label: 'aoi-admin' }, sourceIp: '127.0.0.1' };
    const db = app.ctx.db;
    // Open as many pooled connections as there are requests, so that they really run side by side.
    await Promise.all(Array.from({ length: 8 }, () => sql`select pg_sleep(0.05)`.execute(db)));
    for (let round = 0; round < 5; round++) {
      const asked = await Promise.all(Array.from({ length: 8 }, () => requestExport(db, app.clock, app.ctx.queue, who)));
      const rows = await db.selectFrom('data_export_jobs').select('id').where('customer_id', '=', customerId).where('state', '=', 'queued').execute();
      expect(rows, `round ${round}`).toHaveLength(1);
      expect(new Set(asked.map((j) => j.id))).toEqual(new Set([rows[0]!.id]));
      // Settled, so the next round asks afresh.
      await db.updateTable('data_export_jobs').set({ state: 'failed', error: 'test', finished_at: app.clock.now() }).where('customer_id', '=', customerId).execute();
    }
  });
});
