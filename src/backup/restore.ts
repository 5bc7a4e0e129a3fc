import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { PassThrough } from 'node:stream';
import { sql } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { errors } from '../core/errors.js';
import { logDataAccess } from '../data/access-log.js';
import { customerFilesPrefix, fileBlobKey } from '../data/files.js';
import type { BlobStore } from '../storage/index.js';
import { getBackup, partAad, partKey, partsOf } from './catalog.js';
import { createDecryptStream } from './crypto/index.js';
import { customerDataKey } from './keys.js';
import type { BackupSettings } from './settings.js';
import { HashingStream, ndjsonLines } from './streams.js';
import { readManifest, targetStore, type TargetName } from './verify.js';

export interface RestoreProgress {
  phase: 'manifest' | 'files' | 'records' | 'cleanup' | 'done';
  done: number;
  total: number;
}

export interface RestoreResult {
  backupId: string;
  customerId: string;
  from: TargetName;
  records: number;
  files: number;
}

// 500 lines per statement: larger batches add heap without adding speed (measured).
const BATCH = 500;
const STAGING_CONCURRENCY = 4;
const CLEANUP_BATCH = 16;

/**
 * R10.4: puts one customer's data back as it was in a catalogued backup, from either target.
 * Atomic per customer: files are staged under new keys first (checked against the manifest), then
 * every record and file row is replaced in one transaction that commits only after the whole
 * encrypted records stream has been authenticated to its end. Any failure leaves the live data as
 * it was; the staged copies are removed.
 */
