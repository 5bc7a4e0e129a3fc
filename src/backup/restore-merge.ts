import { sql } from 'kysely';
import type { Tx } from '../core/db/database.js';
import { copyFrom, copyOut, sqlTextLiteral } from '../core/db/copy.js';

/**
 * Restoring records by merging (decision 0030). The backup's lines and the customer's live rows
 * both come in key order, so one pass over the two finds what differs without loading the whole
 * backup into the database: live keys are read as COPY output a page at a time, and only the
 * differing lines are sent, straight into data_records. The database's work is then proportional
 * to the damage, not to the customer.
 *
 * The merge works on the bytes as they come (no strings, so little garbage), and relies on both
 * streams being in the byte order of their UTF-8, which is collation "C"'s and C.UTF-8's. It checks
 * that they are; when one is not (a database with another collation), it stops with
 * MergeOrderError before anything it applied can commit: the caller rolls back to a savepoint and
 * restores by comparing in the database instead.
 */

/** Live keys read per COPY: about 1 MB of output, few round trips. */
const LIVE_PAGE = 10_000;
/** Differing lines go to the database in pieces of about this many characters. */
const CHANGES_PIECE = 1024 * 1024;

const TAB = 0x09;
const NL = 0x0a;
const BACKSLASH = 0x5c;

/** What each escape PostgreSQL writes in COPY text stands for (backslash, and \b \f \n \r \t \v). */
const UNESCAPED = new Map<number, number>([
  [BACKSLASH, BACKSLASH],
  [0x74, TAB],
  [0x6e, NL],
  [0x72, 0x0d],
  [0x62, 0x08],
  [0x66, 0x0c],
  [0x76, 0x0b],
]);

/**
 * A COPY text-format field's bytes as the value's UTF-8 bytes. Null for any other backslash
 * sequence (octal, hex, \N): not a key this merge compares.
 */
export function copyFieldValue(buf: Buffer, start: number, end: number): Buffer | null {
  const field = buf.subarray(start, end);
  if (!field.includes(BACKSLASH)) return field;
  const out = Buffer.allocUnsafe(field.length);
  let n = 0;
  for (let i = 0; i < field.length; i++) {
    const c = field[i]!;
    if (c !== BACKSLASH) {
      out[n++] = c;
      continue;
    }
    const e = UNESCAPED.get(field[++i] ?? -1);
    if (e === undefined) return null;
    out[n++] = e;
  }
  return out.subarray(0, n);
}

/** A key: collection and id as UTF-8 bytes, whose byte order is collation "C"'s (and C.UTF-8's). */
export interface RecordKey {
  collection: Buffer;
  id: Buffer;
}

export function compareKeys(a: RecordKey, b: RecordKey): number {
  return Buffer.compare(a.collection, b.collection) || Buffer.compare(a.id, b.id);
}

/**
 * A live row as the live pages give it: `collection, id, version, created_at, updated_at,
 * data_digest`, times written in UTC with DateStyle ISO.
 */
export interface LiveKey extends RecordKey {
  buf: Buffer;
  /** Tabs before version, created, updated and digest; end of the line. */
  t2: number;
  t3: number;
  t4: number;
  t5: number;
  end: number;
}

/** A format-3 backup line: `collection, id, version, data, created_at, updated_at, data_digest`. */
export interface BackupLine extends RecordKey {
  buf: Buffer;
  start: number;
  /** Tabs around version (t2, t3) and before created, updated and digest (t4, t5, t6); end of the line. */
  t2: number;
  t3: number;
  t4: number;
  t5: number;
  t6: number;
  end: number;
}

/** Parses one live-page line (see restoreRecordsByMerge's page query); null when it cannot be read. */
export function parseLiveLine(buf: Buffer, start: number, end: number): LiveKey | null {
  const t1 = buf.indexOf(TAB, start);
  const t2 = t1 < 0 ? -1 : buf.indexOf(TAB, t1 + 1);
  const t3 = t2 < 0 ? -1 : buf.indexOf(TAB, t2 + 1);
  const t4 = t3 < 0 ? -1 : buf.indexOf(TAB, t3 + 1);
  const t5 = t4 < 0 ? -1 : buf.indexOf(TAB, t4 + 1);
  if (t5 < 0 || t5 >= end) return null;
  const collection = copyFieldValue(buf, start, t1);
  const id = copyFieldValue(buf, t1 + 1, t2);
  if (!collection || !id) return null;
  return { collection, id, buf, t2, t3, t4, t5, end };
}

