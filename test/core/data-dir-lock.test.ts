import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
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

  it('a lock left by a process that is gone (killed) is taken over', async () => {
    const dir = path.join(base, 'stale');
    fs.mkdirSync(dir, { recursive: true });
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(gone.stdout.toString());
    fs.writeFileSync(path.join(dir, 'hokan.lock'), JSON.stringify({ pid: deadPid, host: os.hostname(), since: '2026-01-01T00:00:00.000Z', command: 'serve' }));
    const h = await openDatabase({ kind: 'pglite', dataDir: dir });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'hokan.lock'), 'utf8')).pid).toBe(process.pid);
    await h.close();
  });
});
