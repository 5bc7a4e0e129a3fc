import { randomUUID } from 'node:crypto';
import { finished, Transform, type Readable } from 'node:stream';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import type { BlobStore, PutResult } from '../storage/index.js';
import { changeCustomerData, logDataAccess, logDataRead } from './access-log.js';
import type { DataAccessor } from './records.js';
import { fromStorageError } from './storage-errors.js';

export interface FileView {
  id: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

type Row = { id: string; name: string; content_type: string; size: string; sha256: string; created_at: Date; blob_key: string };
const view = (r: Row): FileView => ({ id: r.id, name: r.name, contentType: r.content_type, size: Number(r.size), sha256: r.sha256, createdAt: r.created_at.toISOString() });
const COLUMNS = ['id', 'name', 'content_type', 'size', 'sha256', 'created_at', 'blob_key'] as const;

/** Where a customer's file lives in the store; the purge deletes the whole customers/<id>/ prefix. */
export const fileBlobKey = (customerId: string, fileId: string) => `customers/${customerId}/files/${fileId}`;
export const customerFilesPrefix = (customerId: string) => `customers/${customerId}/files/`;

export class FileTooLargeError extends HokanError {
  constructor(limit: number) {
    super('payload_too_large', bi(`ファイルが大きすぎます（上限 ${limit} バイト）。`, `The file is larger than the limit of ${limit} bytes.`));
  }
}

/** Counts bytes as they stream and stops the upload the moment it passes the limit. */
function sizeLimit(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(new FileTooLargeError(limit));
      else cb(null, chunk);
    },
  });
}

/** The client went away before the whole body arrived; nothing of the upload is kept. */
export class UploadInterruptedError extends HokanError {
  constructor() {
    super(
      'validation_failed',
      bi('ファイルの送信が途中で終わりました。もう一度送ってください。', 'The upload ended before all of its bytes arrived; please send it again.'),
      [{ path: 'body', message: 'the connection closed before the end of the body' }],
    );
  }
}

/**
 * The body, through the size limit. A body that stops short of its end (the client went away)
 * fails the limited stream, and so the store's put, which then removes its temp file (R3.1).
 * finished() also reports a request that was already closed before this was called, which an
 * 'error' listener added now would never hear of: the put would wait for ever on an open file.
 * Not pipeline(): on a refusal it destroys the request, and with it the socket the 413 still has
 * to go out on.
 */
function limitedBody(body: Readable, limit: number): { stream: Transform; release: () => void } {
  const limited = sizeLimit(limit);
  // The request may have closed before the store starts reading: the error is then emitted with
  // no one listening, which would crash the process. The stream keeps it, and the store's read
  // throws it all the same.
  limited.on('error', () => {});
  const release = finished(body, { writable: false }, (err) => {
    if (err) limited.destroy(new UploadInterruptedError());
  });
  body.pipe(limited);
  return { stream: limited, release };
}

export interface UploadInput {
  name: string;
  contentType: string;
  body: Readable;
  maxBytes: number;
  /** SHA-256 the client computed; a mismatch refuses the upload. */
  expectedSha256?: string;
}

export async function uploadFile(db: Db, clock: Clock, store: BlobStore, who: DataAccessor, input: UploadInput): Promise<FileView> {
  const id = randomUUID();
  const key = fileBlobKey(who.customerId, id);
  const body = limitedBody(input.body, input.maxBytes);
  let stored: PutResult;
  try {
    stored = await store.put(key, body.stream, { contentType: input.contentType });
  } catch (err) {
    throw fromStorageError(err, 'ファイル / file', id);
  } finally {
    body.release();
  }
  try {
    if (input.expectedSha256 && input.expectedSha256.toLowerCase() !== stored.sha256) {
      throw new HokanError(
        'validation_failed',
        bi('送信されたファイルのSHA-256が一致しません。転送中に壊れた可能性があります。', 'The uploaded bytes do not match the SHA-256 sent with them; the transfer may have been corrupted.'),
        [{ path: 'x-content-sha256', message: `received content has sha256 ${stored.sha256}` }],
      );
    }
    return await changeCustomerData(db, who.customerId, async (trx) => {
      const row = await trx
        .insertInto('data_files')
        .values({ customer_id: who.customerId, id, name: input.name, content_type: input.contentType, size: stored.size, sha256: stored.sha256, blob_key: key, created_at: clock.now() })
        .returning(COLUMNS)
        .executeTakeFirstOrThrow();
      await logDataAccess(trx, clock, { ...who, operation: 'upload', targetType: 'file', targetId: id });
      return view(row);
    });
  } catch (err) {
    // The object is not referenced by any row: remove it so no orphan keeps the customer's data.
    await store.delete(key, clock.now()).catch(() => {});
    throw err;
  }
}

async function fileRow(db: DbOrTx, customerId: string, id: string): Promise<Row> {
  const row = await db.selectFrom('data_files').select(COLUMNS).where('customer_id', '=', customerId).where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('ファイル / file', id);
  return row;
}

export async function getFile(db: Db, clock: Clock, who: DataAccessor, id: string): Promise<FileView> {
  const row = await fileRow(db, who.customerId, id);
  await logDataRead(db, clock, { ...who, operation: 'read', targetType: 'file', targetId: id });
  return view(row);
}

export async function openFileContent(db: Db, clock: Clock, store: BlobStore, who: DataAccessor, id: string): Promise<{ file: FileView; stream: NodeJS.ReadableStream }> {
  const row = await fileRow(db, who.customerId, id);
  // R3.1: the object may be gone (a delete committed after the row was read) or the store down.
  const stream = await store.get(row.blob_key).catch((err: unknown) => {
    throw fromStorageError(err, 'ファイル / file', id);
  });
  try {
    await logDataRead(db, clock, { ...who, operation: 'download', targetType: 'file', targetId: id });
  } catch (err) {
    // No download without its log entry; and the open file goes with it.
    destroyStream(stream);
    throw err;
  }
  return { file: view(row), stream };
}

export function destroyStream(stream: NodeJS.ReadableStream): void {
  if ('destroy' in stream && typeof stream.destroy === 'function') (stream as { destroy(): void }).destroy();
}

export async function listFiles(db: Db, clock: Clock, who: DataAccessor, opts: { limit: number; after?: string }): Promise<{ files: FileView[]; nextAfter: string | null }> {
  let q = db.selectFrom('data_files').select(COLUMNS).where('customer_id', '=', who.customerId).orderBy('id').limit(opts.limit + 1);
  if (opts.after) q = q.where('id', '>', opts.after);
  const rows = await q.execute();
  const page = rows.slice(0, opts.limit);
  await logDataRead(db, clock, { ...who, operation: 'list', targetType: 'file' });
  return { files: page.map(view), nextAfter: rows.length > opts.limit ? page[page.length - 1]!.id : null };
}

/** The row goes first (atomically with its log entry); the object follows once that committed. */
export async function deleteFile(db: Db, clock: Clock, store: BlobStore, who: DataAccessor, id: string): Promise<void> {
  const key = await changeCustomerData(db, who.customerId, async (trx) => {
    const row = await trx.selectFrom('data_files').select(['blob_key']).where('customer_id', '=', who.customerId).where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('ファイル / file', id);
    await trx.deleteFrom('data_files').where('customer_id', '=', who.customerId).where('id', '=', id).execute();
    await logDataAccess(trx, clock, { ...who, operation: 'delete', targetType: 'file', targetId: id });
    return row.blob_key;
  });
  await store.delete(key, clock.now());
}
