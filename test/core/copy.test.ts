import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partAad, partKey } from '../../src/backup/catalog.js';
import { encryptBuffer } from '../../src/backup/crypto/index.js';
import { RECORD_COPY_COLUMNS, recordLineCopy, recordLineNdjson, type BackupManifest } from '../../src/backup/manifest.js';
import { RecordsPartReader } from '../../src/backup/records-part.js';
import { copyFrom, copyText } from '../../src/core/db/copy.js';
import { LocalDirectoryStore } from '../../src/storage/index.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../helpers/databases.js';

const TRICKY = { note: '改行\nタブ\t\\バックスラッシュ "引用"', ctl: '\u0001', nested: { a: [1, 2.5, null, true] } };

async function* lines(...chunks: string[]): AsyncGenerator<string> {
  for (const c of chunks) yield c;
}

describe.each(databaseKinds)('COPY FROM STDIN through Kysely on %s (decision 0024)', (kind) => {
  let h: TestDatabase;
  beforeAll(async () => {
    h = await openTestDatabase(kind, { migrate: false });
    await sql`create table copy_target (k text primary key, v integer not null, j jsonb not null)`.execute(h.db);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('loads text-format lines, escapes included, inside the caller’s transaction, and counts them', async () => {
    const json = JSON.stringify(TRICKY);
    const n = await h.db.transaction().execute(async (trx) => {
      const loaded = await copyFrom(trx, 'copy copy_target (k, v, j) from stdin', lines(`${copyText('a\tb')}\t1\t${copyText(json)}\n`, `c\\\\d\t2\t{}\n`, `e\t3\t[]\n`));
      // Visible to the same transaction at once.
      const seen = await sql<{ n: string }>`select count(*)::text as n from copy_target`.execute(trx);
      expect(seen.rows[0]!.n).toBe('3');
      return loaded;
    });
    expect(n).toBe(3);
    const rows = (await sql<{ k: string; j: unknown }>`select k, j from copy_target order by k`.execute(h.db)).rows;
    expect(rows.map((r) => r.k)).toEqual(['a\tb', 'c\\d', 'e']);
    expect(rows[0]!.j).toEqual(TRICKY);
  });

  it('a source that fails part-way aborts the COPY and the transaction: nothing of it is committed', async () => {
    async function* failing(): AsyncGenerator<string> {
      yield 'x1\t1\t{}\n';
      throw new Error('the backup part failed authentication');
    }
    await expect(h.db.transaction().execute((trx) => copyFrom(trx, 'copy copy_target (k, v, j) from stdin', failing()))).rejects.toThrow(/authentication/);
    const left = (await sql<{ n: string }>`select count(*)::text as n from copy_target where k = 'x1'`.execute(h.db)).rows[0]!.n;
    expect(left).toBe('0');
    // The connection is usable afterwards.
    expect((await sql<{ one: number }>`select 1 as one`.execute(h.db)).rows[0]!.one).toBe(1);
  });

  it('a malformed line is refused by the server with its reason, and nothing is loaded', async () => {
    await expect(h.db.transaction().execute((trx) => copyFrom(trx, 'copy copy_target (k, v, j) from stdin', lines('y1\tnot-a-number\t{}\n')))).rejects.toThrow(/integer/);
    expect((await sql<{ n: string }>`select count(*)::text as n from copy_target where k = 'y1'`.execute(h.db)).rows[0]!.n).toBe('0');
  });

  it('only COPY … FROM STDIN is accepted', async () => {
    await expect(copyFrom(h.db, 'delete from copy_target', lines())).rejects.toThrow(/COPY table/);
    await expect(copyFrom(h.db, "copy copy_target from '/etc/passwd'", lines())).rejects.toThrow(/COPY table/);
  });

  it('backups written in format 1 (NDJSON) still read as COPY lines, byte for byte what format 2 would hold', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-v1-'));
    try {
      const store = new LocalDirectoryStore({ root: dir });
      const key = randomBytes(32);
      const customerId = randomUUID();
      const backupId = randomUUID();
      const at = new Date('2026-11-20T01:02:03.456Z');
      const rows = [
        { c: 'residents', i: 'r-1', v: 2, d: JSON.stringify(TRICKY) },
        { c: 'residents', i: 'r-2', v: 1, d: '{"name": "山田 花子"}' },
      ];
      const plain = Buffer.from(rows.map((r) => recordLineNdjson(r.c, r.i, r.v, r.d, at, at)).join(''));
      const part = 'records.ndjson.gz.hkn';
      await store.put(partKey(customerId, backupId, part), encryptBuffer(key, gzipSync(plain), { aad: partAad(customerId, backupId, part) }));
      const manifest: BackupManifest = {
        format: 'hokan-backup/1',
        backupId,
        customerId,
        snapshotAt: at.toISOString(),
        keyFingerprint: 'test',
        records: { part, count: rows.length, collections: { residents: 2 }, plainBytes: plain.length, plainSha256: '' },
        files: [],
      };
      const reader = await RecordsPartReader.open(store, key, customerId, backupId, manifest);
      let copied = '';
      for await (const chunk of reader.copyChunks()) copied += chunk.toString();
      const read = await reader.finish();
      expect(read.lines).toBe(2);
      expect(copied).toBe(rows.map((r) => recordLineCopy(r.c, r.i, r.v, JSON.stringify(JSON.parse(r.d)), at, at, null)).join(''));
      const n = await h.db.transaction().execute(async (trx) => {
        await sql`create temporary table v1_records (collection text, id text, version integer, data jsonb, created_at timestamptz, updated_at timestamptz, data_digest uuid) on commit drop`.execute(trx);
        const loaded = await copyFrom(trx, `copy v1_records (${RECORD_COPY_COLUMNS}) from stdin`, lines(copied));
        const back = (await sql<{ data: unknown }>`select data from v1_records where id = 'r-1'`.execute(trx)).rows[0]!.data;
        expect(back).toEqual(TRICKY);
        return loaded;
      });
      expect(n).toBe(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
