import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline, Transform } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackup, latestGoodBackup, partKey, partsOf, type BackupRow } from '../../src/backup/catalog.js';
import { restoreCustomer } from '../../src/backup/restore.js';
import { expireBackups } from '../../src/backup/retention.js';
import { BackupFailedError, failAbandonedBackups, runBackup, type BackupDeps } from '../../src/backup/run-backup.js';
import { loadBackupSettings, type BackupSettings } from '../../src/backup/settings.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { createCustomer } from '../../src/contracts/customers.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { migrate, openDatabase, type DatabaseHandle, type Db } from '../../src/core/db/database.js';
import { fileBlobKey } from '../../src/data/files.js';
import { LocalDirectoryStore, type BlobDigest, type BlobInfo, type BlobStore, type PutOptions, type PutResult } from '../../src/storage/index.js';
import type { ChildConfig } from '../fixtures/backup-child.js';
import { removeTree } from '../helpers/backup.js';
import { createPostgresDatabase, dropPostgresDatabase, postgresUrl } from '../helpers/databases.js';

const root = path.resolve(import.meta.dirname, '../..');
const MASTER_KEY = 'ab'.repeat(32);
const RECORDS = 20_000;
const FILES = 30;
const FILE_BYTES = 1024 * 1024;
const HOUR = 3_600_000;
const actor = systemActor('test faults');
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------
// The child process (test/fixtures/backup-child.ts), tracked so that afterAll can always stop it.

const children = new Set<ChildProcess>();

interface Child {
  child: ChildProcess;
  out: () => string;
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
  exited: Promise<number | null>;
  kill: () => Promise<void>;
}

function startChild(config: ChildConfig): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/backup-child.ts', JSON.stringify(config)], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      children.delete(child);
      resolve(code);
      waiters.forEach((w) => w());
    }),
  );
  return {
    child,
    exited,
    out: () => out,
    waitFor: (re, timeoutMs = 45_000) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            finish();
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            finish();
            reject(new Error(`child exited (${child.exitCode ?? child.signalCode}) without printing ${re}; stdout: ${out.slice(-1000)} stderr: ${err.slice(-2000)}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`child did not print ${re} within ${timeoutMs} ms; stdout: ${out.slice(-1000)} stderr: ${err.slice(-2000)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

async function stopAllChildren(): Promise<void> {
  await Promise.all(
    [...children].map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await gone;
    }),
  );
}

afterAll(stopAllChildren);

// ---------------------------------------------------------------------------------------------
// A disk that fills up: a real LocalDirectoryStore, whose puts fail with ENOSPC once `capacity`
// bytes have been written through it (part of the part that crosses the line is written, then
// removed again by the store, as after a real ENOSPC). Root ignores chmod, so this is how a
// target becoming unwritable part-way is simulated honestly on CI.

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

class FillingDisk implements BlobStore {
  readonly description: string;
  written = 0;

  constructor(
    private readonly inner: BlobStore,
    private readonly capacity: number,
  ) {
    this.description = inner.description;
  }

  async put(key: string, body: NodeJS.ReadableStream | Buffer, opts?: PutOptions): Promise<PutResult> {
    if (Buffer.isBuffer(body)) {
      if (this.written + body.length > this.capacity) throw enospc();
      const stored = await this.inner.put(key, body, opts);
      this.written += stored.size;
      return stored;
    }
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.written += chunk.length;
        if (this.written > this.capacity) cb(enospc());
        else cb(null, chunk);
      },
    });
    // pipeline destroys the body when the meter fails: a failed put owns and releases its body.
    pipeline(body, meter, () => {});
    return this.inner.put(key, meter, opts);
  }
  get(key: string): Promise<NodeJS.ReadableStream> {
    return this.inner.get(key);
  }
  head(key: string): Promise<BlobInfo | null> {
    return this.inner.head(key);
  }
  digest(key: string): Promise<BlobDigest> {
    return this.inner.digest(key);
  }
  delete(key: string, now: Date): Promise<void> {
    return this.inner.delete(key, now);
  }
  list(prefix: string): AsyncIterable<BlobInfo> {
    return this.inner.list(prefix);
  }
}

