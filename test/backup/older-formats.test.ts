import { createHash, randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackup, partAad, partKey, partsOf, type BackupPart } from '../../src/backup/catalog.js';
import { decryptBuffer, encryptBuffer } from '../../src/backup/crypto/index.js';
import { restoreDrill } from '../../src/backup/drill.js';
import { customerDataKey } from '../../src/backup/keys.js';
import { RECORDS_PART, recordLineNdjson, type BackupFormat, type BackupManifest } from '../../src/backup/manifest.js';
import { restoreCustomer } from '../../src/backup/restore.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { readManifest, verifyBackup } from '../../src/backup/verify.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';
import { backupDepsFor } from '../helpers/backup.js';

/*
 * Backups outlive the code that wrote them (14 daily, 8 weekly generations): a backup written in
 * format 1 (NDJSON) or 2 (COPY lines without digests) must still verify, drill and restore, and a
 * restore from it must still leave identical rows alone (their digests are computed on the way).
 * The old-format backups are made here from a current one, re-encrypted under a new backup id,
 * exactly as the older code laid them out.
 */

const actor = systemActor('test restore of older formats');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Undoes copyText: the four escapes COPY's text format uses in hokan's lines. */
const copyUnescape = (v: string) => v.replace(/\\(\\|t|n|r)/g, (_m, c: string) => (c === '\\' ? '\\' : c === 't' ? '\t' : c === 'n' ? '\n' : '\r'));

function downgradeLines(plain: string, format: BackupFormat): string {
  const lines = plain.split('\n').filter((l) => l !== '');
  if (format === 'hokan-backup/3') return plain;
  if (format === 'hokan-backup/2') return lines.map((l) => `${l.slice(0, l.lastIndexOf('\t'))}\n`).join('');
  return lines
    .map((l) => {
      const [c, i, v, d, ca, ua] = l.split('\t') as [string, string, string, string, string, string];
      return recordLineNdjson(copyUnescape(c), copyUnescape(i), Number(v), copyUnescape(d), new Date(ca), new Date(ua));
    })
    .join('');
}

