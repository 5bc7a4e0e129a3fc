import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompiledQuery, type PostgresPool, type PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import type { DbOrTx } from './database.js';

/**
 * Rows for `COPY … FROM STDIN` in PostgreSQL's text format. It travels as the only parameter of a
 * raw query, so the COPY runs on whatever connection Kysely uses for that query — inside a
 * transaction, the transaction's own — and both drivers recognise it there (decision 0025).
 */
export class CopyFromSource {
  constructor(readonly chunks: AsyncIterable<Buffer | string>) {}
}

const COPY_FROM_STDIN = /^\s*copy\s+[a-z_][a-z0-9_]*\s*(\([a-z0-9_,\s]+\))?\s+from\s+stdin\s*$/i;

/**
 * Bulk-loads rows with COPY: the server parses them in one stream instead of one statement per
 * batch, several times faster for large loads. `statement` is `COPY table (cols) FROM STDIN`;
 * `chunks` must be complete text-format lines (see `copyText`). Returns the rows loaded.
 */
export async function copyFrom(db: DbOrTx, statement: string, chunks: AsyncIterable<Buffer | string>): Promise<number> {
  if (!COPY_FROM_STDIN.test(statement)) throw new Error(`copyFrom takes "COPY table (columns) FROM STDIN", not: ${statement}`);
  // Kysely counts affected rows only for INSERT/UPDATE/DELETE/MERGE, so both drivers report a
  // COPY's count as a row of its own.
  const result = await db.executeQuery<CopyResultRow>(CompiledQuery.raw(statement, [new CopyFromSource(chunks)]));
  return result.rows[0]?.copied ?? 0;
}

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
export function copyText(value: string): string {
  if (!/[\\\t\n\r]/.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

export interface CopyResultRow {
  copied: number;
}

function copySourceOf(parameters: readonly unknown[] | undefined): CopyFromSource | null {
  return parameters?.length === 1 && parameters[0] instanceof CopyFromSource ? parameters[0] : null;
}

/**
 * The pool Kysely gets on PostgreSQL: the real pg pool, with clients whose `query` runs a
 * CopyFromSource through pg-copy-streams. Everything else goes to pg unchanged.
 */
export function copyCapablePool(pool: pg.Pool): PostgresPool {
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let w = wrapped.get(client);
    if (!w) {
      const query = (...args: unknown[]): unknown => {
        const [text, parameters] = args as [unknown, readonly unknown[] | undefined];
        const source = typeof text === 'string' ? copySourceOf(parameters) : null;
        if (!source) return (client.query as (...a: unknown[]) => unknown).apply(client, args);
        return runPgCopy(client, text as string, source);
      };
      // The cast bridges pg's overloads (text + parameters, or a cursor), which `query` forwards as they are.
      w = { query: query as PostgresPoolClient['query'], release: (err?: boolean) => client.release(err) };
      wrapped.set(client, w);
    }
    return w;
  };
  return { connect: async () => wrap(await pool.connect()), end: () => pool.end() };
}

async function runPgCopy(client: pg.PoolClient, statement: string, source: CopyFromSource): Promise<{ command: string; rowCount: number; rows: CopyResultRow[] }> {
  const stream = client.query(copyFromStdin(statement));
  // A failing source destroys the COPY stream, which sends CopyFail: the server aborts the COPY
  // (and with it the transaction), so nothing of a half-read source is ever committed.
  await pipeline(Readable.from(source.chunks, { objectMode: false }), stream);
  return { command: 'COPY', rowCount: stream.rowCount, rows: [{ copied: stream.rowCount }] };
}

/** What PGlite's connection needs: run a statement with these bytes as its COPY input. */
export type BlobQuery = (statement: string, copyInput: Buffer) => Promise<number>;

// PGlite takes COPY input as a whole Blob; a few MB at a time bounds memory whatever the size.
const PGLITE_COPY_CHUNK = 8 * 1024 * 1024;

/**
 * PGlite has no COPY FROM STDIN; its equivalent is COPY FROM '/dev/blob', fed in line-aligned
 * pieces. One piece is loaded while the next is read: the database runs in a process of its own
 * (decision 0029), so reading the source (decrypting, decompressing) and loading overlap, and at
 * most two pieces are held.
 */
export async function runPgliteCopy(statement: string, parameters: readonly unknown[], query: BlobQuery): Promise<number | null> {
  const source = copySourceOf(parameters);
  if (!source) return null;
  const fromBlob = statement.replace(/\bstdin\s*$/i, `'/dev/blob'`);
  let rows = 0;
  let loading: Promise<void> | null = null;
  let pending: Buffer[] = [];
  let size = 0;
  const load = async (body: Buffer) => {
    // The previous piece first: a failed piece ends the COPY before anything else is sent.
    if (loading) await loading;
    const p = query(fromBlob, body).then((n) => {
      rows += n;
    });
    // Awaited by the next piece or at the end; until then its failure must not go unhandled.
    p.catch(() => {});
    loading = p;
  };
  try {
    for await (const chunk of source.chunks) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      pending.push(buf);
      size += buf.length;
      if (size >= PGLITE_COPY_CHUNK) {
        const all = Buffer.concat(pending, size);
        const end = all.lastIndexOf(10) + 1;
        if (end > 0) {
          await load(all.subarray(0, end));
          pending = end < all.length ? [all.subarray(end)] : [];
          size = all.length - end;
        } else {
          pending = [all];
        }
      }
    }
    if (size > 0) await load(Buffer.concat(pending, size));
  } finally {
    // A failing source still waits for the piece in flight, so nothing of this COPY runs later.
    if (loading) await (loading as Promise<void>).catch(() => {});
  }
  if (loading) await loading;
  return rows;
}
