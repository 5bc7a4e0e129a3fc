import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { migrate, openDatabase } from '../../src/core/db/database.js';
import { JobQueue } from '../../src/core/jobs/job-queue.js';
import { createPostgresDatabase, dropPostgresDatabase, postgresUrl } from '../helpers/databases.js';
import { seedCustomerWithToken, startInstance, stopAllInstances } from '../helpers/instances.js';

afterAll(() => stopAllInstances());

/** Sends a POST whose body arrives in two halves, `gapMs` apart: a slow upload, in flight for that long. */
function slowUpload(address: string, token: string, body: Buffer, gapMs: number, onFirstHalf: () => void): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${address}/api/v1/data/files?name=slow.bin`);
    const req = http.request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    const half = Math.floor(body.length / 2);
    req.write(body.subarray(0, half), () => {
      onFirstHalf();
      setTimeout(() => req.end(body.subarray(half)), gapMs);
    });
  });
}

describe.skipIf(!postgresUrl)('graceful shutdown of a real instance (PostgreSQL)', () => {
  it('SIGTERM during a slow upload: the upload completes, a running job is handed back and another instance takes it at once, exit 0', async () => {
    const url = await createPostgresDatabase();
    const h = await openDatabase({ kind: 'postgres', url });
    const filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-shutdown-'));
    try {
      await migrate(h.db);
      const { token } = await seedCustomerWithToken(h.db, systemClock, 'shut');
      const env = { DATABASE_URL: url, HOKAN_FILES_URL: filesDir, HOKAN_SHUTDOWN_TIMEOUT_SECONDS: '4', HOKAN_JOB_LEASE_SECONDS: '120' };
      const a = await startInstance({ ...env, HOKAN_INSTANCE_ID: 'inst-a', FIXTURE_SLOW_JOB_MS: '600000' });
      // The job is queued once A runs, so A is the one that takes it.
      const producer = new JobQueue({ db: h.db, clock: systemClock, instanceId: 'producer' });
      const jobId = (await producer.enqueue(h.db, 'test.slow', {}))!;
      await a.waitFor(new RegExp(`^job started ${jobId}$`, 'm'));
      const b = await startInstance({ ...env, HOKAN_INSTANCE_ID: 'inst-b', FIXTURE_SLOW_JOB_MS: '200' });

      const body = randomBytes(256 * 1024);
      let terminatedAt = 0;
      const upload = slowUpload(a.address, token, body, 1500, () => {
        // Half the body is sent: the request is in flight. Now the orchestrator stops the instance.
        setTimeout(() => {
          terminatedAt = performance.now();
          a.child.kill('SIGTERM');
        }, 200);
      });
      const res = await upload;
      expect(res.status, res.body).toBe(201);
      const fileId = (JSON.parse(res.body) as { file: { id: string; size: number } }).file;
      expect(fileId.size).toBe(body.length);

      // The handed-back job was taken by B long before A's 120 s lease would have run out.
      await b.waitFor(new RegExp(`^job finished ${jobId}$`, 'm'), 30_000);
      expect(performance.now() - terminatedAt).toBeLessThan(30_000);
      expect((await a.exited).code).toBe(0);
      expect(a.out()).toMatch(new RegExp(`^job aborted ${jobId}$`, 'm'));
      const jobRow = () => h.db.selectFrom('jobs').select(['state', 'locked_by', 'attempts']).where('id', '=', jobId).executeTakeFirstOrThrow();
      // "job finished" is printed by the handler; the queue marks the row right after it.
      for (let i = 0; i < 50 && (await jobRow()).state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 100));
      const row = await jobRow();
      // Handing back does not count as a failed attempt.
      expect(row).toEqual({ state: 'completed', locked_by: 'inst-b', attempts: 1 });
      // The file acknowledged by A is stored, complete.
      const stored = await h.db.selectFrom('data_files').select(['size']).where('id', '=', fileId.id).executeTakeFirstOrThrow();
      expect(Number(stored.size)).toBe(body.length);
      // Each step is logged, in order.
      const steps = ['shutting down: draining requests and handing back jobs', 'shutdown: readiness now 503 (draining); no new connections', 'shutdown: waiting for in-flight requests', 'shutdown: in-flight requests finished', 'shutdown: handed back running jobs for another instance', 'shutdown: database closed', 'shutdown complete'];
      const positions = steps.map((s) => a.out().indexOf(`"msg":"${s}"`));
      expect(positions.every((p) => p >= 0), a.out().slice(-3000)).toBe(true);
      // By the time each line carries (log lines of one millisecond may reach stdout out of order).
      const times = steps.map((s) => Number(a.logs(s)[0]?.time));
      expect(Math.max(...times), a.out().split('\n').filter((l) => l.includes('shut')).join('\n')).toBe(times[steps.length - 1]);
      // The slow job at least; a scheduled tick (monitors, notices) may be in hand at the same moment.
      expect(Number(a.logs('shutdown: handed back running jobs for another instance')[0]?.handedBack)).toBeGreaterThanOrEqual(1);
      // No new connection is accepted after the shutdown.
      await expect(fetch(`${a.address}/healthz`)).rejects.toThrow();

      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
      // B shuts down cleanly too (it may be holding a scheduled tick, which it hands back).
      expect(b.logs('shutdown: database closed')).toHaveLength(1);
    } finally {
      stopAllInstances();
      await h.close();
      await dropPostgresDatabase(url);
      fs.rmSync(filesDir, { recursive: true, force: true });
    }
  }, 240_000);
});
