import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { copyFrom } from '../../src/core/db/copy.js';
import { lockDataDir } from '../../src/core/db/data-dir-lock.js';
import { migrate, openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { HokanError } from '../../src/core/errors.js';

/* The embedded database runs in a process of its own and is reached over IPC (decision 0029). */

const root = fileURLToPath(new URL('../..', import.meta.url));
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-embedded-process-'));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

/** Running, not merely unreaped: an orphan that has ended waits for init as a zombie. */
const running = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};
const until = async (what: string, ok: () => boolean, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
/** A fresh in-memory database for one test, closed after it whatever the outcome. */
async function withMemoryDatabase(test: (h: DatabaseHandle) => Promise<void>): Promise<void> {
  const h = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
  try {
    await test(h);
  } finally {
    await h.close();
  }
}
const databasePid = (h: DatabaseHandle) => {
  const pid = h.databasePid?.();
  if (pid === undefined) throw new Error('no database process');
  return pid;
};

describe('the embedded database process', () => {
  it('runs in a process of its own, and values come back as PGlite in-process gave them', async () => {
    await withMemoryDatabase(async (h) => {
      const pid = databasePid(h);
      expect(pid).not.toBe(process.pid);
      expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('pglite-host.mjs');
      await sql`create table kinds (d date, big int8, at timestamptz, doc jsonb, bytes bytea, tags text[], nothing text)`.execute(h.db);
      const at = new Date('2026-11-28T01:02:03.456Z');
      const bytes = Buffer.from([0, 1, 2, 250, 255]);
      await sql`insert into kinds values (${'2026-02-28'}, ${'9007199254740993'}, ${at}, ${JSON.stringify({ 記録: ['介護', 1] })}::jsonb, ${bytes}, ${['a', 'b\tc']}, ${null})`.execute(h.db);
      const row = (await sql<Record<string, unknown>>`select * from kinds`.execute(h.db)).rows[0]!;
      expect(row.d).toBe('2026-02-28');
      expect(row.big).toBe('9007199254740993');
      expect(row.at).toEqual(at);
      expect(row.doc).toEqual({ 記録: ['介護', 1] });
      expect(Buffer.from(row.bytes as Uint8Array).equals(bytes)).toBe(true);
      expect(row.tags).toEqual(['a', 'b\tc']);
      expect(row.nothing).toBeNull();
      const updated = await h.db.executeQuery(sql`update kinds set nothing = 'x'`.compile(h.db));
      expect(updated.numAffectedRows).toBe(1n);
    });
  }, 60_000);

  it('a long statement does not stop this process: timers fire on time while it runs', async () => {
    await withMemoryDatabase(async (h) => {
      const long = sql`select pg_sleep(1.5)`.execute(h.db);
      const started = performance.now();
      const late: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 50));
        late.push(performance.now() - t - 50);
      }
      await long;
      // In-process PGlite held the thread for the whole 1.5 s; the first timer would have been that late.
      expect(Math.max(...late)).toBeLessThan(400);
      expect(performance.now() - started).toBeGreaterThanOrEqual(1_400);
    });
  }, 60_000);

  it("starts an in-memory database from a saved template: the tests' migrated start is the migrations' result", async () => {
    const fresh = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
    const file = path.join(base, 'template.tar.gz');
    try {
      await migrate(fresh.db);
      await fresh.saveEmbeddedTemplate!(file);
    } finally {
      await fresh.close();
    }
    // Columns, indexes, constraints and triggers: the whole schema the migrations make.
    const schema = async (h: DatabaseHandle) => [
      ...(await sql<{ t: string }>`select table_name || '.' || column_name || ':' || data_type || ':' || coalesce(column_default, '') || ':' || is_nullable as t from information_schema.columns where table_schema = 'public' order by 1`.execute(h.db)).rows,
      ...(await sql<{ t: string }>`select indexdef as t from pg_indexes where schemaname = 'public' order by 1`.execute(h.db)).rows,
      ...(await sql<{ t: string }>`select conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid) as t from pg_constraint where connamespace = 'public'::regnamespace order by 1`.execute(h.db)).rows,
      ...(await sql<{ t: string }>`select tgrelid::regclass::text || ':' || tgname as t from pg_trigger where not tgisinternal order by 1`.execute(h.db)).rows,
    ].map((x) => x.t);
    const fromTemplate = await openDatabase({ kind: 'pglite', dataDir: 'memory', template: file });
    const migratedHere = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
    try {
      await migrate(migratedHere.db);
      const applied = (h: DatabaseHandle) => sql<{ name: string }>`select name from hokan_migrations order by name`.execute(h.db).then((r) => r.rows.map((x) => x.name));
      expect(await applied(fromTemplate)).toEqual(await applied(migratedHere));
      const expected = await schema(migratedHere);
      expect(expected.length).toBeGreaterThan(100);
      expect(await schema(fromTemplate)).toEqual(expected);
      // Migrating it again finds nothing to do.
      await migrate(fromTemplate.db);
      expect((await sql<{ s: string }>`select current_setting('shared_buffers') as s`.execute(fromTemplate.db)).rows[0]?.s).toBe('32MB');
    } finally {
      await fromTemplate.close();
      await migratedHere.close();
    }
  }, 60_000);

  it("reports PostgreSQL's errors with their SQLSTATE, constraint and detail, and the session goes on", async () => {
    await withMemoryDatabase(async (h) => {
      await sql`create table uniq (k text constraint uniq_k primary key)`.execute(h.db);
      await sql`insert into uniq values ('a')`.execute(h.db);
      const err = await sql`insert into uniq values ('a')`.execute(h.db).then(
        () => null,
        (e: unknown) => e as Error & { code?: string; constraint?: string; detail?: string },
      );
      expect(err).toBeInstanceOf(Error);
      expect(err?.code).toBe('23505');
      expect(err?.constraint).toBe('uniq_k');
      expect(err?.detail).toMatch(/\(k\)=\(a\) already exists/);
      await expect(h.db.transaction().execute(async (trx) => {
        await sql`insert into uniq values ('b')`.execute(trx);
        await sql`select 1/0`.execute(trx);
      })).rejects.toMatchObject({ code: '22012' });
      expect((await sql<{ k: string }>`select k from uniq order by k`.execute(h.db)).rows).toEqual([{ k: 'a' }]);
    });
  }, 60_000);

  it('loads a COPY of several pieces, and a source failing part-way inside a transaction leaves nothing', async () => {
    await withMemoryDatabase(async (h) => {
      await sql`create table lines (n int, t text)`.execute(h.db);
      // ~20 MB: three pieces of the 8 MB each that is sent at a time.
      const filler = 'x'.repeat(200);
      const total = 100_000;
      async function* lines(failAt?: number) {
        for (let i = 0; i < total; i += 1000) {
          if (failAt !== undefined && i >= failAt) throw new Error('source broke');
          let chunk = '';
          for (let j = i; j < i + 1000; j++) chunk += `${j}\t${filler}\n`;
          yield Buffer.from(chunk);
        }
      }
      expect(await copyFrom(h.db, 'copy lines (n, t) from stdin', lines())).toBe(total);
      const sums = (await sql<{ c: string; s: string }>`select count(*)::text as c, sum(n)::text as s from lines`.execute(h.db)).rows[0];
      expect(sums).toEqual({ c: String(total), s: String((total * (total - 1)) / 2) });

      await expect(h.db.transaction().execute(async (trx) => {
        await copyFrom(trx, 'copy lines (n, t) from stdin', lines(90_000));
      })).rejects.toThrow('source broke');
      expect((await sql<{ c: string }>`select count(*)::text as c from lines`.execute(h.db)).rows[0]?.c).toBe(String(total));
    });
  }, 120_000);

  it('opened and closed without a statement: the database process has ended before the lock is let go', async () => {
    const dir = path.join(base, 'unused');
    const h = await openDatabase({ kind: 'pglite', dataDir: dir });
    const pid = databasePid(h);
    await h.close();
    expect(running(pid)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'hokan.lock'))).toBe(false);
  }, 60_000);

  it('ended under a transaction: the transaction fails and never commits; the next statement starts it again, committed data kept', async () => {
    const dir = path.join(base, 'crash');
    const h = await openDatabase({ kind: 'pglite', dataDir: dir });
    try {
      await sql`create table kept (v text)`.execute(h.db);
      await sql`insert into kept values ('committed')`.execute(h.db);
      const first = databasePid(h);
      const outcome = h.db.transaction().execute(async (trx) => {
        await sql`insert into kept values ('lost')`.execute(trx);
        process.kill(first, 'SIGKILL');
        await until('the database process to end', () => !running(first));
        await new Promise((r) => setTimeout(r, 100));
        await sql`insert into kept values ('after')`.execute(trx);
      });
      await expect(outcome).rejects.toMatchObject({ code: '08006' });
      expect(h.health.up).toBe(false);
      const rows = (await sql<{ v: string }>`select v from kept order by v`.execute(h.db)).rows;
      expect(rows).toEqual([{ v: 'committed' }]);
      const second = databasePid(h);
      expect(second).not.toBe(first);
      // The lock names the new process as its helper.
      const lock = JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8')) as { helpers: Array<{ pid: number }> };
      expect(lock.helpers.map((x) => x.pid)).toContain(second);
    } finally {
      await h.close();
    }
  }, 120_000);

  it('outlives its killed parent only to close: the directory stays locked until it has, then opens with the data', async () => {
    const dir = path.join(base, 'orphan');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/embedded-holder.ts', dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    try {
      await until(`the holder to start (${err})`, () => /holding \d+ \d+\n/.test(out), 60_000);
      const [, parentPid, dbPid] = /holding (\d+) (\d+)/.exec(out)!.map(Number);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8')).helpers[0].pid).toBe(dbPid);
      // Stop the database process so its parent's death is seen while it is still there.
      process.kill(dbPid!, 'SIGSTOP');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      expect(running(parentPid!)).toBe(false);
      // The holder is gone but the process writing the directory is not: refused, not taken over.
      expect(() => lockDataDir(dir)).toThrow(HokanError);
      process.kill(dbPid!, 'SIGCONT');
      // It closes on its own; openDatabase waits for that instead of refusing.
      const again = await openDatabase({ kind: 'pglite', dataDir: dir });
      expect(running(dbPid!)).toBe(false);
      expect((await sql<{ v: string }>`select v from held`.execute(again.db)).rows).toEqual([{ v: 'before the kill' }]);
      await again.close();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
