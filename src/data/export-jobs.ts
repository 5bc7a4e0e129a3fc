import { randomUUID } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql, type Selectable } from 'kysely';
import type { Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { DataExportJobsTable } from '../core/db/schema.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { customerServiceState } from '../contracts/contracts.js';
import type { BlobStore } from '../storage/index.js';
import { logDataRead } from './access-log.js';
import { exportCustomerData } from './export.js';
import { destroyStream } from './files.js';
import type { DataAccessor } from './records.js';
import { fromStorageError } from './storage-errors.js';

/*
 * R10.5 as a job: the customer's admin asks for an export, a worker builds the same ZIP as
 * `GET /api/v1/data/export` into the live store (under the customer's prefix, so the purge of
 * R10.7 removes it with everything else), and the portal shows its progress, then the download.
 */

export const EXPORT_JOB = 'data.export';
export const EXPORT_CLEANUP = 'data.export-cleanup';
/** Where the customer's finished archives live: under its prefix, so the purge (R10.7) takes them too. */
export const customerExportsPrefix = (customerId: string) => `customers/${customerId}/exports/`;
/** How long a finished export can be downloaded. */
export const EXPORT_KEEP_HOURS = 24;

type Row = Selectable<DataExportJobsTable>;

export interface ExportJobView {
  id: string;
  state: Row['state'] | 'expired';
  itemsTotal: number;
  itemsDone: number;
  /** 0–100; null while the total is not known yet. */
  percent: number | null;
  bytes: number;
  filename: string | null;
  sha256: string | null;
  error: string | null;
  requestedBy: string;
  createdAt: string;
  finishedAt: string | null;
  expiresAt: string;
}

export function exportJobView(r: Row, now: Date): ExportJobView {
  const done = r.records_done + r.files_done;
  const expired = r.state === 'done' && r.expires_at.getTime() <= now.getTime();
  return {
    id: r.id,
    state: expired ? 'expired' : r.state,
    itemsTotal: r.items_total,
    itemsDone: done,
    percent: r.state === 'done' ? 100 : r.state === 'queued' ? 0 : r.items_total > 0 ? Math.min(99, Math.floor((done / r.items_total) * 100)) : null,
    bytes: Number(r.bytes),
    filename: r.filename,
    sha256: r.sha256,
    error: r.error,
    requestedBy: r.requested_by_label,
    createdAt: r.created_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
    expiresAt: r.expires_at.toISOString(),
  };
}

const EXPORT_REQUEST_LOCK_CLASS = 7_310_304;

/** Queues an export; one at a time per customer (a second request returns the one in progress). */
export async function requestExport(db: Db, clock: Clock, queue: JobQueue, who: DataAccessor & { actor: Actor & { id: string } }): Promise<ExportJobView> {
  const now = clock.now();
  return db.transaction().execute(async (trx) => {
    // Requests of one customer take turns: FOR UPDATE below locks no row while none is in
    // progress, so two requests at once on PostgreSQL would each find none and each queue an
    // export. The second now waits for the first to commit, then finds its export.
    await sql`select pg_advisory_xact_lock(${EXPORT_REQUEST_LOCK_CLASS}, hashtext(${who.customerId}))`.execute(trx);
    const running = await trx
      .selectFrom('data_export_jobs')
      .selectAll()
      .where('customer_id', '=', who.customerId)
      .where('state', 'in', ['queued', 'running'])
      .forUpdate()
      .executeTakeFirst();
    if (running) return exportJobView(running, now);
    const row = await trx
      .insertInto('data_export_jobs')
      .values({
        id: randomUUID(),
        customer_id: who.customerId,
        requested_by: who.actor.id,
        requested_by_label: who.actor.label,
        source_ip: who.sourceIp,
        state: 'queued',
        items_total: 0,
        records_done: 0,
        files_done: 0,
        bytes: 0,
        created_at: now,
        expires_at: new Date(now.getTime() + EXPORT_KEEP_HOURS * 3_600_000),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await queue.enqueue(trx, EXPORT_JOB, { exportId: row.id }, { maxAttempts: 1 });
    return exportJobView(row, now);
  });
}

export async function listExportJobs(db: DbOrTx, clock: Clock, customerId: string): Promise<ExportJobView[]> {
  const rows = await db.selectFrom('data_export_jobs').selectAll().where('customer_id', '=', customerId).orderBy('created_at', 'desc').limit(20).execute();
  return rows.map((r) => exportJobView(r, clock.now()));
}

/** Another customer's export is "not found", like every other id. */
export async function getExportJob(db: DbOrTx, clock: Clock, customerId: string, id: string): Promise<ExportJobView> {
  const row = await db.selectFrom('data_export_jobs').selectAll().where('id', '=', id).where('customer_id', '=', customerId).executeTakeFirst();
  if (!row) throw errors.notFound('エクスポート / export', id);
  return exportJobView(row, clock.now());
}

/**
 * The finished archive, for its download. Each download is a read of all the customer's data, so
 * each is logged (who, when, from where) like any other read of it (R10.5, data access log); the
 * run of the job logged only that the export was built, and by whom.
 */
export async function openExportDownload(db: Db, clock: Clock, files: BlobStore, who: DataAccessor, id: string): Promise<{ job: ExportJobView; stream: NodeJS.ReadableStream }> {
  const row = await db.selectFrom('data_export_jobs').selectAll().where('id', '=', id).where('customer_id', '=', who.customerId).executeTakeFirst();
  if (!row) throw errors.notFound('エクスポート / export', id);
  const job = exportJobView(row, clock.now());
  if (job.state !== 'done' || !row.blob_key) {
    throw new HokanError('conflict', bi(job.state === 'expired' ? 'ダウンロード期限を過ぎました。もう一度エクスポートしてください。' : 'エクスポートはまだ完了していません。', job.state === 'expired' ? 'The download has expired; please export again.' : 'The export has not finished.'));
  }
  const stream = await files.get(row.blob_key).catch((err: unknown) => {
    throw fromStorageError(err, 'エクスポート / export', id);
  });
  try {
    await logDataRead(db, clock, { ...who, operation: 'download', targetType: 'export', targetId: id });
  } catch (err) {
    destroyStream(stream);
    throw err;
  }
  return { job, stream };
}

class ByteCounter extends Transform {
  bytes = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    cb(null, chunk);
  }
}

/** Runs one export: counts what there is, builds the ZIP into the store, records progress as it goes. */
export async function runExportJob(deps: { db: Db; clock: Clock; files: BlobStore }, exportId: string): Promise<void> {
  const { db, clock, files } = deps;
  const row = await db.selectFrom('data_export_jobs').selectAll().where('id', '=', exportId).executeTakeFirst();
  // 'running' here is a run cut off by a shutdown (the queue hands the job back) or a crash: an
  // export only reads, so it starts over and overwrites its own archive.
  if (!row || (row.state !== 'queued' && row.state !== 'running')) return;
  const fail = async (message: string) => {
    await db.updateTable('data_export_jobs').set({ state: 'failed', error: message.slice(0, 500), finished_at: clock.now() }).where('id', '=', exportId).execute();
  };
  const state = await customerServiceState(db, row.customer_id);
  if (state === 'ended' || state === 'none') return fail('the contract has ended (R10.7)');
  const records = await db.selectFrom('data_records').select((eb) => eb.fn.countAll<string>().as('n')).where('customer_id', '=', row.customer_id).executeTakeFirstOrThrow();
  const fileCount = await db.selectFrom('data_files').select((eb) => eb.fn.countAll<string>().as('n')).where('customer_id', '=', row.customer_id).executeTakeFirstOrThrow();
  await db.updateTable('data_export_jobs').set({ state: 'running', started_at: clock.now(), items_total: Number(records.n) + Number(fileCount.n) }).where('id', '=', exportId).execute();

  // Progress is written at most a few times a second, so a large export is not a write per record.
  let latest = { records: 0, files: 0, bytes: 0 };
  let lastWrite = 0;
  let writing: Promise<unknown> = Promise.resolve();
  const flush = () => {
    const p = latest;
    writing = writing.then(() => db.updateTable('data_export_jobs').set({ records_done: p.records, files_done: p.files, bytes: p.bytes }).where('id', '=', exportId).where('state', '=', 'running').execute());
  };
  const tick = () => {
    const t = performance.now();
    if (t - lastWrite < 250) return;
    lastWrite = t;
    flush();
  };
  try {
    const who: DataAccessor = { customerId: row.customer_id, actor: { kind: 'customer_user', id: row.requested_by, label: row.requested_by_label }, sourceIp: row.source_ip };
    const { filename, stream } = await exportCustomerData({ db, clock, files }, who, {
      onProgress: (d) => {
        latest = { ...latest, ...d };
        tick();
      },
    });
    const counter = new ByteCounter((n) => {
      latest = { ...latest, bytes: n };
    });
    const key = `${customerExportsPrefix(row.customer_id)}${exportId}.zip`;
    const put = files.put(key, counter, { contentType: 'application/zip' });
    await Promise.all([pipeline(stream as NodeJS.ReadableStream, counter), put]);
    const stored = await put;
    flush();
    await writing;
    await db
      .updateTable('data_export_jobs')
      .set({ state: 'done', blob_key: key, filename, sha256: stored.sha256, bytes: stored.size, finished_at: clock.now(), expires_at: new Date(clock.now().getTime() + EXPORT_KEEP_HOURS * 3_600_000) })
      .where('id', '=', exportId)
      .execute();
  } catch (err) {
    await writing.catch(() => undefined);
    await fail(err instanceof Error ? err.message : String(err));
  }
}

/** Finished exports past their download period are removed from the store. */
export async function removeExpiredExports(db: Db, clock: Clock, files: BlobStore): Promise<number> {
  const now = clock.now();
  const rows = await db.selectFrom('data_export_jobs').select(['id', 'blob_key']).where('state', '=', 'done').where('expires_at', '<=', now).where('blob_key', 'is not', null).execute();
  for (const r of rows) {
    await files.delete(r.blob_key!, now);
    await db.updateTable('data_export_jobs').set({ blob_key: null }).where('id', '=', r.id).execute();
  }
  return rows.length;
}

/**
 * Exports whose job is gone without settling them (a crash after the last attempt) are failed, so
 * the portal stops showing them as in progress and the customer can export again.
 */
export async function failOrphanedExports(db: Db, clock: Clock): Promise<number> {
  const res = await db
    .updateTable('data_export_jobs')
    .set({ state: 'failed', error: 'the export was interrupted; please export again', finished_at: clock.now() })
    .where('state', 'in', ['queued', 'running'])
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('jobs')
            .select('jobs.id')
            .where('jobs.queue', '=', EXPORT_JOB)
            .where('jobs.state', 'in', ['queued', 'active'])
            .where(sql<boolean>`jobs.payload->>'exportId' = data_export_jobs.id::text`),
        ),
      ),
    )
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

export function registerExportJobs(queue: JobQueue, files: BlobStore): void {
  queue.register<{ exportId: string }>(EXPORT_JOB, async ({ db, clock, payload }) => runExportJob({ db, clock, files }, payload.exportId), { maxAttempts: 1 });
  queue.register(EXPORT_CLEANUP, async ({ db, clock }) => {
    await failOrphanedExports(db, clock);
    await removeExpiredExports(db, clock, files);
  });
  queue.schedule({ name: EXPORT_CLEANUP, queue: EXPORT_CLEANUP, everyMs: 3_600_000 });
}