export async function restoreCustomer(
  deps: { db: Db; clock: Clock; settings: BackupSettings; live: BlobStore },
  input: { backupId: string; from?: TargetName; actor: Actor; onProgress?: (p: RestoreProgress) => void },
): Promise<RestoreResult> {
  const { db, clock, settings, live } = deps;
  const from = input.from ?? 'primary';
  const progress = input.onProgress ?? (() => {});
  const row = await getBackup(db, input.backupId);
  if (row.state !== 'good') throw errors.conflict(`バックアップの状態が ${row.state} のため復元できません。`, `Backup ${row.id} is ${row.state}; only good backups can be restored.`);
  if (from === 'offsite' && row.offsite_state !== 'copied') throw errors.conflict('このバックアップは遠隔地にまだ複製されていません。', `Backup ${row.id} has no remote copy (state ${row.offsite_state}).`);
  const store = targetStore(settings, from);
  const customerId = row.customer_id;
  const { key } = await customerDataKey(db, clock, settings.masterKey, settings.masterKeyFingerprint, customerId);

  progress({ phase: 'manifest', done: 0, total: 1 });
  const manifest = await readManifest(store, row, key);
  const parts = partsOf(row);

  // 1. Stage files under fresh keys; the live objects are not touched yet.
  // Random, never clock-derived: a staged key must not collide with a live one (a collision would
  // overwrite the live file, and cleaning up after a failed restore would then delete it).
  const tag = `r${randomBytes(6).toString('hex')}`;
  const staged: Array<{ fileId: string; key: string }> = [];
  const unstage = async () => {
    for (const s of staged) await live.delete(s.key, clock.now()).catch(() => {});
  };
  // Files are staged while the records load: on PostgreSQL the inserts run in the server process,
  // so decrypting files here and loading rows there use both cores. A few files at a time keeps
  // the fs/S3 pipe busy without holding more than a few chunks each in memory.
  let stopStaging = false;
  const stageFiles = async (): Promise<void> => {
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < manifest.files.length && !stopStaging) {
        const f = manifest.files[next++]!;
        if (!parts.some((p) => p.name === f.part)) throw new Error(`file part ${f.part} is not in the catalog`);
        const stagedKey = `${fileBlobKey(customerId, f.id)}-${tag}`;
        if (await live.head(stagedKey)) throw new Error(`staging key ${stagedKey} is already taken`);
        const check = new HashingStream();
        const decrypt = createDecryptStream(key, { aad: partAad(customerId, row.id, f.part) });
        const out = new PassThrough();
        const src = await store.get(partKey(customerId, row.id, f.part));
        staged.push({ fileId: f.id, key: stagedKey });
        await Promise.all([pipeline(src, decrypt, check, out), live.put(stagedKey, out, { contentType: f.contentType })]);
        if (check.sha256 !== f.sha256) throw new Error(`file ${f.id} decrypted to other bytes than the manifest records`);
        progress({ phase: 'files', done: ++done, total: manifest.files.length });
      }
    };
    const results = await Promise.allSettled(
      Array.from({ length: Math.min(STAGING_CONCURRENCY, manifest.files.length) }, () =>
        worker().catch((err: unknown) => {
          stopStaging = true;
          throw err;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  // Settled before anything else happens to the staged list: a failing worker must not leave the
  // others writing while the cleanup runs.
  progress({ phase: 'files', done: 0, total: manifest.files.length });
  const staging = stageFiles().then(
    () => null,
    (err: unknown) => err,
  );
  try {
    // 2. Replace the customer's records and file rows in one transaction.
    progress({ phase: 'records', done: 0, total: manifest.records.count });
    let restoredRecords = 0;
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('data_records').where('customer_id', '=', customerId).execute();
      await trx.deleteFrom('data_files').where('customer_id', '=', customerId).execute();
      const src = await store.get(partKey(customerId, row.id, manifest.records.part));
      const decrypt = createDecryptStream(key, { aad: partAad(customerId, row.id, manifest.records.part) });
      const gunzip = createGunzip();
      const plain = new HashingStream();
      let streamError: unknown = null;
      const decoded = pipeline(src, decrypt, gunzip, plain).catch((err: unknown) => {
        streamError = err;
        plain.destroy(err instanceof Error ? err : new Error(String(err)));
      });
      // Lines go to the database as one JSON array per batch, unpacked by jsonb_to_recordset: no
      // per-record parse here, one statement per batch.
      let batch: string[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        await sql`insert into data_records (customer_id, collection, id, version, data, created_at, updated_at)
          select ${customerId}::uuid, r.c, r.i, r.v, r.d, r.ca::timestamptz, r.ua::timestamptz
          from jsonb_to_recordset(${`[${batch.join(',')}]`}::jsonb) as r(c text, i text, v integer, d jsonb, ca text, ua text)`.execute(trx);
        restoredRecords += batch.length;
        progress({ phase: 'records', done: restoredRecords, total: manifest.records.count });
        batch = [];
      };
      for await (const line of ndjsonLines(plain)) {
        batch.push(line);
        if (batch.length >= BATCH) await flush();
      }
      await flush();
      await decoded;
      if (streamError) throw streamError;
      // Only a stream authenticated to its final chunk, matching the manifest, may commit.
      if (plain.sha256 !== manifest.records.plainSha256 || restoredRecords !== manifest.records.count) {
        throw new Error(`restored records do not match the manifest (${restoredRecords} of ${manifest.records.count})`);
      }
      const stagingError = await staging;
      if (stagingError) throw stagingError;
      const stagedKeyOf = new Map(staged.map((s) => [s.fileId, s.key]));
      for (let i = 0; i < manifest.files.length; i += 500) {
        const rows = manifest.files.slice(i, i + 500).map((f) => ({ customer_id: customerId, id: f.id, name: f.name, content_type: f.contentType, size: f.size, sha256: f.sha256, blob_key: stagedKeyOf.get(f.id)!, created_at: f.createdAt }));
        await trx.insertInto('data_files').values(rows).execute();
      }
      await logDataAccess(trx, clock, { customerId, actor: input.actor, sourceIp: null, operation: 'restore', targetType: 'customer', targetId: row.id });
      await appendAudit(trx, clock, {
        actor: input.actor,
        action: 'backup.restored',
        subjectType: 'customer',
        subjectId: customerId,
        customerId,
        details: { backupId: row.id, from, records: restoredRecords, files: manifest.files.length },
      });
    });

    // 3. Remove live objects the restored rows no longer reference.
    progress({ phase: 'cleanup', done: 0, total: 1 });
    const keep = new Set(staged.map((s) => s.key));
    // Deleted a batch at a time: one by one, each delete waits for its own round trip (or fsync).
    let doomed: string[] = [];
    const sweep = async () => {
      await Promise.all(doomed.map((k) => live.delete(k, clock.now()).catch(() => {})));
      doomed = [];
    };
    for await (const blob of live.list(customerFilesPrefix(customerId))) {
      if (keep.has(blob.key)) continue;
      doomed.push(blob.key);
      if (doomed.length >= CLEANUP_BATCH) await sweep();
    }
    await sweep();
    progress({ phase: 'done', done: 1, total: 1 });
    return { backupId: row.id, customerId, from, records: restoredRecords, files: manifest.files.length };
  } catch (err) {
    stopStaging = true;
    await staging;
    await unstage();
    throw err;
  }
}
