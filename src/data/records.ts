import { sql } from 'kysely';
import type { Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, Tx } from '../core/db/database.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { changeCustomerData, logDataAccess, logDataRead } from './access-log.js';

/** Who is touching a customer's data; the customer comes from the credential, never from input. */
export interface DataAccessor {
  customerId: string;
  actor: Actor;
  sourceIp: string | null;
}

export interface RecordView {
  collection: string;
  id: string;
  version: number;
  data: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/**
 * How deep a record or a filter may nest: far beyond any real record, far short of the stack
 * overflow that serialising a value thousands of levels deep ends in.
 */
export const MAX_JSON_DEPTH = 64;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export interface JsonProblem {
  /** Keys and indexes from the value checked down to the offending part. */
  path: Array<string | number>;
  message: string;
}

function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'contains U+0000 (NUL), which PostgreSQL cannot store in JSON';
  if (LONE_SURROGATE.test(text)) return 'contains an unpaired UTF-16 surrogate, which is no Unicode character';
  return null;
}

/**
 * Why PostgreSQL's jsonb would refuse a value (or the server fail on it), or null if it can be
 * stored (R3.1): strings and keys with NUL or a lone surrogate, nesting deeper than
 * MAX_JSON_DEPTH, numbers beyond a double (1e999 parses as Infinity, which would be stored as
 * null). Walked with an explicit stack, so a hostile depth cannot overflow this check either.
 */
export function jsonValueProblem(value: unknown): JsonProblem | null {
  type Node = { value: unknown; key: string | number | null; parent: Node | null; depth: number };
  const pathOf = (n: Node): Array<string | number> => {
    const path: Array<string | number> = [];
    for (let at: Node | null = n; at && at.key !== null; at = at.parent) path.unshift(at.key);
    return path;
  };
  const stack: Node[] = [{ value, key: null, parent: null, depth: 0 }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const v = node.value;
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return { path: pathOf(node), message: `the text ${problem}` };
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { path: pathOf(node), message: 'the number is too large to store' };
    } else if (v !== null && typeof v === 'object') {
      if (node.depth >= MAX_JSON_DEPTH) return { path: pathOf(node), message: `nests deeper than ${MAX_JSON_DEPTH} levels` };
      const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((item, i) => [i, item]) : Object.entries(v);
      for (const [key, item] of entries) {
        const child: Node = { value: item, key, parent: node, depth: node.depth + 1 };
        const problem = typeof key === 'string' ? textProblem(key) : null;
        if (problem) return { path: pathOf(child), message: `the key ${problem}` };
        stack.push(child);
      }
    }
  }
  return null;
}

export const COLLECTION_RE = /^[a-z][a-z0-9_-]{0,63}$/;
export const RECORD_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const MAX_PAGE = 500;

