import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireDataDirLock, lockDataDir, STALE_AFTER_MS } from '../../src/core/db/data-dir-lock.js';
import { openDatabase } from '../../src/core/db/database.js';
import { HokanError } from '../../src/core/errors.js';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-lock-'));
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe('the embedded database opens in one process at a time', () => {
  it('a second opening of a data directory in use is refused, naming the holder; after close it opens', async () => {
    const dir = path.join(base, 'one');
    const first = await openDatabase({ kind: 'pglite', dataDir: dir });
    const lock = JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8'));
    expect(lock.pid).toBe(process.pid);
    const refused = await openDatabase({ kind: 'pglite', dataDir: dir }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(HokanError);
    expect((refused as HokanError).code).toBe('conflict');
    expect((refused as HokanError).messages.en).toContain(`in use by process ${process.pid}`);
    expect((refused as HokanError).messages.ja).toContain('別のプロセスが使用中');
    // The refused opening left the holder's lock (and its database) alone.
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8')).since).toBe(lock.since);
    expect((await sql<{ one: number }>`select 1 as one`.execute(first.db)).rows).toEqual([{ one: 1 }]);
    await first.close();
    expect(fs.existsSync(path.join(dir, 'hokan.lock'))).toBe(false);
    const again = await openDatabase({ kind: 'pglite', dataDir: dir });
    await again.close();
  });

  const bootId = () => {
    try {
      return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return null;
    }
  };
  const writeLock = (dir: string, record: Record<string, unknown>, ageMs = 0) => {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'hokan.lock');
    fs.writeFileSync(file, JSON.stringify({ host: os.hostname(), bootId: bootId(), startTicks: null, nonce: 'earlier', since: '2026-01-01T00:00:00.000Z', command: 'serve', ...record }));
    const at = new Date(Date.now() - ageMs);
    fs.utimesSync(file, at, at);
  };
  const takesOver = async (dir: string) => {
    const h = await openDatabase({ kind: 'pglite', dataDir: dir });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8')).pid).toBe(process.pid);
    await h.close();
  };

  it('a lock left by a process that is gone (killed) is taken over', async () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const dir = path.join(base, 'stale');
    writeLock(dir, { pid: Number(gone.stdout.toString()) });
    await takesOver(dir);
  });

  it('a gone holder whose database process still runs is waited for, not taken over; a gone helper does not hold it', async () => {
    const gone = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
    const dir = path.join(base, 'helper');
    // The helper is a process that runs (this one), as an orphaned database process still closing would.
    writeLock(dir, { pid: gone, helpers: [{ pid: process.pid, startTicks: null }] });
    expect(() => lockDataDir(dir)).toThrow(HokanError);
    expect(() => lockDataDir(dir)).toThrow(`its database process (${process.pid}) is still closing`);
    const waited = Date.now();
    await expect(acquireDataDirLock(dir, { waitMs: 300 })).rejects.toThrow(HokanError);
    expect(Date.now() - waited).toBeGreaterThanOrEqual(300);
    // However long its heartbeat has stopped: a gone holder's database process may be in a long statement.
    writeLock(dir, { pid: gone, helpers: [{ pid: process.pid, startTicks: null }] }, STALE_AFTER_MS + 5_000);
    expect(() => lockDataDir(dir)).toThrow(HokanError);
    writeLock(dir, { pid: gone, helpers: [{ pid: gone, startTicks: null }] });
    await takesOver(dir);
    // A hand-edited helpers entry names no process: the gone holder's lock is taken over, not a crash.
    writeLock(dir, { pid: gone, helpers: 'the server' });
    await takesOver(dir);
    writeLock(dir, { pid: gone, helpers: [{ pid: 'x' }, null, 7] });
    await takesOver(dir);
  });

  it('a lock with this very pid from an earlier process (a container restarted as pid 1) is taken over', async () => {
    const dir = path.join(base, 'same-pid');
    writeLock(dir, { pid: process.pid, startTicks: '1' });
    await takesOver(dir);
  });

  it('a lock from another host is honoured while its holder refreshes it, and taken over once it stops', async () => {
    const dir = path.join(base, 'other-host');
    writeLock(dir, { pid: 1, host: 'another-container' });
    const refused = await openDatabase({ kind: 'pglite', dataDir: dir }).then(
      () => null,
      (err: unknown) => err,
    );
    expect((refused as HokanError).messages.en).toContain('in use by process 1 on another-container');
    expect((refused as HokanError).messages.en).toContain(`expires ${Math.round(STALE_AFTER_MS / 1000)} s after its last heartbeat`);
    writeLock(dir, { pid: 1, host: 'another-container' }, STALE_AFTER_MS + 5_000);
    await takesOver(dir);
  });

  it('the heartbeat goes on while the main thread is blocked (a long synchronous stretch)', async () => {
    const dir = path.join(base, 'blocked');
    fs.mkdirSync(dir, { recursive: true });
    const lock = lockDataDir(dir, { heartbeatMs: 50 });
    try {
      // Let the heartbeat's thread start, then make the lock look old.
      await new Promise((r) => setTimeout(r, 500));
      const past = new Date(Date.now() - 60_000);
      fs.utimesSync(lock.path, past, past);
      const blockedAt = Date.now();
      // A statement that holds the main thread for a second: no timer of this thread can run.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000);
      expect(fs.statSync(lock.path).mtimeMs).toBeGreaterThanOrEqual(blockedAt - 1_000);
      expect(fs.statSync(lock.path).mtimeMs).toBeGreaterThan(past.getTime() + 50_000);
    } finally {
      lock.release();
    }
    expect(fs.existsSync(path.join(dir, 'hokan.lock'))).toBe(false);
  });

  it("closing twice releases once: a later holder's lock stays", async () => {
    const dir = path.join(base, 'twice');
    const first = await openDatabase({ kind: 'pglite', dataDir: dir });
    await first.close();
    const second = await openDatabase({ kind: 'pglite', dataDir: dir });
    await first.close().catch(() => {});
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8')).pid).toBe(process.pid);
    await expect(openDatabase({ kind: 'pglite', dataDir: dir })).rejects.toBeInstanceOf(HokanError);
    await second.close();
    expect(fs.existsSync(path.join(dir, 'hokan.lock'))).toBe(false);
  });
});
