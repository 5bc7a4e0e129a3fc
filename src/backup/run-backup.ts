import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { japanDateOf } from '../core/japan-time.js';
import type { BlobStore } from '../storage/index.js';
import { partAad, partKey, type BackupPart, type BackupRow } from './catalog.js';
import { createEncryptStream, encryptBuffer } from './crypto/index.js';
import { customerDataKey } from './keys.js';
import { CURRENT_FORMAT, RECORDS_PART, recordLineCopy, type BackupManifest } from './manifest.js';
import type { BackupSettings } from './settings.js';
import { HashingStream, writeWithBackpressure } from './streams.js';

export interface BackupDeps {
  db: Db;
  clock: Clock;
  /** The live file store the Software's files are read from. */
  live: BlobStore;
  settings: BackupSettings;
  instanceId: string;
  logger?: Logger;
}

const PAGE = 1000;
const WRITE_PIECE_CHARS = 32 * 1024;
const DAY_MS = 86_400_000;

/** Monday (JST) of the week containing `at`, as YYYY-MM-DD: the weekly generation's bucket. */
function japanWeekStart(at: Date): string {
  const d = new Date(`${japanDateOf(at)}T00:00:00Z`);
  const back = (d.getUTCDay() + 6) % 7;
  return new Date(d.getTime() - back * DAY_MS).toISOString().slice(0, 10);
}

/**
 * Waits for every step of a streamed part before reporting: on failure the store has finished
 * cleaning up its partial object, and its own error (e.g. ENOSPC) is preferred over the echo of it
 * that the other side of the stream reports.
 */
async function settleAll(steps: [Promise<unknown>, Promise<unknown>]): Promise<void> {
  const [pipe, store] = await Promise.allSettled(steps);
  if (store.status === 'rejected') throw store.reason;
  if (pipe.status === 'rejected') throw pipe.reason;
}

export class BackupFailedError extends Error {
  readonly code = 'backup_failed';
}

/**
 * R10.1, R10.2: one customer's backup to the separate medium. Records come from one repeatable-read
 * snapshot, streamed as NDJSON → gzip → authenticated encryption → store, so memory stays flat
 * whatever the customer's size; every file is checked against its recorded SHA-256 on the way.
 * The catalog row is 'running' until every part and the manifest are stored, and only then
 * 'good': a crash leaves 'running' (later marked failed), never a good-looking partial backup.
 */
