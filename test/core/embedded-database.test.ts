import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { initEmbeddedDataDir, openDatabase, PGLITE_SHARED_BUFFERS } from '../../src/core/db/database.js';

/* The embedded database's data directory: made by a child process, renamed into place (decision 0028). */

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-embedded-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('the embedded database directory', () => {
  it('is created on first open, keeps its data across opens, and runs with the embedded shared buffers', async () => {
    const dir = tempDir();
    const first = await openDatabase({ kind: 'pglite', dataDir: dir });
    await sql`create table kept (v text)`.execute(first.db);
    await sql`insert into kept values ('保管')`.execute(first.db);
    const settings = (await sql<{ shared_buffers: string }>`show shared_buffers`.execute(first.db)).rows[0];
    await first.close();
    expect(settings?.shared_buffers).toBe(PGLITE_SHARED_BUFFERS);
    // Nothing of the build is left beside it or in it.
    expect(fs.readdirSync(dir).sort()).toEqual(['pglite']);
    expect(fs.readdirSync(path.join(dir, 'pglite')).filter((e) => e.startsWith('.initdb-'))).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'pglite', 'PG_VERSION'))).toBe(true);

    const again = await openDatabase({ kind: 'pglite', dataDir: dir });
    expect((await sql<{ v: string }>`select v from kept`.execute(again.db)).rows).toEqual([{ v: '保管' }]);
    await again.close();
  }, 60_000);

  it('is built by the child process: a failing build is reported with its output and leaves the directory empty', async () => {
    const dir = tempDir();
    const script = path.join(dir, 'failing-initdb.mjs');
    fs.writeFileSync(script, "import fs from 'node:fs'; fs.mkdirSync(process.argv[2]); fs.writeFileSync(process.argv[2] + '/half', 'x'); process.stderr.write('initdb: disk full'); process.exit(1);\n");
    const target = path.join(dir, 'pglite');
    await expect(initEmbeddedDataDir(target, script)).rejects.toThrow(/creating the embedded database in .*pglite failed: initdb: disk full/);
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('keeps a symlinked data directory where it points, and removes what a killed build left', async () => {
    const dir = tempDir();
    const elsewhere = tempDir();
    fs.mkdirSync(path.join(elsewhere, '.initdb-deadbeef'));
    fs.writeFileSync(path.join(elsewhere, '.initdb-deadbeef', 'PG_VERSION'), '18');
    fs.symlinkSync(elsewhere, path.join(dir, 'pglite'));
    const h = await openDatabase({ kind: 'pglite', dataDir: dir });
    await h.close();
    expect(fs.lstatSync(path.join(dir, 'pglite')).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(path.join(elsewhere, 'PG_VERSION'))).toBe(true);
    expect(fs.existsSync(path.join(elsewhere, '.initdb-deadbeef'))).toBe(false);
  }, 60_000);

  it('is built under the lock: a second opening while the first builds is refused', async () => {
    const dir = tempDir();
    const [a, b] = await Promise.allSettled([openDatabase({ kind: 'pglite', dataDir: dir }), openDatabase({ kind: 'pglite', dataDir: dir })]);
    const opened = [a, b].filter((r) => r.status === 'fulfilled');
    const refused = [a, b].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(opened).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(String(refused[0]!.reason)).toMatch(/hokan\.lock|in use|使用中/);
    for (const r of opened) if (r.status === 'fulfilled') await r.value.close();
  }, 60_000);

  it('refuses a directory that holds something other than a database, and leaves it as it was', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'pglite'));
    fs.writeFileSync(path.join(dir, 'pglite', 'notes.txt'), 'not a database');
    await expect(openDatabase({ kind: 'pglite', dataDir: dir })).rejects.toThrow(/HOKAN_DATA_DIR: .* is neither empty nor an embedded database/);
    expect(fs.readdirSync(path.join(dir, 'pglite'))).toEqual(['notes.txt']);
    // The refusal let go of the directory's lock: nothing else is left behind.
    expect(fs.readdirSync(dir).sort()).toEqual(['pglite']);
  });

  it('refuses a data directory that is a file', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'pglite'), 'a file');
    await expect(openDatabase({ kind: 'pglite', dataDir: dir })).rejects.toThrow(/HOKAN_DATA_DIR: .* is not a directory/);
  });
});