/** Parses one backup line; the data field holds no raw tab, so the last three fields are found from the end. */
export function parseBackupLine(buf: Buffer, start: number, end: number): BackupLine | null {
  const t1 = buf.indexOf(TAB, start);
  const t2 = t1 < 0 ? -1 : buf.indexOf(TAB, t1 + 1);
  const t3 = t2 < 0 ? -1 : buf.indexOf(TAB, t2 + 1);
  const t6 = buf.lastIndexOf(TAB, end - 1);
  const t5 = t6 <= start ? -1 : buf.lastIndexOf(TAB, t6 - 1);
  const t4 = t5 <= start ? -1 : buf.lastIndexOf(TAB, t5 - 1);
  if (t1 < 0 || t3 < 0 || t3 >= end || t4 <= t3) return null;
  const collection = copyFieldValue(buf, start, t1);
  const id = copyFieldValue(buf, t1 + 1, t2);
  if (!collection || !id) return null;
  return { collection, id, buf, start, t2, t3, t4, t5, t6, end };
}

/**
 * Whether a backup time (toISOString: `2026-11-28T10:21:00.120Z`) is the instant PostgreSQL wrote
 * as `2026-11-28 10:21:00.12+00` (UTC, DateStyle ISO: trailing zeros of the fraction dropped).
 * Anything in another form is not the same, and its row is rewritten.
 */
export function sameInstant(b: Buffer, bs: number, be: number, l: Buffer, ls: number, le: number): boolean {
  if (be - bs !== 24 || b[bs + 10] !== 0x54 || b[bs + 19] !== 0x2e || b[bs + 23] !== 0x5a) return false;
  if (le - ls < 22 || l[ls + 10] !== 0x20) return false;
  if (b.compare(l, ls, ls + 10, bs, bs + 10) !== 0 || b.compare(l, ls + 11, ls + 19, bs + 11, bs + 19) !== 0) return false;
  let fe = bs + 23;
  while (fe > bs + 20 && b[fe - 1] === 0x30) fe--;
  let p = ls + 19;
  if (fe > bs + 20) {
    if (l[p] !== 0x2e) return false;
    p++;
    if (b.compare(l, p, p + (fe - bs - 20), bs + 20, fe) !== 0) return false;
    p += fe - bs - 20;
  }
  return le - p === 3 && l[p] === 0x2b && l[p + 1] === 0x30 && l[p + 2] === 0x30;
}

/** The backup's line holds what the live row holds: version, both times and the data's digest. */
export function sameRow(b: BackupLine, r: LiveKey): boolean {
  if (b.buf.compare(r.buf, r.t2 + 1, r.t3, b.t2 + 1, b.t3) !== 0) return false;
  if (b.buf.compare(r.buf, r.t5 + 1, r.end, b.t6 + 1, b.end) !== 0) return false;
  // A backup without a digest (\N) never equals the live digest (a uuid), so it is rewritten.
  return sameInstant(b.buf, b.t4 + 1, b.t5, r.buf, r.t3 + 1, r.t4) && sameInstant(b.buf, b.t5 + 1, b.t6, r.buf, r.t4 + 1, r.t5);
}

export type MergeStep = { op: 'insert'; line: BackupLine } | { op: 'replace'; line: BackupLine } | { op: 'delete'; key: LiveKey };

/** One of the two streams is not in byte order: the merge cannot be trusted, nothing it did may commit. */
export class MergeOrderError extends Error {
  constructor(what: string) {
    super(`restore by merging stopped: ${what}`);
    this.name = 'MergeOrderError';
  }
}

/**
 * Merges two key-ordered streams: backup lines missing from the live rows are inserted, lines whose
 * live row differs replace it, live rows the backup does not hold are deleted. Rows that are the same
 * yield nothing. Throws MergeOrderError when either stream is out of order, or holds a line it
 * cannot read (null).
 */