// ---------------------------------------------------------------------------------------------

async function seedCustomer(db: Db, live: BlobStore): Promise<string> {
  const customer = await createCustomer(db, systemClock, actor, { code: `faults${randomBytes(3).toString('hex')}`, name: '障害試験 株式会社', contactEmail: 'faults@example.jp' });
  const now = new Date();
  for (let i = 0; i < RECORDS; i += 1000) {
    await db
      .insertInto('data_records')
      .values(
        Array.from({ length: 1000 }, (_, j) => {
          const n = i + j;
          return {
            customer_id: customer.id,
            collection: n % 4 === 0 ? 'care-notes' : 'residents',
            id: `rec-${String(n).padStart(6, '0')}`,
            version: 1 + (n % 3),
            data: JSON.stringify({ n, name: `利用者 ${n}`, note: `バイタル正常、食事全量摂取 ${randomBytes(16).toString('hex')}`, tags: ['a', 'b', n % 7] }),
            created_at: now,
            updated_at: now,
          };
        }),
      )
      .execute();
  }
  for (let i = 0; i < FILES; i++) {
    const id = randomUUID();
    const body = randomBytes(FILE_BYTES);
    const stored = await live.put(fileBlobKey(customer.id, id), body, { contentType: 'application/octet-stream' });
    await db
      .insertInto('data_files')
      .values({ customer_id: customer.id, id, name: `scan-${i}.pdf`, content_type: 'application/pdf', size: stored.size, sha256: stored.sha256, blob_key: fileBlobKey(customer.id, id), created_at: now })
      .execute();
  }
  return customer.id;
}

/** Everything of the customer's live data, reduced to digests: records, file rows and the stored bytes. */
async function liveState(db: Db, live: BlobStore, customerId: string) {
  const records = await db.selectFrom('data_records').select(['collection', 'id', 'version', 'data', 'created_at', 'updated_at']).where('customer_id', '=', customerId).orderBy('collection').orderBy('id').execute();
  const files = await db.selectFrom('data_files').select(['id', 'name', 'sha256', 'size', 'blob_key']).where('customer_id', '=', customerId).orderBy('id').execute();
  const blobs: Array<{ key: string; sha256: string }> = [];
  for await (const b of live.list(`customers/${customerId}/`)) {
    const chunks: Buffer[] = [];
    for await (const c of (await live.get(b.key)) as AsyncIterable<Buffer>) chunks.push(c);
    blobs.push({ key: b.key, sha256: sha(Buffer.concat(chunks)) });
  }
  blobs.sort((a, b) => a.key.localeCompare(b.key));
  return { records: records.length, recordsSha256: sha(JSON.stringify(records)), files, blobs };
}

/** Part files (not temp files or sidecars) a backup has in a directory target. */
function partFiles(dir: string, customerId: string, backupId: string): string[] {
  const prefix = path.join(dir, 'backups', customerId, backupId);
  if (!fs.existsSync(prefix)) return [];
  return (fs.readdirSync(prefix, { recursive: true }) as string[]).filter((f) => f.endsWith('.hkn')).sort();
}

function tempFiles(dir: string, customerId: string, backupId: string): string[] {
  const prefix = path.join(dir, 'backups', customerId, backupId);
  if (!fs.existsSync(prefix)) return [];
  return (fs.readdirSync(prefix, { recursive: true }) as string[]).filter((f) => f.includes('.hokan-tmp-'));
}

// ---------------------------------------------------------------------------------------------

interface Target {
  /** What the child opens: a PGlite data directory or a PostgreSQL URL. */
  database: string;
  open: () => Promise<DatabaseHandle>;
  dispose: () => Promise<void>;
}

