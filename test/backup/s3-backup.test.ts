import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackup, partKey, partsOf, type BackupRow } from '../../src/backup/catalog.js';
import { copyBackupOffsite, runOffsiteCycle } from '../../src/backup/offsite.js';
import { restoreCustomer } from '../../src/backup/restore.js';
import { runBackup, type BackupDeps } from '../../src/backup/run-backup.js';
import { loadBackupSettings, type BackupSettings } from '../../src/backup/settings.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { S3Store } from '../../src/storage/index.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';

const root = path.resolve(import.meta.dirname, '../..');
const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const PRIMARY_BUCKET = 'hokan-backup';
const PRIMARY_PREFIX = 'site-a';
const REMOTE_BUCKET = 'hokan-remote';
const MiB = 1024 * 1024;
const actor = systemActor('test s3 restore');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// Two real s3rver processes on 127.0.0.1: the separate medium and the remote site (their own
// process each; test/storage/s3rver-server.ts explains why s3rver cannot run in the worker).

interface S3rverProcess {
  child: ChildProcess;
  endpoint: string;
  /** s3rver's storage directory: objects live at <dir>/<bucket>/<key>._S3rver_object. */
  dir: string;
  bucket: string;
}

let tmp: string;
const servers: S3rverProcess[] = [];
const clients: S3Client[] = [];

async function startS3rver(dir: string, bucket: string): Promise<S3rverProcess> {
  fs.mkdirSync(dir, { recursive: true });
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', path.join(root, 'test/storage/s3rver-server.ts'), dir, bucket], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const server: S3rverProcess = { child, endpoint: '', dir, bucket };
  servers.push(server);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`s3rver exited early with code ${code}`)));
    child.once('error', reject);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  server.endpoint = `http://127.0.0.1:${port}`;
  return server;
}

async function stopS3rver(s: S3rverProcess): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.stdin!.end(); // the server closes itself when its stdin ends
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** An S3 client that bypasses hokan entirely: what another tool, or an attacker with the credentials, would use. */
function rawClient(endpoint: string): S3Client {
  const c = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  clients.push(c);
  return c;
}