export async function* mergeByKey(live: AsyncIterable<LiveKey | null>, backup: AsyncIterable<BackupLine | null>): AsyncGenerator<MergeStep> {
  const lines = backup[Symbol.asyncIterator]();
  let previous: BackupLine | null = null;
  let count = 0;
  const nextLine = async (): Promise<BackupLine | null> => {
    const n = await lines.next();
    if (n.done) return null;
    count++;
    const b = n.value;
    if (!b) throw new MergeOrderError(`backup line ${count} is not a record line this merge can read`);
    if (previous && compareKeys(previous, b) >= 0) throw new MergeOrderError(`backup line ${count} is not in byte order`);
    previous = b;
    return b;
  };
  try {
    let b = await nextLine();
    let lastLive: LiveKey | null = null;
    for await (const r of live) {
      if (!r) throw new MergeOrderError('a live key could not be read');
      if (lastLive && compareKeys(lastLive, r) >= 0) throw new MergeOrderError('the live rows are not in byte order');
      lastLive = r;
      while (b && compareKeys(b, r) < 0) {
        yield { op: 'insert', line: b };
        b = await nextLine();
      }
      if (b && compareKeys(b, r) === 0) {
        if (!sameRow(b, r)) yield { op: 'replace', line: b };
        b = await nextLine();
      } else {
        yield { op: 'delete', key: r };
      }
    }
    while (b) {
      yield { op: 'insert', line: b };
      b = await nextLine();
    }
  } finally {
    await lines.return?.(undefined);
  }
}

/** Each line of a byte stream as (buffer, start, end), the newline left out. */
export async function* lineRanges(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<[Buffer, number, number]> {
  let rest: Buffer | null = null;
  for await (const chunk of chunks) {
    const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const buf: Buffer = rest ? Buffer.concat([rest, piece]) : piece;
    let start = 0;
    for (let nl = buf.indexOf(NL); nl >= 0; nl = buf.indexOf(NL, start)) {
      yield [buf, start, nl];
      start = nl + 1;
    }
    rest = start < buf.length ? buf.subarray(start) : null;
  }
  if (rest) yield [rest, 0, rest.length];
}

/**
 * Runs database work one operation at a time, in the order it was asked for: the live pages and
 * the changes share the transaction's one connection, and a page must be read before changes to
 * keys after it are applied. After a failure every later operation fails with the same error.
 */
class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  #failure: { error: unknown } | null = null;

  run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(() => {
      if (this.#failure) throw this.#failure.error;
      return op();
    });
    this.#tail = p.catch((error: unknown) => {
      this.#failure ??= { error };
    });
    // A page asked for ahead and never awaited (the merge stopped) must not fail unhandled.
    p.catch(() => {});
    return p;
  }

  /** Waits for everything asked for; throws the first failure. */
  async drain(): Promise<void> {
    await this.#tail;
    if (this.#failure) throw this.#failure.error;
  }
}

export interface MergeResult {
  lines: number;
  inserted: number;
  replaced: number;
  deleted: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Restores one customer's records inside `trx` by merging the backup's format-3 lines (`chunks`)
 * with the live rows. The caller holds the customer's data lock (no writer changes a row between
 * its reading here and its change), checks the lines against the manifest before it commits, and
 * on MergeOrderError rolls back to a savepoint taken before this call.
 */
