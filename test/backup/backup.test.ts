import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackup, partKey, partsOf } from '../../src/backup/catalog.js';
import { destroyCustomerKey } from '../../src/backup/keys.js';
import { restoreCustomer, RestoreStoppedError } from '../../src/backup/restore.js';
import { runBackup, type BackupDeps } from '../../src/backup/run-backup.js';
import { loadBackupSettings } from '../../src/backup/settings.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { systemActor, verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { searchDataAccess } from '../../src/data/access-log.js';
import { BlobRetainedError, S3Store } from '../../src/storage/index.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';
import { backupDepsFor } from '../helpers/backup.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const actor = systemActor('test restore');

/** Damages a stored backup part in place (made writable first): one bit in its middle. */
function flipMiddleBit(file: string, bytes: Buffer): void {
  fs.chmodSync(file, 0o644);
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
  fs.writeFileSync(file, flipped);
}

describe.each(databaseKinds)('R10.1–R10.4 backups on %s', (kind) => {
  let app: TestApp & { filesDir: string };
  let deps: Awaited<ReturnType<typeof backupDepsFor>>;
  let customerId: string;
  let token: string;
  const files: Array<{ id: string; body: Buffer }> = [];

  const snapshotOfLiveData = async () => {
    const records = await app.ctx.db.selectFrom('data_records').select(['collection', 'id', 'version', 'data']).where('customer_id', '=', customerId).orderBy('collection').orderBy('id').execute();
    const fileRows = await app.ctx.db.selectFrom('data_files').select(['id', 'name', 'sha256', 'size']).where('customer_id', '=', customerId).orderBy('id').execute();
    return { records, files: fileRows };
  };

  beforeAll(async () => {
    app = await startTestApp(kind);
    deps = await backupDepsFor(app);
    const c = await addCustomerWithContract(app, 'kiku');
    customerId = c.customer.id;
    await addCustomerUser(app, customerId, 'kiku-admin', 'customer_admin');
    const cookie = await app.signIn('kiku-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie, payload: { name: 'sw' } })).json().token;
    // More records than one page of the snapshot reader, in two collections, with Japanese text.
    const rows = Array.from({ length: 1205 }, (_, i) => ({ customer_id: customerId, collection: i % 3 === 0 ? 'care-notes' : 'residents', id: `id-${String(i).padStart(5, '0')}`, version: 1, data: JSON.stringify({ n: i, note: i % 100 === 7 ? `改行\nタブ\t\\バックスラッシュ "引用" \u0001 ${i}` : `バイタル正常 ${i}`, nested: { a: [1, 2, 3] } }), created_at: app.clock.now(), updated_at: app.clock.now() }));
    for (let i = 0; i < rows.length; i += 400) await app.ctx.db.insertInto('data_records').values(rows.slice(i, i + 400)).execute();
    for (const size of [0, 1000, 300_000]) {
      const body = randomBytes(size);
      const res = await app.request({ method: 'POST', url: `/api/v1/data/files?name=f${size}.bin`, token, headers: { 'content-type': 'application/octet-stream' }, payload: body });
      files.push({ id: res.json().file.id, body });
    }
  });
  afterAll(async () => {
    deps?.cleanup();
    await app?.close();
  });

  let backupId: string;
  let original: Awaited<ReturnType<typeof snapshotOfLiveData>>;

  it('R10.1 backs a customer up: records from one snapshot and every file, encrypted, catalogued as good', async () => {
    original = await snapshotOfLiveData();
    const row = await runBackup(deps, customerId);
    backupId = row.id;
    expect(row).toMatchObject({ state: 'good', snapshot_records: 1205, snapshot_files: 3, generation: 'weekly' });
    const parts = partsOf(row);
    expect(parts.map((p) => p.kind).sort()).toEqual(['file', 'file', 'file', 'manifest', 'records']);
    // Nothing readable lies in the target: no record text, no file bytes.
    const primaryDir = deps.dirs[0]!;
    for (const p of parts) {
      const stored = fs.readFileSync(path.join(primaryDir, partKey(customerId, backupId, p.name)));
      expect(stored.subarray(0, 8).toString('latin1')).toBe('HKNBAK1\0');
      expect(stored.includes(Buffer.from('バイタル'))).toBe(false);
      expect(sha(stored)).toBe(p.sha256);
    }
    const second = await runBackup(deps, customerId);
    expect(second.generation).toBe('daily');
  });

  it('verify re-reads, checks every checksum and decrypts', async () => {
    const r = await verifyBackup(deps, backupId);
    expect(r).toMatchObject({ ok: true, partsChecked: 5, records: 1205, files: 3, problems: [] });
  });

  it('R10.4 restores the customer exactly as backed up, atomically, with progress', async () => {
    await app.ctx.db.updateTable('data_records').set({ data: JSON.stringify({ broken: true }), version: 9 }).where('customer_id', '=', customerId).where('collection', '=', 'residents').execute();
    await app.ctx.db.deleteFrom('data_records').where('customer_id', '=', customerId).where('collection', '=', 'care-notes').execute();
    await app.request({ method: 'DELETE', url: `/api/v1/data/files/${files[1]!.id}`, token });
    await app.request({ method: 'POST', url: '/api/v1/data/files?name=later.bin', token, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('added after the backup') });
    const phases = new Set<string>();
    const result = await restoreCustomer({ ...deps }, { backupId, actor, onProgress: (p) => phases.add(p.phase) });
    expect(result).toMatchObject({ records: 1205, files: 3 });
    expect([...phases]).toEqual(['manifest', 'records', 'files', 'cleanup', 'done']);
    const now = await snapshotOfLiveData();
    expect(now).toEqual(original);
    for (const f of files) {
      const res = await app.request({ method: 'GET', url: `/api/v1/data/files/${f.id}/content`, token });
      expect(res.statusCode).toBe(200);
      expect(sha(res.rawPayload)).toBe(sha(f.body));
    }
    const stored: string[] = [];
    for await (const b of app.ctx.files.list(`customers/${customerId}/files/`)) stored.push(b.key);
    expect(stored).toHaveLength(3);
    expect((await searchDataAccess(app.ctx.db, { customerId, operation: 'restore' })).length).toBe(1);
    expect((await verifyAuditChain(app.ctx.db)).ok).toBe(true);
  });

  it('R10.4 a restore puts back a record changed behind hokan (same version and times) and leaves identical rows as they are', async () => {
    const rowVersions = async () =>
      new Map(
        (await sql<{ id: string; xmin: string }>`select id, xmin::text as xmin from data_records where customer_id = ${customerId} and collection = 'residents' and id in ('id-00001', 'id-00002')`.execute(app.ctx.db)).rows.map((r) => [r.id, r.xmin]),
      );
    await sql`update data_records set data = '{"ransom": "pay up"}'::jsonb where customer_id = ${customerId} and collection = 'residents' and id = 'id-00001'`.execute(app.ctx.db);
    const before = await rowVersions();
    await restoreCustomer(deps, { backupId, actor });
    expect(await snapshotOfLiveData()).toEqual(original);
    const after = await rowVersions();
    expect(after.get('id-00001')).not.toBe(before.get('id-00001'));
    // The unchanged row is the same tuple: only what differs is rewritten.
    expect(after.get('id-00002')).toBe(before.get('id-00002'));
  });

  it('R10.4 a live file whose bytes were changed behind hokan is put back from the backup; intact files stay where they are', async () => {
    const keyOf = async (id: string) => (await app.ctx.db.selectFrom('data_files').select('blob_key').where('customer_id', '=', customerId).where('id', '=', id).executeTakeFirstOrThrow()).blob_key;
    const tampered = files[2]!;
    const intact = files[1]!;
    const tamperedKey = await keyOf(tampered.id);
    const intactKey = await keyOf(intact.id);
    const onDisk = path.join(app.filesDir, tamperedKey);
    fs.chmodSync(onDisk, 0o600);
    fs.writeFileSync(onDisk, randomBytes(tampered.body.length));
    await restoreCustomer(deps, { backupId, actor });
    expect(await snapshotOfLiveData()).toEqual(original);
    expect(await keyOf(intact.id)).toBe(intactKey);
    expect(await keyOf(tampered.id)).not.toBe(tamperedKey);
    for (const f of files) {
      const res = await app.request({ method: 'GET', url: `/api/v1/data/files/${f.id}/content`, token });
      expect(sha(res.rawPayload)).toBe(sha(f.body));
    }
    const stored: string[] = [];
    for await (const b of app.ctx.files.list(`customers/${customerId}/files/`)) stored.push(b.key);
    expect(stored.sort()).toEqual((await Promise.all(files.map((f) => keyOf(f.id)))).sort());
  });

  it('R10.4 a restore stopped by its signal part-way (a shutdown) changes nothing and leaves no staged copies', async () => {
    await sql`update data_records set data = '{"ransom": "pay up"}'::jsonb where customer_id = ${customerId} and collection = 'residents' and id = 'id-00004'`.execute(app.ctx.db);
    await app.ctx.db.deleteFrom('data_files').where('customer_id', '=', customerId).where('id', '=', files[0]!.id).execute();
    const blobs = async () => {
      const keys: string[] = [];
      for await (const b of app.ctx.files.list(`customers/${customerId}/files/`)) keys.push(b.key);
      return keys.sort();
    };
    const before = await snapshotOfLiveData();
    const blobsBefore = await blobs();
    const stop = new AbortController();
    // Stopped once the records are in the transaction and the files are about to be staged.
    const stopped = restoreCustomer(deps, { backupId, actor, signal: stop.signal, onProgress: (p) => p.phase === 'files' && stop.abort() });
    await expect(stopped).rejects.toBeInstanceOf(RestoreStoppedError);
    expect(await snapshotOfLiveData()).toEqual(before);
    expect(await blobs()).toEqual(blobsBefore);
    await expect(restoreCustomer(deps, { backupId, actor, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(RestoreStoppedError);
    await restoreCustomer(deps, { backupId, actor });
    expect(await snapshotOfLiveData()).toEqual(original);
  });

  it('a backup cannot be deleted or rewritten through hokan before it expires', async () => {
    const row = await getBackup(app.ctx.db, backupId);
    const key = partKey(customerId, backupId, partsOf(row)[0]!.name);
    await expect(deps.settings.primary!.delete(key, app.clock.now())).rejects.toBeInstanceOf(BlobRetainedError);
    await expect(deps.settings.primary!.put(key, Buffer.from('ransom'))).rejects.toBeInstanceOf(BlobRetainedError);
  });

  it('a corrupted or truncated part: verify names it and restore refuses, leaving live data untouched', async () => {
    const row = await getBackup(app.ctx.db, backupId);
    const recordsPart = partsOf(row).find((p) => p.kind === 'records')!;
    const filePart = partsOf(row).find((p) => p.kind === 'file' && p.size > 100_000)!;
    const dir = deps.dirs[0]!;
    const recordsPath = path.join(dir, partKey(customerId, backupId, recordsPart.name));
    const filePath = path.join(dir, partKey(customerId, backupId, filePart.name));
    const recordsBytes = fs.readFileSync(recordsPath);
    const fileBytes = fs.readFileSync(filePath);
    try {
      flipMiddleBit(recordsPath, recordsBytes);
      fs.chmodSync(filePath, 0o644);
      fs.writeFileSync(filePath, fileBytes.subarray(0, fileBytes.length - 100));
      const v = await verifyBackup(deps, backupId);
      expect(v.ok).toBe(false);
      expect(v.problems.map((p) => p.part).sort()).toEqual([filePart.name, recordsPart.name].sort());
      const before = await snapshotOfLiveData();
      const liveBlobs = async () => {
        const stored: string[] = [];
        for await (const b of app.ctx.files.list(`customers/${customerId}/files/`)) stored.push(b.key);
        return stored.sort();
      };
      const blobsBefore = await liveBlobs();
      await expect(restoreCustomer(deps, { backupId, actor })).rejects.toThrow();
      expect(await snapshotOfLiveData()).toEqual(before);
      // Nothing staged is left, and no live blob is gone.
      expect(await liveBlobs()).toEqual(blobsBefore);
    } finally {
      fs.writeFileSync(recordsPath, recordsBytes);
      fs.writeFileSync(filePath, fileBytes);
    }
    expect((await verifyBackup(deps, backupId)).ok).toBe(true);
  });

  it('a damaged backup part of a file whose live copy is intact: restore still refuses it, naming the part, and changes nothing', async () => {
    const row = await getBackup(app.ctx.db, backupId);
    const filePart = partsOf(row).find((p) => p.kind === 'file' && p.size > 100_000)!;
    const filePath = path.join(deps.dirs[0]!, partKey(customerId, backupId, filePart.name));
    const fileBytes = fs.readFileSync(filePath);
    try {
      flipMiddleBit(filePath, fileBytes);
      const before = await snapshotOfLiveData();
      await expect(restoreCustomer(deps, { backupId, actor })).rejects.toThrow(new RegExp(`${filePart.name}.*tampered with or damaged`));
      expect(await snapshotOfLiveData()).toEqual(before);
    } finally {
      fs.writeFileSync(filePath, fileBytes);
    }
  });

  it('an unreachable target marks the backup failed and leaves older generations intact', async () => {
    const broken: BackupDeps = { ...deps, settings: { ...deps.settings, primary: new S3Store({ bucket: 'hokan-unreachable', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'a', secretAccessKey: 'b', forcePathStyle: true }) } };
    await expect(runBackup(broken, customerId)).rejects.toThrow(/failed/);
    const rows = await app.ctx.db.selectFrom('backups').select(['state', 'error']).where('customer_id', '=', customerId).orderBy('started_at').execute();
    const failed = rows.filter((r) => r.state === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.error).toMatch(/127\.0\.0\.1:9/);
    expect((await verifyBackup(deps, backupId)).ok).toBe(true);
  });

  it('R10.7 once the key is destroyed, no copy can be decrypted', async () => {
    await destroyCustomerKey(app.ctx.db, app.clock, customerId);
    const v = await verifyBackup(deps, backupId);
    expect(v.ok).toBe(false);
    expect(v.problems[0]?.problem).toMatch(/destroyed/);
  });
});

describe('R10.2 separate medium', () => {
  it('start-up refuses a backup directory on the same device as the live data unless overridden', async () => {
    const base = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'hokan-medium-'));
    try {
      const files = new (await import('../../src/storage/index.js')).LocalDirectoryStore({ root: path.join(base, 'files') });
      const live = { dataDir: path.join(base, 'data'), files, embedded: true, s3Credentials: {} };
      await expect(loadBackupSettings({ HOKAN_BACKUP_URL: path.join(base, 'backup') }, live)).rejects.toThrow(/same filesystem device.*R10\.2/);
      await expect(loadBackupSettings({ HOKAN_BACKUP_URL: path.join(base, 'data', 'inside') }, live)).rejects.toThrow(/inside the live data/);
      const ok = await loadBackupSettings({ HOKAN_BACKUP_URL: path.join(base, 'backup'), HOKAN_BACKUP_SAME_DEVICE_OK: 'true' }, live);
      expect(ok.primary?.description).toContain(path.join(base, 'backup'));
      await expect(loadBackupSettings({ HOKAN_BACKUP_URL: 's3://bucket?endpoint=http://127.0.0.1:4568' }, { ...live, embedded: false })).rejects.toThrow(/HOKAN_MASTER_KEY is required/);
      await expect(loadBackupSettings({ HOKAN_MASTER_KEY: 'short' }, live)).rejects.toThrow(/HOKAN_MASTER_KEY/);
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