export async function runBackup(deps: BackupDeps, customerId: string, opts: { generation?: 'manual' } = {}): Promise<BackupRow> {
  const { db, clock, settings } = deps;
  const primary = settings.primary;
  if (!primary) throw new BackupFailedError('no backup target is configured (HOKAN_BACKUP_URL)');
  const { key, fingerprint } = await customerDataKey(db, clock, settings.masterKey, settings.masterKeyFingerprint, customerId);
  const startedAt = clock.now();
  const backupId = randomUUID();

  let generation: BackupRow['generation'] = opts.generation ?? 'daily';
  if (generation === 'daily' && settings.retainWeekly > 0) {
    const weekStart = new Date(`${japanWeekStart(startedAt)}T00:00:00+09:00`);
    const weekly = await db
      .selectFrom('backups')
      .select('id')
      .where('customer_id', '=', customerId)
      .where('generation', '=', 'weekly')
      .where('state', 'in', ['good', 'running'])
      .where('started_at', '>=', weekStart)
      .executeTakeFirst();
    if (!weekly) generation = 'weekly';
  }
  const retainDays = generation === 'weekly' ? settings.retainWeekly * 7 : settings.retainDaily;
  const retainUntil = new Date(startedAt.getTime() + retainDays * DAY_MS);

  await db
    .insertInto('backups')
    .values({
      id: backupId,
      customer_id: customerId,
      generation,
      state: 'running',
      started_at: startedAt,
      finished_at: null,
      snapshot_records: null,
      snapshot_files: null,
      plain_bytes: null,
      stored_bytes: null,
      parts: JSON.stringify([]),
      key_fingerprint: fingerprint,
      primary_target: primary.description,
      retain_until: retainUntil,
      offsite_target: settings.offsite?.description ?? null,
      offsite_state: settings.offsite ? 'pending' : 'not_configured',
      offsite_copied_at: null,
      offsite_error: null,
      error: null,
      instance_id: deps.instanceId,
    })
    .execute();

  const parts: BackupPart[] = [];
  const put = async (name: string, kind: BackupPart['kind'], body: NodeJS.ReadableStream | Buffer) => {
    const stored = await primary.put(partKey(customerId, backupId, name), body, { retainUntil, contentType: 'application/octet-stream' });
    parts.push({ name, kind, size: stored.size, sha256: stored.sha256 });
  };

  try {
    // 1. Records and the file list from one consistent snapshot.
    const recordsPart = RECORDS_PART[CURRENT_FORMAT];
    const counts: Record<string, number> = {};
    let recordCount = 0;
    const plain = new HashingStream();
    const gzip = createGzip({ level: 6, chunkSize: 64 * 1024 });
    const encrypt = createEncryptStream(key, { aad: partAad(customerId, backupId, recordsPart) });
    const source = new PassThrough({ highWaterMark: 1024 * 1024 });
    const chain = pipeline(source, plain, gzip, encrypt);
    const stored = put(recordsPart, 'records', encrypt).catch((err: unknown) => {
      source.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
    // Handled here so an early failure below cannot leave them as unhandled rejections; awaited later.
    chain.catch(() => {});
    stored.catch(() => {});
    const fileRows = await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const filesInSnapshot = await trx
          .selectFrom('data_files')
          .select(['id', 'name', 'content_type', 'size', 'sha256', 'created_at', 'blob_key'])
          .where('customer_id', '=', customerId)
          .orderBy('id')
          .execute();
        let after: { c: string; i: string } | null = null;
        for (;;) {
          let q = trx
            .selectFrom('data_records')
            .select(['collection', 'id', 'version', sql<string>`data::text`.as('data_text'), 'created_at', 'updated_at', 'data_digest'])
            .where('customer_id', '=', customerId)
            .orderBy('collection')
            .orderBy('id')
            .limit(PAGE);
          if (after) q = q.where(sql<boolean>`(collection, id) > (${after.c}, ${after.i})`);
          const rows = await q.execute();
          // Lines are written in pieces of about 32 K characters: per-line writes cost three times
          // the whole pipeline, and a whole page as one string (~1 MB) lands in V8's large-object
          // space, which only a full collection frees, so the heap grew with the customer's size.
          let piece = '';
          for (const r of rows) {
            piece += recordLineCopy(r.collection, r.id, r.version, r.data_text, r.created_at, r.updated_at, r.data_digest);
            counts[r.collection] = (counts[r.collection] ?? 0) + 1;
            recordCount++;
            if (piece.length >= WRITE_PIECE_CHARS) {
              await writeWithBackpressure(source, piece);
              piece = '';
            }
          }
          if (piece) await writeWithBackpressure(source, piece);
          if (rows.length < PAGE) break;
          const last = rows[rows.length - 1]!;
          after = { c: last.collection, i: last.id };
        }
        return filesInSnapshot;
      });
    source.end();
    await settleAll([chain, stored]);

    // 2. Every file of the snapshot, encrypted on its own, checked against its recorded hash.
    const manifestFiles: BackupManifest['files'] = [];
    let plainBytes = plain.bytes;
    for (const f of fileRows) {
      const name = `files/${f.id}.hkn`;
      const check = new HashingStream();
      const enc = createEncryptStream(key, { aad: partAad(customerId, backupId, name) });
      const src = await deps.live.get(f.blob_key);
      const chainFile = pipeline(src, check, enc);
      await settleAll([chainFile, put(name, 'file', enc)]);
      if (check.sha256 !== f.sha256 || check.bytes !== Number(f.size)) {
        throw new BackupFailedError(`live file ${f.id} does not match its recorded SHA-256 (stored ${f.sha256}, read ${check.sha256}): the live copy is damaged`);
      }
      plainBytes += check.bytes;
      manifestFiles.push({ id: f.id, name: f.name, contentType: f.content_type, size: Number(f.size), sha256: f.sha256, createdAt: f.created_at.toISOString(), part: name });
    }

    // 3. The manifest last: a backup without one is incomplete by construction.
    const manifest: BackupManifest = {
      format: CURRENT_FORMAT,
      backupId,
      customerId,
      snapshotAt: startedAt.toISOString(),
      keyFingerprint: fingerprint,
      records: { part: recordsPart, count: recordCount, collections: counts, plainBytes: plain.bytes, plainSha256: plain.sha256 },
      files: manifestFiles,
    };
    await put('manifest.json.hkn', 'manifest', encryptBuffer(key, Buffer.from(JSON.stringify(manifest)), { aad: partAad(customerId, backupId, 'manifest.json.hkn') }));

    return await db
      .updateTable('backups')
      .set({
        state: 'good',
        finished_at: clock.now(),
        snapshot_records: recordCount,
        snapshot_files: manifestFiles.length,
        plain_bytes: plainBytes,
        stored_bytes: parts.reduce((n, p) => n + p.size, 0),
        parts: JSON.stringify(parts),
      })
      .where('id', '=', backupId)
      .where('state', '=', 'running')
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    deps.logger?.error({ customerId, backupId, err: message }, 'backup failed');
    await db
      .updateTable('backups')
      .set({ state: 'failed', finished_at: clock.now(), error: message.slice(0, 2000), parts: JSON.stringify(parts) })
      .where('id', '=', backupId)
      .execute();
    throw new BackupFailedError(`backup ${backupId} of customer ${customerId} failed: ${message}`);
  }
}

/** Backups left 'running' by an instance that died are failed once they are clearly abandoned. */
export async function failAbandonedBackups(db: Db, clock: Clock, olderThanMs = 6 * 3_600_000): Promise<number> {
  const r = await db
    .updateTable('backups')
    .set({ state: 'failed', finished_at: clock.now(), error: 'abandoned: the instance running it stopped before it finished' })
    .where('state', '=', 'running')
    .where('started_at', '<', new Date(clock.now().getTime() - olderThanMs))
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}
