import { sql } from 'kysely';
import type { DbOrTx } from '../core/db/database.js';
import { copyFrom } from '../core/db/copy.js';
import type { RecordBatch, RecordsPartReader } from './records-part.js';

/** Lines compared per statement: enough to amortise a round trip, few enough to keep memory small. */
const COMPARE_BATCH = 5000;
/** Changed lines gathered before one COPY carries them into data_records. */
const COPY_FLUSH_BYTES = 4 * 1024 * 1024;

export interface RecordsApplied {
  /** Lines read from the part. */
  lines: number;
  /** Rows the restore wrote (the rest were already identical). */
  written: number;
}

/**
 * Format 3 (decision 0028): makes the customer's records those of the part, writing only what
 * differs. Each batch of lines is compared with the live rows of the same keys by version, times
 * and data digest in one statement, which also deletes the live rows that differ and notes the
 * batch's keys; only the lines without an identical live row then travel, by COPY, straight into
 * data_records. Live rows whose keys the part does not hold are deleted at the end. The caller's
 * transaction makes it all or nothing, and commits only after the part is authenticated.
 */
export async function replaceRecordsByDigest(
  trx: DbOrTx,
  customerId: string,
  records: RecordsPartReader,
  opts: { onLines: (lines: number) => void; checkStop: () => void },
): Promise<RecordsApplied> {
  await sql`create temporary table restore_keys (collection text not null, id text not null) on commit drop`.execute(trx);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let written = 0;
  const suffix = Buffer.from(`${customerId}\n`);
  const flush = async () => {
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    pendingBytes = 0;
    written += await copyFrom(trx, 'copy data_records (collection, id, version, data, created_at, updated_at, customer_id) from stdin', oneChunk(Buffer.concat(lines)));
  };
  for await (const batch of records.batches(COMPARE_BATCH, opts.onLines)) {
    opts.checkStop();
    const identical = await compareBatch(trx, customerId, batch);
    for (let i = 0; i < batch.lines.length; i++) {
      if (identical.has(i + 1)) continue;
      // The line less its digest, which the database computes itself, plus the customer it belongs to.
      const line = batch.lines[i]!.subarray(0, batch.digestAt[i]!);
      pending.push(line, suffix);
      pendingBytes += line.length + suffix.length;
    }
    if (pendingBytes >= COPY_FLUSH_BYTES) await flush();
  }
  await flush();
  opts.checkStop();
  // The scratch key table has no statistics; a hash join is right at any size (decision 0026).
  await sql`set local enable_nestloop = off`.execute(trx);
  await sql`set local enable_mergejoin = off`.execute(trx);
  await sql`delete from data_records d where d.customer_id = ${customerId}
      and not exists (select 1 from restore_keys k where k.collection = d.collection and k.id = d.id)`.execute(trx);
  await sql`set local enable_nestloop to default`.execute(trx);
  await sql`set local enable_mergejoin to default`.execute(trx);
  return { lines: records.lines, written };
}

/**
 * One statement per batch: notes its keys, deletes the live rows of those keys that differ, and
 * returns the (1-based) positions of the lines whose live row is identical. The delete and the
 * select see the same snapshot, so a row is either kept or replaced, never both.
 */
async function compareBatch(trx: DbOrTx, customerId: string, b: RecordBatch): Promise<Set<number>> {
  const result = await sql<{ n: string }>`with b as (
      select * from unnest(${b.collection}::text[], ${b.id}::text[], ${b.version}::int[], ${b.createdAt}::timestamptz[], ${b.updatedAt}::timestamptz[], ${b.digest}::uuid[])
        with ordinality as b(collection, id, version, created_at, updated_at, data_digest, n)
    ), noted as (
      insert into restore_keys (collection, id) select collection, id from b
    ), replaced as (
      delete from data_records d using b
      where d.customer_id = ${customerId} and d.collection = b.collection and d.id = b.id
        and (d.version, d.created_at, d.updated_at, d.data_digest) is distinct from (b.version, b.created_at, b.updated_at, b.data_digest)
    )
    select b.n from b join data_records d on d.customer_id = ${customerId} and d.collection = b.collection and d.id = b.id
    where (d.version, d.created_at, d.updated_at, d.data_digest) is not distinct from (b.version, b.created_at, b.updated_at, b.data_digest)`.execute(trx);
  return new Set(result.rows.map((r) => Number(r.n)));
}

async function* oneChunk(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

/**
 * Formats 1 and 2, whose lines carry no digest: the whole part goes into a scratch table (no
 * indexes, so COPY runs at full speed), the digests are computed there from the JSON as the
 * database writes it, and from there only what differs reaches data_records (decision 0025).
 * `copied` is called once the part is in the scratch table.
 */
export async function replaceRecordsViaScratch(
  trx: DbOrTx,
  customerId: string,
  records: RecordsPartReader,
  opts: { onLines: (lines: number) => void; checkStop: () => void; copied: () => void },
): Promise<number> {
  await sql`create temporary table restore_records (collection text not null, id text not null, version integer not null, data text not null, created_at timestamptz not null, updated_at timestamptz not null, data_digest uuid) on commit drop`.execute(trx);
  const loaded = await copyFrom(trx, `copy restore_records (${records.copyColumns}) from stdin`, untilStopped(records.copyChunks(opts.onLines), opts.checkStop));
  await sql`update restore_records set data_digest = md5(data::jsonb::text)::uuid`.execute(trx);
  opts.copied();
  await sql`set local enable_nestloop = off`.execute(trx);
  await sql`set local enable_mergejoin = off`.execute(trx);
  await sql`delete from data_records d where d.customer_id = ${customerId} and not exists (
      select 1 from restore_records r where r.collection = d.collection and r.id = d.id and r.version = d.version
        and r.created_at = d.created_at and r.updated_at = d.updated_at and r.data_digest = d.data_digest)`.execute(trx);
  await sql`insert into data_records (customer_id, collection, id, version, data, created_at, updated_at)
      select ${customerId}::uuid, r.collection, r.id, r.version, r.data::jsonb, r.created_at, r.updated_at from restore_records r
      where not exists (select 1 from data_records d where d.customer_id = ${customerId} and d.collection = r.collection and d.id = r.id)`.execute(trx);
  await sql`set local enable_nestloop to default`.execute(trx);
  await sql`set local enable_mergejoin to default`.execute(trx);
  return loaded;
}

async function* untilStopped<T>(source: AsyncIterable<T>, checkStop: () => void): AsyncGenerator<T> {
  for await (const item of source) {
    checkStop();
    yield item;
  }
}