function faultSuite(label: string, makeTarget: (base: string) => Promise<Target>) {
  let base: string;
  let target: Target;
  let handle: DatabaseHandle | null = null;
  let live: LocalDirectoryStore;
  let settings: BackupSettings;
  let customerId: string;
  let dirs: { live: string; primary: string; data: string };
  const killed: string[] = [];
  let good: BackupRow;
  let before: Awaited<ReturnType<typeof liveState>>;

  const db = (): Db => {
    if (!handle) throw new Error('the database is closed while the child has it');
    return handle.db;
  };
  const closeDb = async () => {
    await handle?.close();
    handle = null;
  };
  const openDb = async () => {
    handle ??= await target.open();
  };
  const deps = (clock = systemClock): BackupDeps & { settings: BackupSettings } => ({ db: db(), clock, live, settings, instanceId: 'test-parent' });
  const childConfig = (extra: Partial<ChildConfig> = {}): ChildConfig => ({
    database: target.database,
    liveDir: dirs.live,
    primaryDir: dirs.primary,
    dataDir: dirs.data,
    customerId,
    masterKey: MASTER_KEY,
    ...extra,
  });
  /** Runs the child until `re`, SIGKILLs it, reopens the database: returns the id of the backup it had started. */
  const killAt = async (re: RegExp): Promise<string> => {
    await closeDb(); // PGlite: one process at a time on a data directory
    const c = startChild(childConfig());
    try {
      const started = await c.waitFor(/started ([0-9a-f-]{36})\n/);
      await c.waitFor(re);
      await c.kill();
      expect(c.out()).not.toMatch(/^done /m);
      return started[1]!;
    } finally {
      await c.kill();
      await openDb();
    }
  };

  beforeAll(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-faults-'));
    dirs = { live: path.join(base, 'live'), primary: path.join(base, 'primary'), data: path.join(base, 'data') };
    target = await makeTarget(base);
    handle = await target.open();
    await migrate(db());
    live = new LocalDirectoryStore({ root: dirs.live });
    settings = await loadBackupSettings(
      { HOKAN_BACKUP_URL: dirs.primary, HOKAN_MASTER_KEY: MASTER_KEY, HOKAN_BACKUP_SAME_DEVICE_OK: 'true' },
      { dataDir: dirs.data, files: live, embedded: !target.database.startsWith('postgres'), s3Credentials: {} },
    );
    customerId = await seedCustomer(db(), live);
    before = await liveState(db(), live, customerId);
  });

  afterAll(async () => {
    await stopAllChildren();
    await closeDb().catch(() => {});
    await target?.dispose().catch(() => {});
    if (base) removeTree(base);
  });

  it(`${label}: SIGKILL during the records snapshot and during the file parts leaves each backup running, never good`, async () => {
    // 1. Killed inside the repeatable-read snapshot, after the third page of records.
    const first = await killAt(/^page 3\n/m);
    killed.push(first);
    // 2. Killed once the target holds the records part and at least one file part.
    const second = await killAt(/^stored files\/\S+\.hkn \d+\n/m);
    killed.push(second);

    for (const id of killed) {
      const row = await getBackup(db(), id);
      expect(row).toMatchObject({ customer_id: customerId, state: 'running', finished_at: null, snapshot_records: null, error: null });
      expect(partsOf(row)).toEqual([]);
    }
    expect(await latestGoodBackup(db(), customerId)).toBeUndefined();
    // The second one left real parts behind, but no manifest: incomplete by construction.
    const strays = partFiles(dirs.primary, customerId, second);
    expect(strays).toContain('records.tsv.gz.hkn');
    expect(strays.some((f) => f.startsWith('files/'))).toBe(true);
    expect(strays).not.toContain('manifest.json.hkn');

    // Neither can be verified or restored while it is not good.
    for (const id of killed) {
      const v = await verifyBackup(deps(), id);
      expect(v.ok).toBe(false);
      expect(v.problems[0]?.problem).toMatch(/running, not good/);
      await expect(restoreCustomer(deps(), { backupId: id, actor })).rejects.toThrow(/running/);
    }
    expect(await liveState(db(), live, customerId)).toEqual(before);

    // A backup still within the abandonment window is left alone.
    expect(await failAbandonedBackups(db(), new ManualClock(new Date(Date.now() + HOUR)))).toBe(0);
  }, 180_000);

  it(`${label}: 7 h later the abandoned backups are marked failed, and the next run completes good and verifies`, async () => {
    const later = new ManualClock(new Date(Date.now() + 7 * HOUR));
    expect(await failAbandonedBackups(db(), later)).toBe(2);
    for (const id of killed) {
      const row = await getBackup(db(), id);
      expect(row.state).toBe('failed');
      expect(row.error).toMatch(/abandoned/);
      expect(row.finished_at?.getTime()).toBe(later.now().getTime());
    }

    good = await runBackup(deps(later), customerId);
    expect(good).toMatchObject({ state: 'good', snapshot_records: RECORDS, snapshot_files: FILES });
    // The failed weekly attempt does not count: this one is the week's weekly generation.
    expect(good.generation).toBe('weekly');
    expect(killed).not.toContain(good.id);
    expect(partsOf(good)).toHaveLength(FILES + 2);

    // The strays of the killed run are still there (retained, like every part), under their own prefix.
    expect(partFiles(dirs.primary, customerId, killed[1]!).length).toBeGreaterThan(0);
    expect(partFiles(dirs.primary, customerId, good.id)).toEqual(partsOf(good).map((p) => p.name).sort());
    const listed: string[] = [];
    for await (const b of settings.primary!.list(`backups/${customerId}/`)) listed.push(b.key);
    expect(listed.filter((k) => k.startsWith(`backups/${customerId}/${good.id}/`))).toHaveLength(FILES + 2);

    const v = await verifyBackup(deps(later), good.id);
    expect(v).toMatchObject({ ok: true, partsChecked: FILES + 2, records: RECORDS, files: FILES, problems: [] });
    expect((await latestGoodBackup(db(), customerId))?.id).toBe(good.id);
  });

  it(`${label}: a target that fills up part-way fails the backup with the error; the previous good backup still verifies`, async () => {
    const recordsSize = partsOf(good).find((p) => p.kind === 'records')!.size;
    // Room for the records part and two and a half files: the third file part hits ENOSPC.
    const disk = new FillingDisk(settings.primary!, recordsSize + 2.5 * FILE_BYTES);
    const err = await runBackup({ ...deps(), settings: { ...settings, primary: disk } }, customerId).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackupFailedError);
    expect((err as Error).message).toMatch(/ENOSPC/);

    const rows = await db().selectFrom('backups').selectAll().where('customer_id', '=', customerId).where('id', 'not in', [...killed, good.id]).execute();
    expect(rows).toHaveLength(1);
    const failed = rows[0]!;
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/ENOSPC: no space left on device/);
    expect(failed.finished_at).not.toBeNull();
    // The catalog lists what did reach the disk, and the disk holds no half-written part.
    expect(partsOf(failed).map((p) => p.kind)).toEqual(['records', 'file', 'file']);
    expect(partFiles(dirs.primary, customerId, failed.id)).toEqual(partsOf(failed).map((p) => p.name).sort());
    // (runBackup settles as soon as the first of the part's two streams fails, so the store may
    // still be removing its temp file for a moment.)
    for (let i = 0; i < 40 && tempFiles(dirs.primary, customerId, failed.id).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(tempFiles(dirs.primary, customerId, failed.id)).toEqual([]);

    expect((await latestGoodBackup(db(), customerId))?.id).toBe(good.id);
    expect((await verifyBackup(deps(), good.id)).ok).toBe(true);
    const v = await verifyBackup(deps(), failed.id);
    expect(v.ok).toBe(false);
    expect(v.problems[0]?.problem).toMatch(/failed, not good/);
  });

  it(`${label}: a part deleted from the target is named by verify, and restore refuses, leaving the live data untouched`, async () => {
    const filePart = partsOf(good).find((p) => p.kind === 'file')!;
    const recordsPart = partsOf(good).find((p) => p.kind === 'records')!;
    for (const part of [filePart, recordsPart]) {
      const file = path.join(dirs.primary, partKey(customerId, good.id, part.name));
      const aside = `${file}.aside`;
      fs.renameSync(file, aside);
      try {
        const v = await verifyBackup(deps(), good.id);
        expect(v.ok).toBe(false);
        expect(v.problems).toHaveLength(1);
        expect(v.problems[0]).toMatchObject({ part: part.name, problem: expect.stringMatching(/missing or unreadable/) });
        const checks = await db().selectFrom('backup_checks').select(['ok', 'detail']).where('backup_id', '=', good.id).orderBy('started_at', 'desc').execute();
        expect(checks.some((c) => !c.ok && JSON.stringify(c.detail).includes(part.name))).toBe(true);

        await expect(restoreCustomer(deps(), { backupId: good.id, actor })).rejects.toThrow(/No blob with key/);
        // Nothing changed: same records, same file rows, same stored objects (no staged copies left over).
        expect(await liveState(db(), live, customerId)).toEqual(before);
      } finally {
        fs.renameSync(aside, file);
      }
    }
    expect((await verifyBackup(deps(), good.id)).ok).toBe(true);
  });

  it(`${label}: once their retention has ended, nothing of the killed backups remains on the target`, async () => {
    const rows = await Promise.all(killed.map((id) => getBackup(db(), id)));
    const after = new ManualClock(new Date(Math.max(...rows.map((r) => r.retain_until.getTime())) + 24 * HOUR));
    const { expired } = await expireBackups({ db: db(), clock: after, settings });
    expect(expired).toEqual(expect.arrayContaining(killed));
    expect(expired).not.toContain(good.id); // the newest good backup is always kept
    for (const id of killed) {
      expect((await getBackup(db(), id)).state).toBe('expired');
      // Not only the finished parts: also what the killed put was writing when the process died.
      const dir = path.join(dirs.primary, 'backups', customerId, id);
      const left = fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[]).filter((e) => e.isFile()).map((e) => e.name) : [];
      expect(left, `backup ${id}`).toEqual([]);
    }
    expect((await verifyBackup(deps(after), good.id)).ok).toBe(true);
  });

  it(`${label}: the target failing while the snapshot reader fetches the next page of records fails the backup (does not hang)`, async () => {
    await closeDb();
    const c = startChild(childConfig({ fault: { kind: 'target-fails-between-record-pages', page: 3 } }));
    let outcome: string;
    try {
      await c.waitFor(/^target failed\n/m);
      // A healthy run fails within a fraction of a second of the fault.
      outcome = await c.waitFor(/^(done|failed) .*\n/m, 5_000).then(
        (m) => m[0],
        () => `no outcome 5 s after the target failed: runBackup hangs (child stdout ends with ${JSON.stringify(c.out().slice(-60))})`,
      );
    } finally {
      await c.kill();
      await openDb();
    }
    const started = /started ([0-9a-f-]{36})\n/.exec(c.out());
    expect(started, c.out()).not.toBeNull();
    const row = await getBackup(db(), started![1]!);
    // The backup must end, failed with the disk's error, instead of waiting forever inside its
    // repeatable-read transaction with the catalog row 'running'.
    expect(outcome).toMatch(/^failed .*ENOSPC/);
    expect(row.state).toBe('failed');
    expect(row.error).toMatch(/ENOSPC/);
  });
}

describe('SIGKILL mid-backup: no partial backup is ever marked good, and the next run completes (real child process)', () => {
  describe('PGlite data directory', () => {
    faultSuite('PGlite', async (base) => {
      const dir = path.join(base, 'db');
      return { database: dir, open: () => openDatabase({ kind: 'pglite', dataDir: dir }), dispose: async () => {} };
    });
  });

  describe.skipIf(!postgresUrl)('PostgreSQL', () => {
    faultSuite('PostgreSQL', async () => {
      const url = await createPostgresDatabase();
      return { database: url, open: () => openDatabase({ kind: 'postgres', url }), dispose: () => dropPostgresDatabase(url) };
    });
  });
});
