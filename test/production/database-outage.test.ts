import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { migrate, openDatabase } from '../../src/core/db/database.js';
import { JobQueue } from '../../src/core/jobs/job-queue.js';
import { createPostgresDatabase, dropPostgresDatabase, postgresUrl } from '../helpers/databases.js';
import { seedCustomerWithToken, startInstance, stopAllInstances } from '../helpers/instances.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

afterAll(() => stopAllInstances());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!postgresUrl)('PostgreSQL unreachable and back (through a TCP proxy the test cuts)', () => {
  it('the instance survives the outage, says so once in its log, reports not ready, and recovers by itself: jobs and writes continue', async () => {
    const url = await createPostgresDatabase();
    const direct = await openDatabase({ kind: 'postgres', url });
    const target = new URL(url);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-outage-'));
    try {
      await migrate(direct.db);
      const { token } = await seedCustomerWithToken(direct.db, systemClock, 'outage');
      const producer = new JobQueue({ db: direct.db, clock: systemClock, instanceId: 'producer' });
      const inst = await startInstance({ DATABASE_URL: proxy.urlFor(url), HOKAN_FILES_URL: filesDir, HOKAN_INSTANCE_ID: 'inst-outage', FIXTURE_SLOW_JOB_MS: '10' });
      const write = (id: string) =>
        fetch(`${inst.address}/api/v1/data/collections/visits/records`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ id, data: { n: id } }) });

      const before = (await producer.enqueue(direct.db, 'test.slow', {}))!;
      await inst.waitFor(new RegExp(`^job finished ${before}$`, 'm'));
      expect((await write('before')).status).toBe(201);
      expect((await fetch(`${inst.address}/readyz`)).status).toBe(200);

      proxy.cut();
      await inst.waitFor(/"msg":"database connection lost"/, 30_000);
      // While PostgreSQL is unreachable: liveness yes, readiness no (naming the database), writes refused with 503 + Retry-After, not hanging.
      expect((await fetch(`${inst.address}/healthz`)).status).toBe(200);
      const ready = await fetch(`${inst.address}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { failing: string[] }).failing).toContain('database');
      const refused = await write('during');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      const during = (await producer.enqueue(direct.db, 'test.slow', {}))!;
      await sleep(4_000); // dozens of failed polls

      proxy.restore();
      await inst.waitFor(/"msg":"database connection restored"/, 30_000);
      await inst.waitFor(new RegExp(`^job finished ${during}$`, 'm'), 30_000);
      expect((await write('after')).status).toBe(201);
      expect((await fetch(`${inst.address}/readyz`)).status).toBe(200);

      // One line when it was lost, one when it came back: not one per failed poll.
      expect(inst.logs('database connection lost')).toHaveLength(1);
      expect(inst.logs('database connection restored')).toHaveLength(1);
      expect(inst.logs('database connection restored')[0]).toMatchObject({ instance: 'inst-outage' });
      expect(inst.logs(/job poll failed|unhandled rejection/)).toEqual([]);
      expect(inst.err()).not.toMatch(/Unhandled|uncaught/i);
      expect(inst.child.exitCode).toBeNull();
      const rows = await direct.db.selectFrom('data_records').select('id').where('collection', '=', 'visits').orderBy('id').execute();
      expect(rows.map((r) => r.id)).toEqual(['after', 'before']);

      inst.child.kill('SIGTERM');
      expect((await inst.exited).code).toBe(0);
    } finally {
      stopAllInstances();
      await proxy.stop();
      await direct.close();
      await dropPostgresDatabase(url);
      fs.rmSync(filesDir, { recursive: true, force: true });
    }
  }, 240_000);
});
