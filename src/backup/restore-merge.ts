import { StringDecoder } from 'node:string_decoder';
import { sql } from 'kysely';
import type { Tx } from '../core/db/database.js';
import { copyFrom, copyText } from '../core/db/copy.js';

/**
 * Restoring records by merging (decision 0030). The backup's lines and the customer's live rows
 * arrive in the same key order, (collection, id) in the database's byte order, so one pass over
 * both finds what differs without loading the whole backup into the database: only the lines that
 * differ are copied in, and the database's work is proportional to the damage, not to the
 * customer. Used where the restore's transaction is the only session (the embedded database): no
 * other writer can change a live row between its reading here and the statements that apply
 * the difference.
 */

/** Live rows fetched per round trip: bounded memory, few round trips. */
const LIVE_PAGE = 5_000;
/** Changed lines are sent to the database in pieces of about this size; one loads while the next is built. */
const CHANGES_PIECE = 8 * 1024 * 1024;

/** Compares two strings by Unicode code point, which is the byte order of their UTF-8 (collation "C"). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts surrogates (astral code points) below U+E000–U+FFFF; code point order puts them above.
    const fx = x >= 0xd800 && x <= 0xdfff ? x + 0x2000 : x >= 0xe000 ? x - 0x800 : x;
    const fy = y >= 0xd800 && y <= 0xdfff ? y + 0x2000 : y >= 0xe000 ? y - 0x800 : y;
    return fx - fy;
  }
  return a.length - b.length;
}

/** Undoes copyText's escapes; null for any other backslash sequence (not a line hokan wrote). */
export function copyUnescape(value: string): string | null {
  if (!value.includes('\\')) return value;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = value[++i];
    if (e === '\\') out += '\\';
    else if (e === 't') out += '\t';
    else if (e === 'n') out += '\n';
    else if (e === 'r') out += '\r';
    else return null;
  }
  return out;
}

/** A backup line's key and what decides whether the live row is the same. */
interface BackupLine {
  line: string;
  collection: string;
  id: string;
  /** version, created, updated and digest as compared with a live row's; null: never the same. */
  sameAs: string | null;
}

/** A live row as the cursor gives it. */
interface LiveRow {
  collection: string;
  id: string;
  version: number;
  ca: string;
  ua: string;
  dg: string | null;
}

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The backup writes times as toISOString (milliseconds); the live side gives microseconds. */
function microsOf(iso: string): string | null {
  return ISO_MS.test(iso) ? `${iso.slice(0, 23)}000` : null;
}

function parseLine(line: string): BackupLine | null {
  // collection \t id \t version \t data \t created \t updated \t digest — data holds no raw tab.
  const t1 = line.indexOf('\t');
  const t2 = line.indexOf('\t', t1 + 1);
  const t3 = line.indexOf('\t', t2 + 1);
  const t6 = line.lastIndexOf('\t');
  const t5 = line.lastIndexOf('\t', t6 - 1);
  const t4 = line.lastIndexOf('\t', t5 - 1);
  if (t1 < 0 || t2 < 0 || t3 < 0 || t4 <= t3) return null;
  const collection = copyUnescape(line.slice(0, t1));
  const id = copyUnescape(line.slice(t1 + 1, t2));
  if (collection === null || id === null) return null;
  const created = microsOf(line.slice(t4 + 1, t5));
  const updated = microsOf(line.slice(t5 + 1, t6));
  const digest = line.slice(t6 + 1);
  const same = created && updated && digest !== '\\N' ? `${line.slice(t2 + 1, t3)}|${created}|${updated}|${digest}` : null;
  return { line, collection, id, sameAs: same };
}

function liveSame(r: LiveRow): string {
  return `${r.version}|${r.ca}|${r.ua}|${r.dg ?? 'null'}`;
}

function compareKeys(a: { collection: string; id: string }, b: { collection: string; id: string }): number {
  return compareCodePoints(a.collection, b.collection) || compareCodePoints(a.id, b.id);
}

/** The backup's lines, one at a time, from the decrypted part's chunks. */
async function* linesOf(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of chunks) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      yield text.slice(start, nl);
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  rest += decoder.end();
  if (rest !== '') yield rest;
}

async function* once(piece: string): AsyncGenerator<string> {
  yield piece;
}

export type MergeOutcome = { merged: true; lines: number; changed: number } | { merged: false; reason: string };

/**
 * Merges the backup's lines with the live rows inside `trx` and leaves the difference in the
 * scratch table restore_changes, for applyMergedRecords: live rows that differ or are not in the
 * backup are to go ('R', 'D'), and the backup's lines that differ or are missing are to come in
 * ('R', 'I'). Returns `merged: false`, having changed nothing in data_records, when the database or
 * the backup does not keep the byte order this relies on; the caller then restores by comparing
 * inside the database (decision 0026). The caller checks the lines against the manifest before it
 * applies and commits.
 */
