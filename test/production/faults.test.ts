/**
 * Fault tests of issue 7 (bounded, loopback only, PostgreSQL only: two instances need one server):
 * two real instances (test/fixtures/instance.ts, i.e. createApp + runInstance as `hokan serve`) on a
 * fresh database; one is SIGKILLed in the middle of a purge, a burst of data writes, an e-mail
 * fan-out of 1,000 notices; the other finishes the work. The SIGKILL during a backup is
 * test/backup/faults.test.ts. With CI=true and no TEST_DATABASE_URL the helpers throw: never skipped in CI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBackupSettings } from '../../src/backup/settings.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { LocalDirectoryStore } from '../../src/storage/index.js';
import { terminateImmediately } from '../../src/contracts/contracts.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { migrate, openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { JobQueue } from '../../src/core/jobs/job-queue.js';
import { queueEmail } from '../../src/notify/outbox.js';
import { createPostgresDatabase, dropPostgresDatabase, postgresUrl } from '../helpers/databases.js';
import { seedCustomerWithToken, startInstance, stopAllInstances, type Instance } from '../helpers/instances.js';
import { TestSmtpListener } from '../helpers/smtp.js';

afterAll(() => stopAllInstances());

const T0 = '2026-11-24T01:00:00.000Z';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const actor = systemActor('fault test');

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 90_000, everyMs = 50): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile()).map((f) => path.join(f.parentPath, f.name));
}

interface Setup {
  url: string;
  db: DatabaseHandle;
  dirs: { files: string; backup: string };
  env: Record<string, string>;
  done(): Promise<void>;
}

async function setUp(extra: Record<string, string> = {}): Promise<Setup> {
  const url = await createPostgresDatabase();
  const db = await openDatabase({ kind: 'postgres', url });
  await migrate(db.db);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-faults-'));
  const dirs = { files: path.join(base, 'files'), backup: path.join(base, 'backup') };
  return {
    url,
    db,
    dirs,
    env: { DATABASE_URL: url, HOKAN_FILES_URL: dirs.files, HOKAN_BACKUP_URL: dirs.backup, HOKAN_BACKUP_SAME_DEVICE_OK: 'true', HOKAN_JOB_LEASE_SECONDS: '60', ...extra },
    async done() {
      stopAllInstances();
      await db.close();
      await dropPostgresDatabase(url);
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

describe.skipIf(!postgresUrl)('SIGKILL of one of two instances (PostgreSQL)', () => {
  it('R10.7 during a purge: the other instance finishes it; the key is destroyed, no live object is left and no backup copy is readable', async () => {
    const s = await setUp();
    try {
      const clock = new ManualClock(T0);
      const c = await seedCustomerWithToken(s.db.db, clock, 'purge');
      const a = await startInstance({ ...s.env, HOKAN_INSTANCE_ID: 'purge-a', FIXTURE_CLOCK: T0 });
      const auth = { authorization: `Bearer ${c.token}` };
      const FILES = 150;
      for (let batch = 0; batch < FILES; batch += 10) {
        await Promise.all(
          Array.from({ length: 10 }, async (_, i) => {
            const res = await fetch(`${a.address}/api/v1/data/files?name=f${batch + i}.txt`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: `file ${batch + i} `.repeat(100) });
            expect(res.status).toBe(201);
          }),
        );
      }
      for (let i = 0; i < 30; i++) {
        const res = await fetch(`${a.address}/api/v1/data/collections/residents/records`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id: `r${i}`, data: { name: `利用者${i}` } }) });
        expect(res.status).toBe(201);
      }
      // Two backups of the customer, taken by the instance's job worker.
      const producer = new JobQueue({ db: s.db.db, clock, instanceId: 'producer' });
      for (let i = 0; i < 2; i++) await producer.enqueue(s.db.db, 'backup.customer', { customerId: c.customerId, generation: 'manual' });
      await until('two good backups', async () => (await s.db.db.selectFrom('backups').select('id').where('customer_id', '=', c.customerId).where('state', '=', 'good').execute()).length === 2);
      expect(filesUnder(s.dirs.backup).filter((f) => f.includes(c.customerId)).length).toBeGreaterThan(0);

      await terminateImmediately(s.db.db, clock, actor, c.contractId, { ground: 'gross_breach', note: 'fault test' });
      // 24 h grace + one purge tick later, on A's clock: A starts the purge.
      a.send(`advance ${24 * 3_600_000 + 11 * 60_000}`);
      const due = () => s.db.db.selectFrom('data_deletion_due').select(['purge_progress', 'consumed_at']).where('customer_id', '=', c.customerId).executeTakeFirstOrThrow();
      await until('the purge to start', async () => (await due()).purge_progress !== null, 90_000, 5);
      a.child.kill('SIGKILL');
      await a.exited;
      // Killed in the middle: the key and the live rows went together (one transaction), the certificate not yet.
      const cert = () => s.db.db.selectFrom('deletion_certificates').select('body').where('customer_id', '=', c.customerId).executeTakeFirst();
      expect(await cert()).toBeUndefined();
      expect((await due()).consumed_at).toBeNull();
      const key = await s.db.db.selectFrom('customer_keys').select('wrapped_key').where('customer_id', '=', c.customerId).executeTakeFirstOrThrow();
      expect(key.wrapped_key).toBeNull();

      const b = await startInstance({ ...s.env, HOKAN_INSTANCE_ID: 'purge-b', FIXTURE_CLOCK: new Date(Date.parse(T0) + 24 * 3_600_000 + 11 * 60_000).toISOString() });
      b.send(`advance ${10 * 60_000}`); // the next purge tick (and A's lease long gone)
      const body = await until('the certificate', async () => (await cert())?.body, 90_000, 100);
      const certificate = (typeof body === 'string' ? JSON.parse(body) : body) as { live: { files: { count: number }; records: { count: number } }; backups: Array<{ targets: Array<{ state: string; objects: Array<{ key: string }> }> }> };
      // The certificate counts what A deleted before it died (saved with the deletion), not what B found left.
      expect(certificate.live.files.count).toBe(FILES);
      expect(certificate.live.records.count).toBe(30);
      // The two manual backups and the daily one the instance took at its first tick.
      expect(certificate.backups.length).toBeGreaterThanOrEqual(2);
      // No readable copy anywhere: no live object; no backup object but those a daily generation's
      // immutability period still holds, which nobody can decrypt since the key is destroyed.
      const retained = certificate.backups.flatMap((x) => x.targets).filter((t) => t.state === 'retained').flatMap((t) => t.objects.map((o) => o.key));
      expect(filesUnder(s.dirs.files).filter((f) => f.includes(c.customerId))).toEqual([]);
      // (a retained object's retention record sits beside it as <key>.hokan-meta.json)
      const left = filesUnder(s.dirs.backup).filter((f) => f.includes(c.customerId)).map((f) => path.relative(s.dirs.backup, f).replace(/\.hokan-meta\.json$/, ''));
      expect(left.filter((f) => !retained.includes(f))).toEqual([]);
      console.log(`purge: ${certificate.backups.length} backups, ${retained.length} objects retained (key destroyed), ${left.length} left on disk`);
      expect(await s.db.db.selectFrom('data_records').select('id').where('customer_id', '=', c.customerId).execute()).toEqual([]);
      expect(await s.db.db.selectFrom('data_files').select('id').where('customer_id', '=', c.customerId).execute()).toEqual([]);
      const states = await s.db.db.selectFrom('backups').select(['id', 'state']).where('customer_id', '=', c.customerId).execute();
      expect(states.every((x) => x.state === 'purged')).toBe(true);
      // What the retention still holds cannot be read: verifying (which decrypts) fails for every backup.
      const settings = await loadBackupSettings({ HOKAN_BACKUP_URL: s.dirs.backup, HOKAN_BACKUP_SAME_DEVICE_OK: 'true', HOKAN_MASTER_KEY: 'ef'.repeat(32) }, { dataDir: path.join(path.dirname(s.dirs.files), 'data'), files: new LocalDirectoryStore({ root: s.dirs.files }), embedded: false, s3Credentials: {} });
      for (const x of states) expect((await verifyBackup({ db: s.db.db, clock, settings }, x.id, 'primary')).ok).toBe(false);
      expect((await fetch(`${b.address}/api/v1/data/collections`, { headers: auth })).status).toBe(410);
      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
    } finally {
      await s.done();
    }
  }, 300_000);

  it('R3.1 during a burst of data writes: every write acknowledged with 2xx is there afterwards', async () => {
    const s = await setUp();
    try {
      const c = await seedCustomerWithToken(s.db.db, systemClock, 'burst');
      const [a, b] = await Promise.all([startInstance({ ...s.env, HOKAN_INSTANCE_ID: 'burst-a' }), startInstance({ ...s.env, HOKAN_INSTANCE_ID: 'burst-b' })]);
      const headers = { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' };
      /** What the clients were told: record id → last acknowledged version and data. */
      const acked = new Map<string, { version: number; data: unknown }>();
      let ackedByA = 0;
      let failedAtA = 0;
      let stop = false;
      const worker = async (w: number, first: Instance) => {
        let target = first;
        for (let n = 0; !stop; n++) {
          const id = `w${w}-${n}`;
          const data = { w, n, text: `記録 ${w}/${n}` };
          try {
            const res = await fetch(`${target.address}/api/v1/data/collections/visits/records`, { method: 'POST', headers, body: JSON.stringify({ id, data }) });
            if (res.status !== 201) throw new Error(`create ${res.status} ${await res.text()}`);
            acked.set(id, { version: 1, data });
            if (target === a) ackedByA++;
            if (n % 3 === 2) {
              // Also an update of an acknowledged record, with its version.
              const prev = `w${w}-${n - 1}`;
              const known = acked.get(prev);
              if (known) {
                const next = { ...(known.data as object), updated: true };
                const up = await fetch(`${target.address}/api/v1/data/collections/visits/records/${prev}`, { method: 'PUT', headers: { ...headers, 'if-match': `"${known.version}"` }, body: JSON.stringify({ data: next }) });
                if (up.status !== 200) throw new Error(`update ${up.status} ${await up.text()}`);
                acked.set(prev, { version: known.version + 1, data: next });
              }
            }
          } catch {
            // The instance died under us (connection reset / refused): a client retries elsewhere.
            if (target === a) failedAtA++;
            target = b;
          }
        }
      };
      const workers = Array.from({ length: 12 }, (_, w) => worker(w, w % 2 === 0 ? a : b));
      await until('writes acknowledged by A', async () => ackedByA >= 150, 90_000, 10);
      a.child.kill('SIGKILL');
      await a.exited;
      const atKill = acked.size;
      await until('writes continuing on B', async () => acked.size >= atKill + 150, 90_000, 10);
      stop = true;
      await Promise.all(workers);
      expect(failedAtA).toBeGreaterThan(0);

      const rows = await s.db.db.selectFrom('data_records').select(['id', 'version', 'data']).where('customer_id', '=', c.customerId).execute();
      const stored = new Map(rows.map((r) => [r.id, r]));
      const lost = [...acked.keys()].filter((id) => !stored.has(id));
      expect(lost).toEqual([]);
      for (const [id, want] of acked) {
        const got = stored.get(id)!;
        // Never older than acknowledged; equal unless a later, unacknowledged update also committed.
        expect(got.version).toBeGreaterThanOrEqual(want.version);
        if (got.version === want.version) expect(typeof got.data === 'string' ? JSON.parse(got.data) : got.data).toEqual(want.data);
      }
      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
    } finally {
      await s.done();
    }
  }, 300_000);

  it('R8.2 during an e-mail fan-out to 1,000 addresses: the other instance sends the rest; each address gets its notice, a resend only of the sends in flight (same Message-ID)', async () => {
    const smtp = new TestSmtpListener();
    await smtp.start();
    const s = await setUp({ HOKAN_SMTP_URL: smtp.url });
    try {
      const clock = new ManualClock(T0);
      const N = 1000;
      for (let i = 0; i < N; i++) await queueEmail(s.db.db, clock, { dedupeKey: `fanout:${i}`, to: `u${i}@example.jp`, subject: `お知らせ ${i}`, text: `本文 ${i}` });
      const a = await startInstance({ ...s.env, HOKAN_INSTANCE_ID: 'mail-a', FIXTURE_CLOCK: T0 });
      await until('A to have sent 300', async () => smtp.received.length >= 300, 120_000, 5);
      a.child.kill('SIGKILL');
      await a.exited;
      const atKill = smtp.received.length;
      expect(atKill).toBeLessThan(N);
      const b = await startInstance({ ...s.env, HOKAN_INSTANCE_ID: 'mail-b', FIXTURE_CLOCK: T0 });
      // Past A's claims (an outbox lease is 5 min) and its job's lease: B takes the rest.
      b.send(`advance ${6 * 60_000}`);
      await until('every row sent', async () => Number((await s.db.db.selectFrom('outbound_emails').select((eb) => eb.fn.countAll<string>().as('n')).where('state', '!=', 'sent').executeTakeFirstOrThrow()).n) === 0, 180_000, 200);
      await sleep(500);
      const byAddress = new Map<string, string[]>();
      for (const m of smtp.received) for (const to of m.to) byAddress.set(to, [...(byAddress.get(to) ?? []), m.messageId]);
      const missing = Array.from({ length: N }, (_, i) => `u${i}@example.jp`).filter((addr) => !byAddress.has(addr));
      expect(missing).toEqual([]);
      const repeated = [...byAddress].filter(([, ids]) => ids.length > 1);
      // A message accepted by the server in the instant before A could record it is sent again,
      // with the same Message-ID, so the receiving side sees one notice. Only sends in flight at
      // the kill can be in that window: at most HOKAN_SMTP_MAX_CONNECTIONS × 4 (20 by default) in
      // flight plus the accepted ones not yet recorded (settled ten at a time).
      expect(repeated.length).toBeLessThanOrEqual(30);
      for (const [, ids] of repeated) expect(new Set(ids).size).toBe(1);
      expect(smtp.received.length).toBe(N + repeated.length);
      console.log(`fan-out: ${atKill} sent by A before SIGKILL, ${smtp.received.length - atKill} by B, ${repeated.length} resent`);
      b.child.kill('SIGTERM');
      expect((await b.exited).code).toBe(0);
    } finally {
      await s.done();
      await smtp.stop();
    }
  }, 400_000);
});