describe.each(databaseKinds)('R10.4 backups in older formats on %s', (kind) => {
  let app: TestApp & { filesDir: string };
  let deps: Awaited<ReturnType<typeof backupDepsFor>>;
  let customerId: string;
  let current: string;
  let copies = 0;

  const liveRows = async () =>
    (await sql<{ collection: string; id: string; version: number; data: unknown; xmin: string }>`select collection, id, version, data, xmin::text as xmin from data_records where customer_id = ${customerId} order by collection, id`.execute(app.ctx.db)).rows;

  /** A copy of backup `fromId` as the code of `format` wrote it (then `edit`ed), under a new id, later than every other. */
  async function olderFormatCopy(fromId: string, format: BackupFormat, edit: (plain: string) => string = (p) => p): Promise<string> {
    const store = deps.settings.primary!;
    const row = await getBackup(app.ctx.db, fromId);
    const { key } = await customerDataKey(app.ctx.db, app.clock, deps.settings.masterKey, deps.settings.masterKeyFingerprint, customerId);
    const manifest = await readManifest(store, row, key);
    const newId = randomUUID();
    const read = async (name: string) => {
      const chunks: Buffer[] = [];
      for await (const c of (await store.get(partKey(customerId, fromId, name))) as AsyncIterable<Buffer>) chunks.push(c);
      return decryptBuffer(key, Buffer.concat(chunks), { aad: partAad(customerId, fromId, name) });
    };
    const parts: BackupPart[] = [];
    const write = async (name: string, kindOf: BackupPart['kind'], plain: Buffer) => {
      const stored = encryptBuffer(key, plain, { aad: partAad(customerId, newId, name) });
      await store.put(partKey(customerId, newId, name), stored, { retainUntil: row.retain_until });
      parts.push({ name, kind: kindOf, size: stored.length, sha256: sha(stored) });
    };
    const records = Buffer.from(edit(downgradeLines(gunzipSync(await read(manifest.records.part)).toString('utf8'), format)));
    await write(RECORDS_PART[format], 'records', gzipSync(records));
    for (const f of manifest.files) await write(f.part, 'file', await read(f.part));
    const older: BackupManifest = { ...manifest, format, backupId: newId, records: { ...manifest.records, part: RECORDS_PART[format], plainBytes: records.length, plainSha256: sha(records) } };
    await write('manifest.json.hkn', 'manifest', Buffer.from(JSON.stringify(older)));
    const later = new Date(row.started_at.getTime() + 60_000 * ++copies);
    await app.ctx.db
      .insertInto('backups')
      .values({ ...row, plain_bytes: Number(row.plain_bytes), id: newId, started_at: later, finished_at: later, parts: JSON.stringify(parts), stored_bytes: parts.reduce((n, p) => n + p.size, 0), offsite_state: 'pending', offsite_copied_at: null })
      .execute();
    return newId;
  }

  beforeAll(async () => {
    app = await startTestApp(kind);
    deps = await backupDepsFor(app);
    customerId = (await addCustomerWithContract(app, 'ume')).customer.id;
    const rows = Array.from({ length: 1100 }, (_, i) => ({
      customer_id: customerId,
      collection: i % 2 === 0 ? 'vitals' : 'notes',
      id: `r-${String(i).padStart(5, '0')}`,
      version: 1,
      data: JSON.stringify({ n: i, text: i % 50 === 3 ? `改行\nタブ\t\\ "引用" ${i}` : `記録 ${i}`, list: [i, { deep: true }] }),
      created_at: app.clock.now(),
      updated_at: app.clock.now(),
    }));
    for (let i = 0; i < rows.length; i += 500) await app.ctx.db.insertInto('data_records').values(rows.slice(i, i + 500)).execute();
    current = (await runBackup(deps, customerId)).id;
  });
  afterAll(async () => {
    deps?.cleanup();
    await app?.close();
  });

  it.each(['hokan-backup/1', 'hokan-backup/2'] as const)('a %s backup verifies, drills, and restores only what differs', async (format) => {
    const before = await liveRows();
    const id = await olderFormatCopy(current, format);
    expect((await verifyBackup(deps, id)).ok).toBe(true);
    const drill = await restoreDrill(deps, customerId);
    expect(drill).toMatchObject({ backupId: id, ok: true, recordsSha256Matches: true, problems: [] });

    // Damage: one record changed behind hokan's back (same version), one deleted.
    await sql`update data_records set data = '{"ransom": true}'::jsonb where customer_id = ${customerId} and id = 'r-00003'`.execute(app.ctx.db);
    await sql`delete from data_records where customer_id = ${customerId} and id = 'r-00004'`.execute(app.ctx.db);
    const damaged = new Map((await liveRows()).map((r) => [r.id, r.xmin]));
    await restoreCustomer(deps, { backupId: id, actor });

    const after = await liveRows();
    expect(after.map(({ xmin: _x, ...r }) => r)).toEqual(before.map(({ xmin: _x, ...r }) => r));
    // Rows the backup holds byte for byte are the same tuples: the digests matched.
    const rewritten = after.filter((r) => damaged.get(r.id) !== r.xmin).map((r) => r.id);
    expect(rewritten.sort()).toEqual(['r-00003', 'r-00004']);
  });

  it('a backup whose digest disagrees with its record fails the drill (a restore from it would keep a row it should replace)', async () => {
    // The digest of r-00010 is replaced by r-00011's: the record's text is untouched.
    const id = await olderFormatCopy(current, 'hokan-backup/3', (plain) => {
      const lines = plain.split('\n');
      const digestOf = (id: string) => lines.find((l) => l.split('\t')[1] === id)!.split('\t')[6]!;
      const wrong = digestOf('r-00011');
      return lines.map((l) => (l.split('\t')[1] === 'r-00010' ? `${l.slice(0, l.lastIndexOf('\t'))}\t${wrong}` : l)).join('\n');
    });
    const drill = await restoreDrill(deps, customerId);
    expect(drill).toMatchObject({ backupId: id, ok: false, recordsSha256Matches: false });
    expect(drill?.problems).toContain('the records read back from the scratch copy do not hash to the source');
  });
});