async function getRaw(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

let primaryServer: S3rverProcess;
let remoteServer: S3rverProcess;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-s3-backup-'));
  [primaryServer, remoteServer] = await Promise.all([startS3rver(path.join(tmp, 's3-primary'), PRIMARY_BUCKET), startS3rver(path.join(tmp, 's3-remote'), REMOTE_BUCKET)]);
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(servers.map(stopS3rver));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe.each(databaseKinds)('backup → verify → remote copy → restore with S3 targets (real s3rver) on %s', (kind) => {
  let app: TestApp;
  let dataDir: string;
  let settings: BackupSettings;
  let deps: BackupDeps & { settings: BackupSettings };
  let customerId: string;
  let token: string;
  let primaryRaw: S3Client;
  let remoteRaw: S3Client;
  let row: BackupRow;
  const files: Array<{ id: string; body: Buffer }> = [];

  const snapshot = async () => {
    const records = await app.ctx.db.selectFrom('data_records').select(['collection', 'id', 'version', 'data', 'created_at', 'updated_at']).where('customer_id', '=', customerId).orderBy('collection').orderBy('id').execute();
    const fileRows = await app.ctx.db.selectFrom('data_files').select(['id', 'name', 'content_type', 'sha256', 'size', 'created_at']).where('customer_id', '=', customerId).orderBy('id').execute();
    return { records, files: fileRows };
  };
  /** The live objects of the customer and their bytes' hashes. */
  const liveObjects = async () => {
    const out: Array<{ key: string; sha256: string }> = [];
    for await (const b of app.ctx.files.list(`customers/${customerId}/`)) {
      const chunks: Buffer[] = [];
      for await (const c of (await app.ctx.files.get(b.key)) as AsyncIterable<Buffer>) chunks.push(c);
      out.push({ key: b.key, sha256: sha(Buffer.concat(chunks)) });
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  };
  const primaryKey = (name: string) => `${PRIMARY_PREFIX}/${partKey(customerId, row.id, name)}`;
  const remoteKey = (name: string) => partKey(customerId, row.id, name);
  const s3rverFile = (server: S3rverProcess, key: string) => path.join(server.dir, server.bucket, `${key}._S3rver_object`);

  beforeAll(async () => {
    app = await startTestApp(kind);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-s3-data-'));
    settings = await loadBackupSettings(
      {
        HOKAN_BACKUP_URL: `s3://${PRIMARY_BUCKET}/${PRIMARY_PREFIX}?endpoint=${primaryServer.endpoint}&region=us-east-1&forcePathStyle=true`,
        HOKAN_OFFSITE_URL: `s3://${REMOTE_BUCKET}?endpoint=${remoteServer.endpoint}&region=us-east-1&forcePathStyle=true`,
        HOKAN_MASTER_KEY: 'ef'.repeat(32),
      },
      { dataDir, files: app.ctx.files, embedded: kind === 'pglite', s3Credentials: CREDS },
    );
    expect(settings.primary).toBeInstanceOf(S3Store);
    expect(settings.offsite).toBeInstanceOf(S3Store);
    deps = { db: app.ctx.db, clock: app.clock, live: app.ctx.files, settings, instanceId: 'test' };
    primaryRaw = rawClient(primaryServer.endpoint);
    remoteRaw = rawClient(remoteServer.endpoint);

    const c = await addCustomerWithContract(app, `s3${kind}`);
    customerId = c.customer.id;
    await addCustomerUser(app, customerId, `s3-${kind}-admin`, 'customer_admin');
    const cookie = await app.signIn(`s3-${kind}-admin`);
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie, payload: { name: 'sw' } })).json().token;
    const rows = Array.from({ length: 3000 }, (_, i) => ({
      customer_id: customerId,
      collection: i % 3 === 0 ? 'care-notes' : 'residents',
      id: `id-${String(i).padStart(5, '0')}`,
      version: 1,
      data: JSON.stringify({ n: i, note: `バイタル正常 ${i}`, nested: { a: [1, 2, 3] } }),
      created_at: app.clock.now(),
      updated_at: app.clock.now(),
    }));
    for (let i = 0; i < rows.length; i += 500) await app.ctx.db.insertInto('data_records').values(rows.slice(i, i + 500)).execute();
    // One file larger than the S3 store's 8 MiB part size, so its backup part is a multipart upload.
    for (const size of [0, 1000, 300_000, 9 * MiB]) {
      const body = randomBytes(size);
      const res = await app.request({ method: 'POST', url: `/api/v1/data/files?name=f${size}.bin`, token, headers: { 'content-type': 'application/octet-stream' }, payload: body });
      expect(res.statusCode).toBe(201);
      files.push({ id: res.json().file.id, body });
    }
  });

  afterAll(async () => {
    for (const s of [settings?.primary, settings?.offsite]) if (s instanceof S3Store) s.destroy();
    await app?.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  let original: Awaited<ReturnType<typeof snapshot>>;

  it('backs the customer up to S3: good, every part encrypted in the bucket, with its retention', async () => {
    original = await snapshot();
    row = await runBackup(deps, customerId);
    expect(row).toMatchObject({ state: 'good', snapshot_records: 3000, snapshot_files: 4, offsite_state: 'pending' });
    expect(row.primary_target).toContain(`s3://${PRIMARY_BUCKET}/${PRIMARY_PREFIX}`);
    const parts = partsOf(row);
    expect(parts.map((p) => p.kind).sort()).toEqual(['file', 'file', 'file', 'file', 'manifest', 'records']);

    const listed = await primaryRaw.send(new ListObjectsV2Command({ Bucket: PRIMARY_BUCKET, Prefix: `${PRIMARY_PREFIX}/backups/${customerId}/${row.id}/` }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(parts.map((p) => primaryKey(p.name)).sort());
    for (const p of parts) {
      const stored = await getRaw(primaryRaw, PRIMARY_BUCKET, primaryKey(p.name));
      expect(stored.subarray(0, 8).toString('latin1')).toBe('HKNBAK1\0');
      expect(stored.includes(Buffer.from('バイタル'))).toBe(false);
      expect({ size: stored.length, sha256: sha(stored) }).toEqual({ size: p.size, sha256: p.sha256 });
      const head = await primaryRaw.send(new HeadObjectCommand({ Bucket: PRIMARY_BUCKET, Key: primaryKey(p.name) }));
      expect(head.Metadata?.['hokan-retain-until']).toBe(row.retain_until.toISOString());
    }
    expect(parts.find((p) => p.kind === 'file' && p.size > 8 * MiB)).toBeDefined();
  });

  it('verify re-reads every part from S3, checks its hash and decrypts it', async () => {
    expect(await verifyBackup(deps, row.id)).toMatchObject({ ok: true, partsChecked: 6, records: 3000, files: 4, problems: [] });
  });

  it('R10.3 the remote-copy cycle copies the backup to the second bucket, where it verifies too', async () => {
    const r = await runOffsiteCycle(deps);
    expect(r.copied).toEqual([row.id]);
    expect(r.failed).toEqual([]);
    row = await getBackup(app.ctx.db, row.id);
    expect(row.offsite_state).toBe('copied');
    expect(row.offsite_target).toContain(`s3://${REMOTE_BUCKET}/`);
    for (const p of partsOf(row)) {
      const copy = await getRaw(remoteRaw, REMOTE_BUCKET, remoteKey(p.name));
      expect(sha(copy)).toBe(p.sha256);
      const head = await remoteRaw.send(new HeadObjectCommand({ Bucket: REMOTE_BUCKET, Key: remoteKey(p.name) }));
      expect(head.Metadata?.['hokan-retain-until']).toBe(row.retain_until.toISOString());
    }
    expect(await verifyBackup(deps, row.id, 'offsite')).toMatchObject({ ok: true, partsChecked: 6, records: 3000, files: 4 });
    // Copying again finds every part already there.
    expect((await copyBackupOffsite(deps, row.id)).offsite_state).toBe('copied');
  });

  it("a part tampered in s3rver's storage directory is named by verify, and restore from it refuses, leaving live data untouched", async () => {
    const part = partsOf(row).find((p) => p.kind === 'file' && p.size > 8 * MiB)!;
    const file = s3rverFile(primaryServer, primaryKey(part.name));
    expect(fs.existsSync(file)).toBe(true);
    const original = fs.readFileSync(file);
    const beforeRows = await snapshot();
    const beforeObjects = await liveObjects();
    try {
      const flipped = Buffer.from(original);
      flipped[5 * MiB]! ^= 0x20; // one bit, in the second multipart part, size unchanged
      fs.writeFileSync(file, flipped);
      const v = await verifyBackup(deps, row.id);
      expect(v.ok).toBe(false);
      expect(v.problems).toEqual([{ part: part.name, problem: expect.stringMatching(/tampered/) }]);
      await expect(restoreCustomer(deps, { backupId: row.id, actor })).rejects.toThrow(/tampered/);
      expect(await snapshot()).toEqual(beforeRows);
      expect(await liveObjects()).toEqual(beforeObjects);
      // The remote copy is separate and still good.
      expect((await verifyBackup(deps, row.id, 'offsite')).ok).toBe(true);
    } finally {
      fs.writeFileSync(file, original);
    }
    expect((await verifyBackup(deps, row.id)).ok).toBe(true);
  });

  it('a part overwritten through a raw PutObject that bypasses hokan is named by verify, and restore from it refuses', async () => {
    const part = partsOf(row).find((p) => p.kind === 'records')!;
    const key = remoteKey(part.name);
    const original = await getRaw(remoteRaw, REMOTE_BUCKET, key);
    const head = await remoteRaw.send(new HeadObjectCommand({ Bucket: REMOTE_BUCKET, Key: key }));
    const beforeRows = await snapshot();
    const beforeObjects = await liveObjects();
    try {
      // Same length, same metadata (retention included): only the bytes differ.
      const forged = Buffer.from(original);
      forged[forged.length - 40]! ^= 0x01;
      await remoteRaw.send(new PutObjectCommand({ Bucket: REMOTE_BUCKET, Key: key, Body: forged, Metadata: head.Metadata }));
      const v = await verifyBackup(deps, row.id, 'offsite');
      expect(v.ok).toBe(false);
      expect(v.problems).toEqual([{ part: part.name, problem: expect.stringMatching(/tampered/) }]);
      await expect(restoreCustomer(deps, { backupId: row.id, from: 'offsite', actor })).rejects.toThrow(/tampered/);
      expect(await snapshot()).toEqual(beforeRows);
      expect(await liveObjects()).toEqual(beforeObjects);
      expect((await verifyBackup(deps, row.id)).ok).toBe(true);
    } finally {
      await remoteRaw.send(new PutObjectCommand({ Bucket: REMOTE_BUCKET, Key: key, Body: original, Metadata: head.Metadata }));
    }
    expect((await verifyBackup(deps, row.id, 'offsite')).ok).toBe(true);
  });

  it('copying again over an altered remote part does not report the remote copy as good', async () => {
    const part = partsOf(row).find((p) => p.name === `files/${files[2]!.id}.hkn`)!;
    const key = remoteKey(part.name);
    const original = await getRaw(remoteRaw, REMOTE_BUCKET, key);
    const head = await remoteRaw.send(new HeadObjectCommand({ Bucket: REMOTE_BUCKET, Key: key }));
    try {
      const forged = Buffer.from(original);
      forged[100]! ^= 0x01;
      await remoteRaw.send(new PutObjectCommand({ Bucket: REMOTE_BUCKET, Key: key, Body: forged, Metadata: head.Metadata }));
      // The part on the remote site no longer hashes to the catalog: a copy run that finds it
      // must not (re)confirm the remote copy as complete.
      const outcome = await copyBackupOffsite(deps, row.id).then(
        (r) => r.offsite_state,
        (err: unknown) => `rejected: ${(err as Error).message}`,
      );
      expect(outcome).not.toBe('copied');
    } finally {
      await remoteRaw.send(new PutObjectCommand({ Bucket: REMOTE_BUCKET, Key: key, Body: original, Metadata: head.Metadata }));
      await copyBackupOffsite(deps, row.id);
    }
    expect((await verifyBackup(deps, row.id, 'offsite')).ok).toBe(true);
  });

  it('R10.4 restores the customer from the remote copy alone, exactly as backed up', async () => {
    // Live data drifts after the backup.
    await app.ctx.db.updateTable('data_records').set({ data: JSON.stringify({ broken: true }), version: 9 }).where('customer_id', '=', customerId).where('collection', '=', 'residents').execute();
    await app.ctx.db.deleteFrom('data_records').where('customer_id', '=', customerId).where('collection', '=', 'care-notes').execute();
    expect((await app.request({ method: 'DELETE', url: `/api/v1/data/files/${files[3]!.id}`, token })).statusCode).toBe(200);
    await app.request({ method: 'POST', url: '/api/v1/data/files?name=later.bin', token, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('added after the backup') });

    // The separate medium is out of reach: everything must come from the remote site.
    const unreachable = new S3Store({ bucket: PRIMARY_BUCKET, endpoint: 'http://127.0.0.1:9', region: 'us-east-1', forcePathStyle: true, ...CREDS });
    try {
      const result = await restoreCustomer({ ...deps, settings: { ...settings, primary: unreachable } }, { backupId: row.id, from: 'offsite', actor });
      expect(result).toMatchObject({ backupId: row.id, customerId, from: 'offsite', records: 3000, files: 4 });
    } finally {
      unreachable.destroy();
    }
    expect(await snapshot()).toEqual(original);
    for (const f of files) {
      const res = await app.request({ method: 'GET', url: `/api/v1/data/files/${f.id}/content`, token });
      expect(res.statusCode).toBe(200);
      expect(sha(res.rawPayload)).toBe(sha(f.body));
    }
    expect((await liveObjects()).map((o) => o.sha256).sort()).toEqual(files.map((f) => sha(f.body)).sort());
  });
});
