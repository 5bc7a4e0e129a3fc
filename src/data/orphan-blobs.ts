import { appendAudit, systemActor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { listCustomers } from '../contracts/customers.js';
import { LocalDirectoryStore, type BlobStore } from '../storage/index.js';
import { customerExportsPrefix } from './export-jobs.js';
import { customerFilesPrefix } from './files.js';

export const ORPHAN_BLOB_SWEEP = 'data.orphan-blobs';
/** An object must stay unreferenced this long before it is removed: longer than any upload or restore. */
export const ORPHAN_GRACE_MS = 24 * 3_600_000;
const BATCH = 500;
const actor = systemActor('orphan file sweep');

export interface OrphanSweepResult {
  /** Unreferenced objects seen for the first time. */
  recorded: number;
  /** Objects removed: unreferenced since at least the grace period. */
  removed: number;
  /** Temp files of writes cut off by a killed process, older than the grace period, removed. */
  leftovers: number;
}

/**
 * Removes live file objects that no row references: staged copies of a restore that was killed,
 * an object whose delete failed after its row went, or one whose row was deleted outside hokan.
 * Such bytes are still the customer's data, so they must not linger (decision 0026). An object is
 * first recorded, and removed only by a later run that finds it still unreferenced a day on: an
 * upload or a restore writes its object before the row that references it commits, and must never
 * lose it. Memory stays flat: objects are listed as a stream and checked in batches.
 */
export async function sweepOrphanBlobs(deps: { db: Db; clock: Clock; files: BlobStore }, graceMs = ORPHAN_GRACE_MS): Promise<OrphanSweepResult> {
  const { db, clock, files } = deps;
  const result: OrphanSweepResult = { recorded: 0, removed: 0, leftovers: 0 };
  for (const customer of await listCustomers(db)) {
    const customerId = customer.id;
    let batch: string[] = [];
    const record = async () => {
      if (batch.length === 0) return;
      const referenced = new Set(
        (await db.selectFrom('data_files').select('blob_key').where('customer_id', '=', customerId).where('blob_key', 'in', batch).execute()).map((r) => r.blob_key),
      );
      const unreferenced = batch.filter((k) => !referenced.has(k));
      batch = [];
      if (unreferenced.length === 0) return;
      const inserted = await db
        .insertInto('orphan_blob_candidates')
        .values(unreferenced.map((k) => ({ blob_key: k, customer_id: customerId, first_seen: clock.now() })))
        .onConflict((oc) => oc.column('blob_key').doNothing())
        .executeTakeFirst();
      result.recorded += Number(inserted.numInsertedOrUpdatedRows ?? 0);
    };
    for await (const blob of files.list(customerFilesPrefix(customerId))) {
      batch.push(blob.key);
      if (batch.length >= BATCH) await record();
    }
    await record();

    // A candidate a row references now (its upload or restore committed) is no orphan.
    await db
      .deleteFrom('orphan_blob_candidates')
      .where('customer_id', '=', customerId)
      .where((eb) => eb.exists(eb.selectFrom('data_files').select('data_files.id').where('data_files.customer_id', '=', customerId).whereRef('data_files.blob_key', '=', 'orphan_blob_candidates.blob_key')))
      .execute();
    const due = await db
      .selectFrom('orphan_blob_candidates')
      .select('blob_key')
      .where('customer_id', '=', customerId)
      .where('first_seen', '<=', new Date(clock.now().getTime() - graceMs))
      .execute();
    let removed = 0;
    for (const { blob_key } of due) {
      await files.delete(blob_key, clock.now());
      await db.deleteFrom('orphan_blob_candidates').where('blob_key', '=', blob_key).execute();
      removed++;
    }
    const leftovers = await removeLeftovers(files, customerId, graceMs);
    if (removed > 0 || leftovers > 0) {
      result.removed += removed;
      result.leftovers += leftovers;
      await db.transaction().execute((trx) =>
        appendAudit(trx, clock, { actor, action: 'files.orphans_removed', subjectType: 'customer', subjectId: customerId, customerId, details: { objects: removed, leftovers } }),
      );
    }
  }
  return result;
}

/**
 * A process killed mid-upload or mid-export leaves the part it wrote as a temp file beside the
 * object (`<key>.hokan-tmp-*`). `list` never shows one, so the sweep above never sees it, and it
 * would otherwise hold the customer's bytes until the purge at contract end (R10.7). Those past
 * the grace period go: no upload or export writes for that long. Their age is the file's mtime,
 * which the filesystem stamps from the wall clock, so it is compared with the wall clock: an
 * injected clock running ahead would take an upload still in progress. Only the directory store
 * has such files; an S3 upload cut off is an incomplete multipart upload, which the bucket's
 * lifecycle rule aborts.
 */
async function removeLeftovers(files: BlobStore, customerId: string, graceMs: number): Promise<number> {
  if (!(files instanceof LocalDirectoryStore)) return 0;
  const wallNow = new Date();
  let n = 0;
  for (const prefix of [customerFilesPrefix(customerId), customerExportsPrefix(customerId)]) n += await files.removeLeftovers(prefix, wallNow, graceMs);
  return n;
}

export function registerOrphanBlobJobs(queue: JobQueue, files: BlobStore): void {
  queue.register(ORPHAN_BLOB_SWEEP, async ({ db, clock }) => {
    await sweepOrphanBlobs({ db, clock, files });
  });
  queue.schedule({ name: ORPHAN_BLOB_SWEEP, queue: ORPHAN_BLOB_SWEEP, everyMs: 24 * 3_600_000, offsetMs: 4 * 3_600_000 });
}
