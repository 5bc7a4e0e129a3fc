import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { sql } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { copyFrom } from '../core/db/copy.js';
import { errors } from '../core/errors.js';
import { lockCustomerData, logDataAccess } from '../data/access-log.js';
import { fileBlobKey } from '../data/files.js';
import { BlobNotFoundError, type BlobDigest, type BlobStore } from '../storage/index.js';
import { getBackup, partAad, partKey, partsOf } from './catalog.js';
import { createDecryptStream } from './crypto/index.js';
import { CustomerKeyDestroyedError, customerDataKey } from './keys.js';
import type { BackupSettings } from './settings.js';
import { RecordsPartReader } from './records-part.js';
import { CURRENT_FORMAT } from './manifest.js';
import { HashingStream } from './streams.js';
import { readManifest, targetStore, type TargetName } from './verify.js';

export interface RestoreProgress {
  /** In this order; files are checked and staged while the database applies the records. */
  phase: 'manifest' | 'records' | 'files' | 'cleanup' | 'done';
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

const PROGRESS_EVERY = 5_000;
// Each staged file waits on three fsyncs (object, sidecar, directory); eight in flight keep the
// disk busy while the records load (measured: 4 → 8 cut the files' share by about a third).
const STAGING_CONCURRENCY = 8;
const CLEANUP_BATCH = 16;

/**
 * R10.4: puts one customer's data back as it was in a catalogued backup, from either target.
 * Atomic per customer: files are staged under new keys first (checked against the manifest), then
 * every record and file row is replaced in one transaction that commits only after the whole
 * encrypted records stream has been authenticated to its end. Any failure leaves the live data as
 * it was; the staged copies are removed. A live file whose bytes still hash to the backup's copy
 * is kept where it is instead of being staged again (decision 0025).
 */
export async function restoreCustomer(
  deps: { db: Db; clock: Clock; settings: BackupSettings; live: BlobStore },
  input: {
    backupId: string;
    from?: TargetName;
    actor: Actor;
    onProgress?: (p: RestoreProgress) => void;
    /** Aborted (e.g. at shutdown): the restore stops before it commits and changes nothing. */
    signal?: AbortSignal;
  },
): Promise<RestoreResult> {
  const { db, clock, settings, live } = deps;
  const from = input.from ?? 'primary';
  const progress = input.onProgress ?? (() => {});
  const signal = input.signal;
  const stopIfAborted = () => {
    if (signal?.aborted) throw new RestoreStoppedError();
  };
  stopIfAborted();
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
  // Live files the backup holds byte for byte: their rows point at them again, nothing is copied.
  const kept: Array<{ fileId: string; key: string }> = [];
  const liveFiles = new Map(
    (await db.selectFrom('data_files').select(['id', 'sha256', 'size', 'blob_key']).where('customer_id', '=', customerId).execute()).map((r) => [r.id, r]),
  );
  const unstage = async () => {
    for (const s of staged) await live.delete(s.key, clock.now()).catch(() => {});
  };
  // Files are staged once the records part has been streamed into the database, while the server
  // applies the difference: streaming the part needs this process's main thread (decrypting and
  // framing), applying it does not, so the two then use both cores (measured: staging during the
  // COPY slowed the COPY fourfold). A few files at a time keep the fs/S3 pipe busy without holding
  // more than a few chunks each in memory.
  let stopStaging = false;
  const stageFiles = async (): Promise<void> => {
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < manifest.files.length && !stopStaging) {
        stopIfAborted();
        const f = manifest.files[next++]!;
        const part = parts.find((p) => p.name === f.part);
        if (!part) throw new Error(`file part ${f.part} is not in the catalog`);
        const current = liveFiles.get(f.id);
        if (current && current.sha256 === f.sha256 && Number(current.size) === f.size) {
          // The backup's part is still read to its end and checked against the catalog's digest of
          // its stored bytes, so a damaged backup is refused whether or not its bytes are needed.
          // Its bytes are not decrypted: the kept file's content is checked against the manifest,
          // which is authenticated; only the write (and its fsyncs) is saved.
          const [liveDigest, stored] = await Promise.all([digestOrNull(live, current.blob_key), store.digest(partKey(customerId, row.id, f.part))]);
          if (stored.size !== part.size || stored.sha256 !== part.sha256) {
            throw new Error(
              `backup part ${f.part} was tampered with or damaged: its stored bytes do not match the catalog (size ${stored.size} vs ${part.size}, sha256 ${stored.sha256.slice(0, 12)}… vs ${part.sha256.slice(0, 12)}…)`,
            );
          }
          if (liveDigest?.sha256 === f.sha256 && liveDigest.size === f.size) {
            kept.push({ fileId: f.id, key: current.blob_key });
            progress({ phase: 'files', done: ++done, total: manifest.files.length });
            continue;
          }
        }
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
  let staging: Promise<unknown> = Promise.resolve(null);
  const startStaging = () => {
    progress({ phase: 'files', done: 0, total: manifest.files.length });
    staging = stageFiles().then(
      () => null,
      (err: unknown) => err,
    );
  };
  try {
    // 2. Replace the customer's records and file rows in one transaction.
    progress({ phase: 'records', done: 0, total: manifest.records.count });
    let restoredRecords = 0;
    let replacedBlobs: string[] = [];
    await db.transaction().execute(async (trx) => {
      // No change to this customer's data runs beside the restore: one that began first has
      // committed, one that comes later waits for the commit (decision 0030).
      await lockCustomerData(trx, customerId);
      // The key was read before the lock: a purge that committed meanwhile destroyed it, and the
      // customer's data must not come back after its deletion (R10.7).
      const keyNow = await trx.selectFrom('customer_keys').select('wrapped_key').where('customer_id', '=', customerId).executeTakeFirst();
      if (!keyNow?.wrapped_key) throw new CustomerKeyDestroyedError(customerId);
      // The backup's rows go into a scratch table first (no indexes, so COPY runs at full speed),
      // and from there only what differs reaches data_records: rows identical to the live ones
      // stay, so a restore after a bad day rewrites the damage, not the whole customer, and
      // index maintenance is paid only for what changes (decision 0025).
      // The joins below hash a whole customer's keys: at the default 4 MB they spill to disk in
      // batches (decision 0026). Local to this transaction; a literal of two choices, so no input.
      await sql.raw(`set local work_mem = '${settings.restoreWorkMem}'`).execute(trx);
      await sql`create temporary table restore_records (collection text not null, id text not null, version integer not null, data text not null, created_at timestamptz not null, updated_at timestamptz not null, data_digest uuid) on commit drop`.execute(trx);
      const records = await RecordsPartReader.open(store, key, customerId, row.id, manifest);
      let loaded: number;
      try {
        let reported = 0;
        loaded = await copyFrom(
          trx,
          `copy restore_records (${records.copyColumns}) from stdin`,
          untilAborted(
            records.copyChunks((lines) => {
              if (lines - reported < PROGRESS_EVERY) return;
              reported = lines;
              progress({ phase: 'records', done: Math.min(lines, manifest.records.count), total: manifest.records.count });
            }),
            stopIfAborted,
          ),
        );
      } finally {
        records.close();
      }
      const read = await records.finish();
      // Only a stream authenticated to its final chunk, matching the manifest, may commit.
      if (read.sha256 !== manifest.records.plainSha256 || loaded !== manifest.records.count || read.lines !== manifest.records.count) {
        throw new Error(`restored records do not match the manifest (${loaded} of ${manifest.records.count})`);
      }
      progress({ phase: 'records', done: loaded, total: manifest.records.count });
      // Formats 1 and 2 carried no digest; it is computed here from the JSON as the database writes it.
      if (manifest.format !== CURRENT_FORMAT) await sql`update restore_records set data_digest = md5(data::jsonb::text)::uuid`.execute(trx);
      startStaging();
      // The scratch table has no statistics, and gathering them cost 0.15 s of 100,000 rows; without
      // them the planner could pick a nested loop over it (measured 2.8 s instead of 0.7 s). A hash
      // join is right for these joins at any size, so it is the only one allowed, for these two
      // statements only.
      await sql`set local enable_nestloop = off`.execute(trx);
      await sql`set local enable_mergejoin = off`.execute(trx);
      // Same key, version, times and JSON text, the text by its digest (the live row's is kept by
      // the database, the backup's was written beside its text): comparing the text itself meant
      // writing every live row out as JSON (measured on 100,000 rows: 0.6 s → 0.25 s).
      await sql`delete from data_records d where d.customer_id = ${customerId} and not exists (
          select 1 from restore_records r where r.collection = d.collection and r.id = d.id and r.version = d.version
            and r.created_at = d.created_at and r.updated_at = d.updated_at and r.data_digest = d.data_digest)`.execute(trx);
      await sql`insert into data_records (customer_id, collection, id, version, data, created_at, updated_at)
          select ${customerId}::uuid, r.collection, r.id, r.version, r.data::jsonb, r.created_at, r.updated_at from restore_records r
          where not exists (select 1 from data_records d where d.customer_id = ${customerId} and d.collection = r.collection and d.id = r.id)`.execute(trx);
      await sql`set local enable_nestloop to default`.execute(trx);
      await sql`set local enable_mergejoin to default`.execute(trx);
      restoredRecords = loaded;
      const stagingError = await staging;
      if (stagingError) throw stagingError;
      // A kept file must still be the live row's blob: a file deleted meanwhile may have lost its
      // blob, so the restore stops (nothing changed) rather than point a row at nothing. The lock
      // makes a delete that comes later wait, then find no row of its own to delete.
      const lockedKeyOf = new Map(
        (await trx.selectFrom('data_files').select(['id', 'blob_key']).where('customer_id', '=', customerId).forUpdate().execute()).map((r) => [r.id, r.blob_key]),
      );
      const moved = kept.filter((k) => lockedKeyOf.get(k.fileId) !== k.key);
      if (moved.length > 0) {
        throw errors.conflict(
          `復元中にお客様のファイルが変更されました（${moved.length}件）。データは変更していません。もう一度復元してください。`,
          `${moved.length} of the customer's files changed during the restore; nothing was changed. Run the restore again.`,
        );
      }
      const stagedKeyOf = new Map([...staged, ...kept].map((s) => [s.fileId, s.key]));
      // Every blob the replaced rows pointed at, including a file uploaded while the restore ran.
      replacedBlobs = (await trx.deleteFrom('data_files').where('customer_id', '=', customerId).returning('blob_key').execute()).map((r) => r.blob_key);
      for (let i = 0; i < manifest.files.length; i += 500) {
        const rows = manifest.files.slice(i, i + 500).map((f) => ({ customer_id: customerId, id: f.id, name: f.name, content_type: f.contentType, size: f.size, sha256: f.sha256, blob_key: stagedKeyOf.get(f.id)!, created_at: f.createdAt }));
        await trx.insertInto('data_files').values(rows).execute();
      }
      // The last moment to stop: after this the restore commits.
      stopIfAborted();
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
    // The blobs of the rows the restore replaced, less those it kept: known from the database, so
    // the customer's whole file directory need not be listed (a stat and a sidecar read per file).
    const keep = new Set([...staged, ...kept].map((s) => s.key));
    const doomed = replacedBlobs.filter((k) => !keep.has(k));
    // Deleted a batch at a time: one by one, each delete waits for its own round trip (or fsync).
    for (let i = 0; i < doomed.length; i += CLEANUP_BATCH) {
      await Promise.all(doomed.slice(i, i + CLEANUP_BATCH).map((k) => live.delete(k, clock.now()).catch(() => {})));
    }
    progress({ phase: 'done', done: 1, total: 1 });
    return { backupId: row.id, customerId, from, records: restoredRecords, files: manifest.files.length };
  } catch (err) {
    stopStaging = true;
    await staging;
    await unstage();
    throw err;
  }
}

/** The live blob's digest, or null when it is gone (then the backup's copy is staged). */
async function digestOrNull(live: BlobStore, key: string): Promise<BlobDigest | null> {
  try {
    return await live.digest(key);
  } catch (err) {
    if (err instanceof BlobNotFoundError) return null;
    throw err;
  }
}

/** The restore was stopped by its signal (a shutdown) before it committed; nothing changed. */
export class RestoreStoppedError extends Error {
  constructor() {
    super('the restore was stopped (the instance is shutting down) before it committed; the live data is as it was');
    this.name = 'RestoreStoppedError';
  }
}

async function* untilAborted<T>(source: AsyncIterable<T>, check: () => void): AsyncGenerator<T> {
  for await (const item of source) {
    check();
    yield item;
  }
}
