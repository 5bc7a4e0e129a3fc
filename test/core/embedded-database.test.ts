import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, PGLITE_SHARED_BUFFERS } from '../../src/core/db/database.js';

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
    // Nothing of the build is left beside it.
    expect(fs.readdirSync(dir).sort()).toEqual(['pglite']);
    expect(fs.existsSync(path.join(dir, 'pglite', 'PG_VERSION'))).toBe(true);

    const again = await openDatabase({ kind: 'pglite', dataDir: dir });
    expect((await sql<{ v: string }>`select v from kept`.execute(again.db)).rows).toEqual([{ v: '保管' }]);
    await again.close();
  }, 60_000);

  it('refuses a directory that holds something other than a database, and leaves it as it was', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'pglite'));
    fs.writeFileSync(path.join(dir, 'pglite', 'notes.txt'), 'not a database');
    await expect(openDatabase({ kind: 'pglite', dataDir: dir })).rejects.toThrow(/neither empty nor an embedded database/);
    expect(fs.readdirSync(path.join(dir, 'pglite'))).toEqual(['notes.txt']);
    // The refusal let go of the directory's lock: nothing else is left behind.
    expect(fs.readdirSync(dir).sort()).toEqual(['pglite']);
  });
});
