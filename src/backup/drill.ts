import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import type { Clock } from '../core/clock.js';
import { copyFrom } from '../core/db/copy.js';
import type { Db } from '../core/db/database.js';
import { latestGoodBackup } from './catalog.js';
import { customerDataKey } from './keys.js';
import { recordLineCopy, recordLineCopyV2, recordLineNdjson } from './manifest.js';
import { RecordsPartReader } from './records-part.js';
import type { BackupSettings } from './settings.js';
import { HashingStream } from './streams.js';
import { readManifest, targetStore, verifyBackup, type TargetName } from './verify.js';

export interface DrillResult {
  backupId: string;
  customerId: string;
  ok: boolean;
  records: { expected: number; restored: number; byCollection: Record<string, { expected: number; restored: number }> };
  recordsSha256Matches: boolean;
  filesChecked: number;
  problems: string[];
}

class DrillRollback extends Error {}

/**
 * The restore drill: the latest backup of a customer is restored into a scratch table (a temporary
 * table, rolled back at the end) and read back; counts per collection and the hash of the re-read
 * records must equal what the backup recorded at its source. Files are decrypted and hashed by
 * the verify pass. Results are kept in backup_checks (kind 'drill').
 */
export async function restoreDrill(deps: { db: Db; clock: Clock; settings: BackupSettings }, customerId: string, target: TargetName = 'primary'): Promise<DrillResult | null> {
  const { db, clock, settings } = deps;
  const backup = await latestGoodBackup(db, customerId);
  if (!backup) return null;
  const startedAt = clock.now();
  const result: DrillResult = { backupId: backup.id, customerId, ok: false, records: { expected: 0, restored: 0, byCollection: {} }, recordsSha256Matches: false, filesChecked: 0, problems: [] };
  try {
    const verified = await verifyBackup(deps, backup.id, target, 'verify');
    result.filesChecked = verified.files ?? 0;
    result.problems.push(...verified.problems.map((p) => `${p.part}: ${p.problem}`));
    const store = targetStore(settings, target);
    const { key } = await customerDataKey(db, clock, settings.masterKey, settings.masterKeyFingerprint, customerId);
    const manifest = await readManifest(store, backup, key);
    result.records.expected = manifest.records.count;
    for (const [c, n] of Object.entries(manifest.records.collections)) result.records.byCollection[c] = { expected: n, restored: 0 };
    await db
      .transaction()
      .execute(async (trx) => {
        await sql`create temporary table drill_records (collection text not null, id text not null, version integer not null, data jsonb not null, created_at timestamptz not null, updated_at timestamptz not null, data_digest uuid, primary key (collection, id)) on commit drop`.execute(trx);
        const reader = await RecordsPartReader.open(store, key, customerId, backup.id, manifest);
        try {
          await copyFrom(trx, `copy drill_records (${reader.copyColumns}) from stdin`, reader.copyChunks());
        } finally {
          reader.close();
        }
        await reader.finish();
        // Read the scratch copy back in backup order and re-serialise it exactly as that backup did,
        // the digest computed afresh from the restored data: a backup whose digests do not match
        // its records would make a restore keep rows it should replace.
        const lineOf = { 'hokan-backup/1': recordLineNdjson, 'hokan-backup/2': recordLineCopyV2, 'hokan-backup/3': recordLineCopy }[manifest.format];
        const reread = new HashingStream();
        const drain = new Writable({ write: (_c, _e, cb) => cb() });
        reread.pipe(drain);
        let after: { c: string; i: string } | null = null;
        for (;;) {
          type Row = { collection: string; id: string; version: number; data_text: string; created_at: Date; updated_at: Date; digest: string };
          const cols = sql`collection, id, version, data::text as data_text, created_at, updated_at, md5(data::text)::uuid as digest`;
          const page: { rows: Row[] } = after
            ? await sql<Row>`select ${cols} from drill_records where (collection, id) > (${after.c}, ${after.i}) order by collection, id limit 1000`.execute(trx)
            : await sql<Row>`select ${cols} from drill_records order by collection, id limit 1000`.execute(trx);
          for (const r of page.rows) {
            reread.write(lineOf(r.collection, r.id, r.version, r.data_text, new Date(r.created_at), new Date(r.updated_at), r.digest));
            result.records.restored++;
            const bucket = (result.records.byCollection[r.collection] ??= { expected: 0, restored: 0 });
            bucket.restored++;
          }
          if (page.rows.length < 1000) break;
          const last: Row = page.rows[page.rows.length - 1]!;
          after = { c: last.collection, i: last.id };
        }
        reread.end();
        await new Promise((resolve) => drain.on('finish', resolve));
        result.recordsSha256Matches = reread.sha256 === manifest.records.plainSha256;
        throw new DrillRollback();
      })
      .catch((e: unknown) => {
        if (!(e instanceof DrillRollback)) throw e;
      });
    if (result.records.restored !== result.records.expected) result.problems.push(`restored ${result.records.restored} records, the backup holds ${result.records.expected}`);
    for (const [c, v] of Object.entries(result.records.byCollection)) if (v.expected !== v.restored) result.problems.push(`collection ${c}: restored ${v.restored} of ${v.expected}`);
    if (!result.recordsSha256Matches) result.problems.push('the records read back from the scratch copy do not hash to the source');
  } catch (err) {
    result.problems.push((err as Error).message);
  }
  result.ok = result.problems.length === 0;
  await db
    .insertInto('backup_checks')
    .values({ id: randomUUID(), backup_id: backup.id, kind: 'drill', target, started_at: startedAt, finished_at: clock.now(), ok: result.ok, detail: JSON.stringify(result) })
    .execute();
  return result;
}
