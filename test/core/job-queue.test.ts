import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { openDatabase } from '../../src/core/db/database.js';
import { JobQueue } from '../../src/core/jobs/job-queue.js';
import { databaseKinds, openTestDatabase, postgresUrl, type TestDatabase } from '../helpers/databases.js';

describe.each(databaseKinds)('job queue on %s', (kind) => {
  let h: TestDatabase;
  beforeAll(async () => {
    h = await openTestDatabase(kind);
  });
  afterAll(async () => h?.close());

  it('runs a scheduled job once per tick however often it polls, driven by the clock', async () => {
    const clock = new ManualClock('2026-11-24T00:00:10Z');
    const q = new JobQueue({ db: h.db, clock, instanceId: 'a' });
    const seen: string[] = [];
    q.register<{ scheduledFor: string }>('t.tick', async ({ payload }) => {
      seen.push(payload.scheduledFor);
    });
    q.schedule({ name: 't.tick', queue: 't.tick', everyMs: 60_000 });
    await q.poll();
    await q.poll();
    clock.advance(30_000);
    await q.poll();
    clock.advance(30_000);
    await q.poll();
    expect(seen).toEqual(['2026-11-24T00:00:00.000Z', '2026-11-24T00:01:00.000Z']);
  });

  it('daily schedules fall on the offset, e.g. 02:00 JST', () => {
    const def = { name: 'd', queue: 'd', everyMs: 86_400_000, offsetMs: 17 * 3_600_000 };
    expect(JobQueue.tickOf(def, new Date('2026-11-24T16:59:59Z')).toISOString()).toBe('2026-11-23T17:00:00.000Z');
    expect(JobQueue.tickOf(def, new Date('2026-11-24T17:00:00Z')).toISOString()).toBe('2026-11-24T17:00:00.000Z');
  });

  it('retries a failing job with backoff, then marks it failed', async () => {
    const clock = new ManualClock('2026-11-24T00:00:00Z');
    const q = new JobQueue({ db: h.db, clock, instanceId: 'r' });
    let calls = 0;
    q.register('t.flaky', async () => {
      calls++;
      throw new Error(`boom ${calls}`);
    }, { maxAttempts: 3 });
    const id = await q.enqueue(h.db, 't.flaky', {});
    await q.runDueJobs();
    expect(calls).toBe(1);
    await q.runDueJobs(); // not due yet: backoff
    expect(calls).toBe(1);
    clock.advance(5_000);
    await q.runDueJobs();
    clock.advance(10_000);
    await q.runDueJobs();
    expect(calls).toBe(3);
    const row = await h.db.selectFrom('jobs').select(['state', 'last_error', 'attempts']).where('id', '=', id!).executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'failed', last_error: 'boom 3', attempts: 3 });
  });

  it('a job enqueued in a rolled-back transaction never runs', async () => {
    const clock = new ManualClock('2026-11-24T00:00:00Z');
    const q = new JobQueue({ db: h.db, clock, instanceId: 'tx' });
    let ran = 0;
    q.register('t.tx', async () => {
      ran++;
    });
    await expect(
      h.db.transaction().execute(async (trx) => {
        await q.enqueue(trx, 't.tx', {});
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await q.runDueJobs();
    expect(ran).toBe(0);
  });

  it('takes back the job of an instance that died holding it, once its lease runs out', async () => {
    const clock = new ManualClock('2026-11-24T00:00:00Z');
    const dead = new JobQueue({ db: h.db, clock, instanceId: 'dead', leaseMs: 60_000 });
    const alive = new JobQueue({ db: h.db, clock, instanceId: 'alive', leaseMs: 60_000 });
    let ranBy = '';
    dead.register('t.lease', () => new Promise<void>(() => {})); // never finishes: the process "dies"
    alive.register('t.lease', async () => {
      ranBy = 'alive';
    });
    const id = await dead.enqueue(h.db, 't.lease', {});
    void dead.runDueJobs(1);
    await new Promise((r) => setTimeout(r, 200));
    await alive.poll();
    expect(ranBy).toBe('');
    clock.advance(61_000);
    await alive.poll();
    expect(ranBy).toBe('alive');
    const row = await h.db.selectFrom('jobs').select(['state', 'attempts']).where('id', '=', id!).executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'completed', attempts: 2 });
  });
});

describe.skipIf(!postgresUrl)('two instances on one PostgreSQL database', () => {
  it('run a scheduled job exactly once per tick', async () => {
    const h = await openTestDatabase('postgres');
    const second = await openDatabase({ kind: 'postgres', url: h.url! });
    try {
      await sql`create table tick_runs (tick text not null, instance text not null)`.execute(h.db);
      const clock = new ManualClock('2026-11-24T00:00:00Z');
      const make = (db: typeof h.db, id: string) => {
        const q = new JobQueue({ db, clock, instanceId: id });
        q.register<{ scheduledFor: string }>('t.every-10s', async ({ payload, db: jobDb }) => {
          // A little work inside the job widens the window in which a second run could slip in.
          await new Promise((r) => setTimeout(r, 5));
          await sql`insert into tick_runs values (${payload.scheduledFor}, ${id})`.execute(jobDb);
        });
        q.schedule({ name: 't.every-10s', queue: 't.every-10s', everyMs: 10_000 });
        return q;
      };
      const a = make(h.db, 'instance-a');
      const b = make(second.db, 'instance-b');
      const ticks = 40;
      for (let i = 0; i < ticks; i++) {
        await Promise.all([a.poll(), b.poll(), a.poll(), b.poll()]);
        clock.advance(10_000);
      }
      const rows = (await sql<{ tick: string; n: string; instances: string }>`
        select tick, count(*) as n, string_agg(distinct instance, ',') as instances from tick_runs group by tick order by tick`.execute(h.db)).rows;
      expect(rows).toHaveLength(ticks);
      expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
      // Both instances took part: the work really was contended, not run by one side only.
      const byInstance = new Set(rows.map((r) => r.instances));
      expect(byInstance.size).toBe(2);
    } finally {
      await second.close();
      await h.close();
    }
  });
});
