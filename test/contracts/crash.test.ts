import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createContract, findContract } from '../../src/contracts/contracts.js';
import { createCustomer } from '../../src/contracts/customers.js';
import { AUDIT_CHAIN_LOCK, listAudit, systemActor, verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { systemClock } from '../../src/core/clock.js';
import { migrate, openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { createPostgresDatabase, dropPostgresDatabase, postgresUrl } from '../helpers/databases.js';

const root = path.resolve(import.meta.dirname, '../..');

function startLoop(target: string, contractId: string, count: number): { child: ChildProcess; committed: () => number; waitFor: (re: RegExp) => Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/transition-loop.ts', target, contractId, String(count)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    committed: () => (out.match(/committed (\d+)/g) ?? []).length,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child never printed ${re}; stdout: ${out.slice(-500)} stderr: ${err.slice(-2000)}`)), 60_000);
        const check = () => {
          if (re.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        };
        waiters.push(check);
        check();
        void exited.then(() => setTimeout(check, 10));
      }),
  };
}

async function seedContract(h: DatabaseHandle): Promise<string> {
  const actor = systemActor('crash test');
  const customer = await createCustomer(h.db, systemClock, actor, { code: `crash${Date.now()}`, name: 'クラッシュ試験', contactEmail: 'c@example.jp' });
  const row = await createContract(h.db, systemClock, actor, {
    customerId: customer.id, contractNumber: `CR-${Date.now()}`, termStart: '2026-01-01', termEnd: '2030-12-31', monthlyFeeYen: 1, systemUseContractNumber: 'SU', supportContractNumber: 'SP',
  });
  return row.id;
}

/** Old state or new state, never a mix: the row, its version and its audit trail agree. */
async function expectConsistent(h: DatabaseHandle, contractId: string, committedAtLeast: number): Promise<number> {
  const row = await findContract(h.db, contractId);
  const trail = (await listAudit(h.db, { subjectType: 'contract', subjectId: contractId, limit: 1000 })).filter((e) => e.action !== 'contract.created');
  expect(row).toBeDefined();
  expect(row!.version - 1).toBe(trail.length);
  expect(trail.length).toBeGreaterThanOrEqual(committedAtLeast);
  expect(trail.length).toBeLessThanOrEqual(committedAtLeast + 1);
  const expected = trail.length % 2 === 1 ? 'suspended' : 'active';
  expect(row!.status).toBe(expected);
  expect(row!.suspension_reason === null).toBe(expected === 'active');
  if (trail.length > 0) expect(trail.at(-1)!.details.to).toBe(expected);
  expect((await verifyAuditChain(h.db)).ok).toBe(true);
  return trail.length;
}

describe('SIGKILL in the middle of contract transitions (real child process)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  async function killRepeatedly(target: string, open: () => Promise<DatabaseHandle>) {
    let h = await open();
    await migrate(h.db);
    const contractId = await seedContract(h);
    await h.close();
    let total = 0;
    for (const after of [3, 11, 7]) {
      const loop = startLoop(target, contractId, 100_000);
      await loop.waitFor(new RegExp(`committed ${after}\\n`));
      loop.child.kill('SIGKILL');
      await loop.exited;
      h = await open();
      total = await expectConsistent(h, contractId, total + loop.committed());
      await h.close();
    }
  }

  it('PGlite data directory: after each kill the contract is in the old state or the new, never a mix', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-crash-'));
    dirs.push(dir);
    await killRepeatedly(dir, () => openDatabase({ kind: 'pglite', dataDir: dir }));
  });

  it.skipIf(!postgresUrl)('PostgreSQL: after each kill the contract is in the old state or the new, never a mix', async () => {
    const url = await createPostgresDatabase();
    try {
      await killRepeatedly(url, () => openDatabase({ kind: 'postgres', url }));
    } finally {
      await dropPostgresDatabase(url);
    }
  });

  it.skipIf(!postgresUrl)('PostgreSQL: killed while holding the row and waiting to write the audit entry, nothing of the change remains', async () => {
    const url = await createPostgresDatabase();
    const h = await openDatabase({ kind: 'postgres', url });
    const blocker = new pg.Client({ connectionString: url });
    try {
      await migrate(h.db);
      const contractId = await seedContract(h);
      await blocker.connect();
      // Hold the audit chain lock: the child updates the contract row, then waits for this lock.
      await blocker.query('begin');
      await blocker.query('select pg_advisory_xact_lock($1)', [AUDIT_CHAIN_LOCK]);
      const loop = startLoop(url, contractId, 1);
      await loop.waitFor(/ready\n/);
      // Wait until the child's transaction really sits inside the transition, blocked on the lock.
      for (let i = 0; i < 200; i++) {
        const r = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%pg_advisory_xact_lock%' and datname = current_database()`.execute(h.db);
        if (Number(r.rows[0]!.n) > 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const inTx = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where state = 'active' and wait_event_type = 'Lock' and datname = current_database()`.execute(h.db);
      expect(Number(inTx.rows[0]!.n)).toBe(1);
      loop.child.kill('SIGKILL');
      await loop.exited;
      await blocker.query('rollback');
      // The server notices the dead client and rolls its transaction back.
      for (let i = 0; i < 100; i++) {
        const r = await sql<{ n: string }>`select count(*) as n from pg_stat_activity where datname = current_database() and application_name = '' and state like 'idle in transaction%'`.execute(h.db);
        if (Number(r.rows[0]!.n) === 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const row = await findContract(h.db, contractId);
      expect(row).toMatchObject({ status: 'active', version: 1, suspension_reason: null });
      expect(await expectConsistent(h, contractId, 0)).toBe(0);

      // The same transition, not interrupted, commits whole.
      const again = startLoop(url, contractId, 1);
      expect(await again.exited).toBe(0);
      expect(await expectConsistent(h, contractId, 1)).toBe(1);
    } finally {
      await blocker.end().catch(() => {});
      await h.close();
      await dropPostgresDatabase(url);
    }
  });
});