type Row = { collection: string; id: string; version: number; data: unknown; created_at: Date; updated_at: Date };
const view = (r: Row): RecordView => ({
  collection: r.collection,
  id: r.id,
  version: r.version,
  data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown>,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

const notFound = (collection: string, id: string) => errors.notFound('レコード / record', `${collection}/${id}`);

/**
 * What an If-Match asks of the record's current version (RFC 9110 §13.1.1): any version at all
 * (`*`), or one of those listed.
 */
export type VersionCondition = 'any' | readonly number[];

function versionMismatch(current: number, expected: readonly number[]): HokanError {
  const named = expected.join(', ');
  return new HokanError(
    'precondition_failed',
    bi(
      `レコードは他の更新により版 ${current} になっています（指定された版: ${named}）。読み直してから更新してください。`,
      `The record is at version ${current}, not ${expected.length > 1 ? `one of ${named}` : named}: someone else changed it. Read it again, then update.`,
    ),
    [{ path: 'If-Match', message: `current version is ${current}` }],
  );
}

/** Locks the record for a change and checks the version the caller read (null: no check). */
async function lockedRecord(trx: Tx, who: DataAccessor, collection: string, id: string, expected: VersionCondition | null): Promise<{ version: number }> {
  const current = await trx
    .selectFrom('data_records')
    .select('version')
    .where('customer_id', '=', who.customerId)
    .where('collection', '=', collection)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!current) throw notFound(collection, id);
  if (expected !== null && expected !== 'any' && !expected.includes(current.version)) throw versionMismatch(current.version, expected);
  return current;
}

export async function createRecord(db: Db, clock: Clock, who: DataAccessor, collection: string, input: { id: string; data: Record<string, unknown> }): Promise<RecordView> {
  return changeCustomerData(db, who.customerId, async (trx) => {
    const now = clock.now();
    const row = await trx
      .insertInto('data_records')
      .values({ customer_id: who.customerId, collection, id: input.id, version: 1, data: JSON.stringify(input.data), created_at: now, updated_at: now })
      .onConflict((oc) => oc.columns(['customer_id', 'collection', 'id']).doNothing())
      .returning(['collection', 'id', 'version', 'data', 'created_at', 'updated_at'])
      .executeTakeFirst();
    if (!row) throw errors.duplicate('レコードID / record id', `${collection}/${input.id}`);
    await logDataAccess(trx, clock, { ...who, operation: 'create', targetType: 'record', collection, targetId: input.id });
    return view(row);
  });
}

export async function getRecord(db: Db, clock: Clock, who: DataAccessor, collection: string, id: string): Promise<RecordView> {
  const row = await db
    .selectFrom('data_records')
    .select(['collection', 'id', 'version', 'data', 'created_at', 'updated_at'])
    .where('customer_id', '=', who.customerId)
    .where('collection', '=', collection)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw notFound(collection, id);
  await logDataRead(db, clock, { ...who, operation: 'read', targetType: 'record', collection, targetId: id });
  return view(row);
}

/** Optimistic concurrency: the caller names the version it read (If-Match); a stale one is 412. */
export async function updateRecord(db: Db, clock: Clock, who: DataAccessor, collection: string, id: string, expected: VersionCondition, data: Record<string, unknown>): Promise<RecordView> {
  return changeCustomerData(db, who.customerId, async (trx) => {
    const current = await lockedRecord(trx, who, collection, id, expected);
    const row = await trx
      .updateTable('data_records')
      .set({ data: JSON.stringify(data), version: current.version + 1, updated_at: clock.now() })
      .where('customer_id', '=', who.customerId)
      .where('collection', '=', collection)
      .where('id', '=', id)
      .returning(['collection', 'id', 'version', 'data', 'created_at', 'updated_at'])
      .executeTakeFirstOrThrow();
    await logDataAccess(trx, clock, { ...who, operation: 'update', targetType: 'record', collection, targetId: id });
    return view(row);
  });
}

export async function deleteRecord(db: Db, clock: Clock, who: DataAccessor, collection: string, id: string, expected: VersionCondition | null): Promise<void> {
  await changeCustomerData(db, who.customerId, async (trx) => {
    await lockedRecord(trx, who, collection, id, expected);
    await trx.deleteFrom('data_records').where('customer_id', '=', who.customerId).where('collection', '=', collection).where('id', '=', id).execute();
    await logDataAccess(trx, clock, { ...who, operation: 'delete', targetType: 'record', collection, targetId: id });
  });
}

/** The cursor only carries the last id seen; the customer always comes from the credential. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string' && RECORD_ID_RE.test(parsed.after)) return parsed.after;
  } catch {
    // fall through to the error below
  }
  throw errors.invalidField('cursor', 'カーソルが正しくありません。前の応答の nextCursor をそのまま渡してください。', 'is not a cursor from a previous page');
}

export interface RecordPage {
  records: RecordView[];
  nextCursor: string | null;
}

/** Lists by id order; `where` is JSON containment on the record (`{"status":"入所中"}`). */
export async function listRecords(
  db: Db,
  clock: Clock,
  who: DataAccessor,
  collection: string,
  opts: { where?: Record<string, unknown>; limit: number; cursor?: string },
): Promise<RecordPage> {
  let q = db
    .selectFrom('data_records')
    .select(['collection', 'id', 'version', 'data', 'created_at', 'updated_at'])
    .where('customer_id', '=', who.customerId)
    .where('collection', '=', collection)
    .orderBy('id')
    .limit(opts.limit + 1);
  if (opts.cursor) q = q.where('id', '>', decodeCursor(opts.cursor));
  if (opts.where && Object.keys(opts.where).length > 0) q = q.where(sql<boolean>`data @> ${JSON.stringify(opts.where)}::jsonb`);
  const rows = await q.execute();
  const page = rows.slice(0, opts.limit);
  await logDataRead(db, clock, { ...who, operation: 'list', targetType: 'collection', collection });
  return { records: page.map(view), nextCursor: rows.length > opts.limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

export async function listCollections(db: Db, clock: Clock, who: DataAccessor): Promise<Array<{ collection: string; records: number }>> {
  const rows = await db
    .selectFrom('data_records')
    .select(['collection', (eb) => eb.fn.countAll<string>().as('n')])
    .where('customer_id', '=', who.customerId)
    .groupBy('collection')
    .orderBy('collection')
    .execute();
  // R3.1: what collections exist, and how many records each holds, is read like any other list.
  await logDataRead(db, clock, { ...who, operation: 'list', targetType: 'collection' });
  return rows.map((r) => ({ collection: r.collection, records: Number(r.n) }));
}