export async function restoreRecordsByMerge(
  trx: Tx,
  customerId: string,
  chunks: AsyncIterable<Buffer | string>,
  hooks: { onLines?(lines: number): void } = {},
): Promise<MergeResult> {
  if (!UUID.test(customerId)) throw new Error(`not a customer id: ${customerId}`);
  // Times as COPY writes them must read like the backup's (sameInstant); an index scan in key order
  // serves each page (without statistics the planner would sort the customer's rows for every page).
  await sql`set local timezone to 'UTC'`.execute(trx);
  await sql`set local datestyle to 'ISO, YMD'`.execute(trx);
  await sql`set local enable_bitmapscan = off`.execute(trx);
  await sql`set local enable_sort = off`.execute(trx);

  const db = new Serial();
  const customer = sqlTextLiteral(customerId);
  const page = (after: LiveKey | null) =>
    db.run(() =>
      copyOut(
        trx,
        `copy (select collection, id, version, created_at, updated_at, data_digest from data_records
                where customer_id = ${customer}${after ? ` and (collection, id) > (${sqlTextLiteral(after.collection.toString('utf8'))}, ${sqlTextLiteral(after.id.toString('utf8'))})` : ''}
                order by collection, id limit ${LIVE_PAGE}) to stdout`,
      ),
    );
  async function* liveKeys(): AsyncGenerator<LiveKey | null> {
    let pending: Promise<Buffer> | null = page(null);
    while (pending) {
      const buf: Buffer = await pending;
      const keys: Array<LiveKey | null> = [];
      for (let start = 0, nl = buf.indexOf(NL); nl >= 0; start = nl + 1, nl = buf.indexOf(NL, start)) keys.push(parseLiveLine(buf, start, nl));
      const last = keys[keys.length - 1];
      // The next page is asked for before any change from this one is queued, so it is read
      // before the changes (whose keys all sort at or before its start) are applied.
      pending = keys.length === LIVE_PAGE && last ? page(last) : null;
      yield* keys;
    }
  }

  let lines = 0;
  async function* backupLines(): AsyncGenerator<BackupLine | null> {
    for await (const [buf, start, end] of lineRanges(chunks)) {
      lines++;
      if (lines % 5_000 === 0) hooks.onLines?.(lines);
      yield parseBackupLine(buf, start, end);
    }
  }

  const result: MergeResult = { lines: 0, inserted: 0, replaced: 0, deleted: 0 };
  let collections: string[] = [];
  let ids: string[] = [];
  let rows: Buffer[] = [];
  let size = 0;
  let applying: Promise<void> = Promise.resolve();
  const flush = async () => {
    if (collections.length === 0 && rows.length === 0) return;
    const piece = { collections, ids, text: Buffer.concat(rows, size) };
    collections = [];
    ids = [];
    rows = [];
    size = 0;
    // One piece applies while the next is built; never more, so memory stays bounded.
    await applying;
    applying = db.run(async () => {
      if (piece.collections.length > 0) {
        const deleted = await sql`delete from data_records d using unnest(${piece.collections}::text[], ${piece.ids}::text[]) as k(collection, id)
            where d.customer_id = ${customerId} and d.collection = k.collection and d.id = k.id`.execute(trx);
        if (Number(deleted.numAffectedRows ?? 0) !== piece.collections.length) {
          throw new Error(`the customer's records changed during the restore (${deleted.numAffectedRows ?? 0} of ${piece.collections.length} rows to replace were found)`);
        }
      }
      if (piece.text.length > 0) await copyFrom(trx, 'copy data_records (customer_id, collection, id, version, data, created_at, updated_at) from stdin', once(piece.text));
    });
  };
  const prefix = Buffer.from(`${customerId}\t`);
  try {
    for await (const step of mergeByKey(liveKeys(), backupLines())) {
      if (step.op !== 'insert') {
        const key = step.op === 'delete' ? step.key : step.line;
        collections.push(key.collection.toString('utf8'));
        ids.push(key.id.toString('utf8'));
      }
      if (step.op !== 'delete') {
        const { buf, start, t6 } = step.line;
        rows.push(prefix, buf.subarray(start, t6), NEWLINE);
        size += prefix.length + (t6 - start) + 1;
      }
      result[step.op === 'insert' ? 'inserted' : step.op === 'replace' ? 'replaced' : 'deleted']++;
      if (size >= CHANGES_PIECE || collections.length >= LIVE_PAGE) await flush();
    }
    await flush();
    await db.drain();
  } catch (err) {
    // Nothing may still run when the caller rolls back.
    await db.drain().catch(() => {});
    throw err;
  }
  for (const setting of ['timezone', 'datestyle', 'enable_bitmapscan', 'enable_sort']) await sql`set local ${sql.raw(setting)} to default`.execute(trx);
  hooks.onLines?.(lines);
  result.lines = lines;
  return result;
}

const NEWLINE = Buffer.from('\n');

async function* once(piece: Buffer): AsyncGenerator<Buffer> {
  yield piece;
}