export async function restoreRecordsByMerge(
  trx: Tx,
  customerId: string,
  chunks: AsyncIterable<Buffer | string>,
  hooks: { onLines?(lines: number): void; stopIfAborted?(): void } = {},
): Promise<MergeOutcome> {
  const collation = (await sql<{ c: string }>`select datcollate as c from pg_database where datname = current_database()`.execute(trx)).rows[0]?.c;
  if (collation !== 'C' && collation !== 'POSIX') return { merged: false, reason: `the database's collation is ${collation ?? 'unknown'}, not byte order` };

  await sql`create temporary table restore_changes (op text not null, collection text not null, id text not null, version integer, data text, created_at timestamptz, updated_at timestamptz, data_digest uuid) on commit drop`.execute(trx);
  await sql`declare restore_live no scroll cursor for
      select collection, id, version,
             to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as ca,
             to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as ua,
             data_digest::text as dg
        from data_records where customer_id = ${customerId} order by collection, id`.execute(trx);
  const fetchLive = () => {
    const page = sql<LiveRow>`fetch forward ${sql.raw(String(LIVE_PAGE))} from restore_live`.execute(trx).then((r) => r.rows);
    page.catch(() => {}); // a page asked for ahead and never read (the merge stopped) must not fail unhandled
    return page;
  };

  let lines = 0;
  let changed = 0;
  let out: string[] = [];
  let outSize = 0;
  let loading: Promise<number> | null = null;
  const flush = async (force: boolean) => {
    if (outSize === 0 || (!force && outSize < CHANGES_PIECE)) return;
    const piece = out.join('');
    out = [];
    outSize = 0;
    if (loading) await loading;
    loading = copyFrom(trx, 'copy restore_changes (op, collection, id, version, data, created_at, updated_at, data_digest) from stdin', once(piece));
    loading.catch(() => {}); // awaited below; its failure must not go unhandled meanwhile
  };
  const emit = (text: string) => {
    out.push(text);
    outSize += text.length;
    changed++;
  };
  const insertLine = (b: BackupLine) => emit(`I\t${b.line}\n`);
  const replaceLine = (b: BackupLine) => emit(`R\t${b.line}\n`);
  const deleteRow = (r: LiveRow) => emit(`D\t${copyText(r.collection)}\t${copyText(r.id)}\t\\N\t\\N\t\\N\t\\N\t\\N\n`);

  const backup = linesOf(chunks)[Symbol.asyncIterator]();
  let previous: BackupLine | null = null;
  let unordered: string | null = null;
  const nextBackup = async (): Promise<BackupLine | null> => {
    const n = await backup.next();
    if (n.done) return null;
    lines++;
    if (lines % 5_000 === 0) {
      hooks.onLines?.(lines);
      hooks.stopIfAborted?.();
    }
    const b = parseLine(n.value);
    if (!b) {
      unordered = `line ${lines} is not a record line of this format`;
      return null;
    }
    if (previous && compareKeys(previous, b) >= 0) {
      unordered = `line ${lines} is not in key order`;
      return null;
    }
    previous = b;
    return b;
  };

  try {
    let b = await nextBackup();
    let pending = fetchLive();
    for (;;) {
      const page = await pending;
      // The next page is asked for at once: the database reads it while this one is merged.
      if (page.length === LIVE_PAGE) pending = fetchLive();
      for (const r of page) {
        while (b && compareKeys(b, r) < 0) {
          insertLine(b);
          b = await nextBackup();
        }
        if (unordered) break;
        if (b && compareKeys(b, r) === 0) {
          if (b.sameAs !== liveSame(r)) replaceLine(b);
          b = await nextBackup();
        } else {
          deleteRow(r);
        }
        await flush(false);
      }
      if (unordered || page.length < LIVE_PAGE) break;
    }
    while (b && !unordered) {
      insertLine(b);
      b = await nextBackup();
      await flush(false);
    }
    if (unordered) {
      // Nothing of data_records was touched yet; the scratch table goes with the transaction.
      await pending.catch(() => []);
      if (loading) await (loading as Promise<number>).catch(() => 0);
      await sql`close restore_live`.execute(trx);
      return { merged: false, reason: `the backup's ${unordered}` };
    }
    await flush(true);
    if (loading) await loading;
  } finally {
    // Stops reading the part when the merge ended early (a failure or a fallback).
    await backup.return?.(undefined);
  }
  hooks.onLines?.(lines);
  await sql`close restore_live`.execute(trx);
  return { merged: true, lines, changed };
}

/** Applies what restoreRecordsByMerge found: the differing live rows go, the backup's lines come in. */
export async function applyMergedRecords(trx: Tx, customerId: string): Promise<void> {
  await sql`delete from data_records d using restore_changes c
             where d.customer_id = ${customerId} and c.op <> 'I' and d.collection = c.collection and d.id = c.id`.execute(trx);
  await sql`insert into data_records (customer_id, collection, id, version, data, created_at, updated_at)
            select ${customerId}::uuid, collection, id, version, data::jsonb, created_at, updated_at from restore_changes where op <> 'D'`.execute(trx);
}
