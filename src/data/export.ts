import { createHash, type Hash } from 'node:crypto';
import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ZipFile } from 'yazl';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { BlobNotFoundError, type BlobStore } from '../storage/index.js';
import { logDataRead } from './access-log.js';
import type { DataAccessor } from './records.js';

/**
 * R10.5: the customer takes its own copy of its data, itself. One ZIP, streamed while it is
 * built, so neither the server nor the client ever holds the whole export. Layout and reasons:
 * docs/decisions/0009-export-format.md.
 */

export const EXPORT_FORMAT = 'hokan-export/1';
/** Rows per database round trip; also bounds how many records are held at once. */
export const EXPORT_PAGE = 1000;
/** Under the 255-byte name limit of ext4 and APFS (NTFS counts 255 UTF-16 units, which this always fits), with room for what unzip tools append ("(1)"). */
export const MAX_ENTRY_NAME_BYTES = 200;

export interface ExportDeps {
  db: Db;
  clock: Clock;
  files: BlobStore;
}

export interface CustomerExport {
  filename: string;
  stream: Readable;
}

export interface ManifestCollection {
  name: string;
  path: string;
  records: number;
  bytes: number;
  sha256: string;
}

export interface ManifestFile {
  id: string;
  name: string;
  path: string;
  contentType: string;
  size: number;
  sha256: string;
  createdAt: string;
}

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  customer: { id: string; code: string; name: string };
  exportedAt: string;
  collections: ManifestCollection[];
  files: ManifestFile[];
}

/** One line of `records/<collection>.ndjson`. */
export interface ExportedRecord {
  id: string;
  version: number;
  data: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** Raised mid-stream: the archive is cut off instead of carrying bytes that are not the customer's. */
export class ExportIntegrityError extends HokanError {
  constructor(
    readonly fileId: string,
    problem: string,
  ) {
    super(
      'internal',
      bi(
        `ファイル ${fileId} の保存内容が記録と一致しないため、エクスポートを中止しました（${problem}）。事業者にご連絡ください。`,
        `The export was stopped because the stored content of file ${fileId} does not match its record (${problem}). Please contact the provider.`,
      ),
    );
    this.name = 'ExportIntegrityError';
  }
}

const JST_OFFSET_MS = 9 * 3_600_000;

/** `YYYYMMDD-HHmm` in Japan: the time the customer sees on its own clock. */
export function jstStamp(instant: Date): string {
  return new Date(instant.getTime() + JST_OFFSET_MS).toISOString().slice(0, 16).replace(/-/g, '').replace('T', '-').replace(':', '');
}

// Bidi overrides can make "gpj.exe" display as "exe.jpg"; they never belong in a file name.
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const RESERVED_PUNCTUATION = /[/\\:*?"<>|]/g;
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)/i;
const graphemes = new Intl.Segmenter('ja', { granularity: 'grapheme' });
const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

function truncateUtf8(s: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  // Whole graphemes only: a cut inside one would leave half a character (or a bare dakuten).
  for (const { segment } of graphemes.segment(s)) {
    const n = utf8Bytes(segment);
    if (bytes + n > maxBytes) break;
    out += segment;
    bytes += n;
  }
  return out;
}

/**
 * A name every common OS and unzip tool accepts as one path segment, keeping the Japanese.
 * The original name is kept in the manifest; this one only has to be usable and recognisable.
 */
export function safeEntryName(name: string, maxBytes = MAX_ENTRY_NAME_BYTES): string {
  let s = '';
  // Lone surrogates cannot be encoded in UTF-8: drop them rather than let them become U+FFFD.
  for (const ch of name.normalize('NFC')) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0xd800 || cp > 0xdfff) s += ch;
  }
  // Replaced, not removed, so "2026/11 記録" does not become "202611 記録".
  s = s.replace(UNSAFE_CHARS, '').replace(RESERVED_PUNCTUATION, '_');
  // Leading dots hide the file on Unix (and ".." must never be a segment); Windows drops trailing dots and spaces.
  s = s.replace(/^[.\s]+/u, '').replace(/[.\s]+$/u, '');
  if (WINDOWS_DEVICE.test(s)) s = `_${s}`;
  if (utf8Bytes(s) > maxBytes) {
    const dot = s.lastIndexOf('.');
    const ext = dot > 0 ? s.slice(dot) : '';
    // Keep the extension so the file still opens with the right program.
    s = ext && utf8Bytes(ext) <= 16 ? truncateUtf8(s.slice(0, dot), maxBytes - utf8Bytes(ext)).replace(/[.\s]+$/u, '') + ext : truncateUtf8(s, maxBytes).replace(/[.\s]+$/u, '');
  }
  return s === '' || s.startsWith('.') ? `file${s}` : s;
}

/** RFC 5987 `ext-value` (used by `filename*=`): encodeURIComponent leaves ' ( ) * ! unescaped, which are not attr-chars. */
export function rfc5987(value: string): string {
  return encodeURIComponent(value).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `Content-Disposition: attachment` for a download (RFC 6266): `filename*` carries the real name
 * (Japanese included), `filename` an ASCII stand-in for clients that do not read `filename*`. The
 * stand-in has no quote or backslash (they would end or escape the quoted string) and no `%`
 * (some clients percent-decode it).
 */
export function attachmentDisposition(filename: string): string {
  return `attachment; filename="${filename.replace(/[^\x20-\x7e]|["\\%]/g, '_')}"; filename*=UTF-8''${rfc5987(filename)}`;
}

const CUSTOMER_CODE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function exportFilename(customer: { id: string; code: string }, at: Date): string {
  return `hokan-export-${CUSTOMER_CODE.test(customer.code) ? customer.code : customer.id}-${jstStamp(at)}.zip`;
}

// Deflating JPEG, PDF or video costs CPU on every export and saves next to nothing.
const ALREADY_COMPRESSED = /^(image\/(jpeg|png|gif|webp|heic|heif|avif)|video\/|audio\/|application\/(pdf|zip|gzip|x-gzip|x-7z-compressed|x-rar-compressed|x-bzip2|x-xz|zstd|vnd\.openxmlformats-officedocument\.))/i;
const compressionLevelFor = (contentType: string) => (ALREADY_COMPRESSED.test(contentType) ? 0 : 6);

const README = [
  'hokan データエクスポート / hokan data export',
  '',
  'このアーカイブは、お客様のデータの完全な写しです。',
  '  records/<コレクション名>.ndjson  レコード。1行に1件のJSON {"id","version","data","createdAt","updatedAt"}、id順、UTF-8。',
  '  files/<ファイルID>/<ファイル名>  保存されたファイルそのもの（名前はどのOSでも使えるように調整しています。元の名前は manifest.json にあります）。',
  '  manifest.json                    件数・バイト数・SHA-256 の一覧。取り出した内容の確認に使えます。',
  'manifest.json はアーカイブの最後にあります。これが無い、または開けないアーカイブは途中で切れています。もう一度エクスポートしてください。',
  '',
  'This archive is a complete copy of your data.',
  '  records/<collection>.ndjson     records: one JSON object per line {"id","version","data","createdAt","updatedAt"}, by id, UTF-8.',
  '  files/<file id>/<file name>     each file exactly as stored (the name is adjusted to work on every OS; the original is in manifest.json).',
  '  manifest.json                   counts, byte sizes and SHA-256 of everything above, to check what you extracted.',
  'manifest.json is the last entry. An archive without it, or one that does not open, was cut off: please export again.',
  '',
].join('\r\n'); // CRLF so Windows Notepad of any age shows the lines.

type RecordRow = { collection: string; id: string; version: number; data: unknown; created_at: Date; updated_at: Date };
type FileRow = { id: string; name: string; content_type: string; size: string; sha256: string; created_at: Date; blob_key: string };

/** Keyset pages over (collection, id): every record once, flat memory, no OFFSET rescans. */
async function* recordRows(db: Db, customerId: string): AsyncGenerator<RecordRow> {
  let after: { collection: string; id: string } | null = null;
  for (;;) {
    let q = db
      .selectFrom('data_records')
      .select(['collection', 'id', 'version', 'data', 'created_at', 'updated_at'])
      .where('customer_id', '=', customerId)
      .orderBy('collection')
      .orderBy('id')
      .limit(EXPORT_PAGE);
    if (after) {
      const { collection, id } = after;
      q = q.where(({ eb, refTuple, tuple }) => eb(refTuple('collection', 'id'), '>', tuple(collection, id)));
    }
    const rows = await q.execute();
    yield* rows;
    if (rows.length < EXPORT_PAGE) return;
    const last = rows[rows.length - 1]!;
    after = { collection: last.collection, id: last.id };
  }
}

async function* fileRows(db: Db, customerId: string): AsyncGenerator<FileRow> {
  let after: string | null = null;
  for (;;) {
    let q = db
      .selectFrom('data_files')
      .select(['id', 'name', 'content_type', 'size', 'sha256', 'created_at', 'blob_key'])
      .where('customer_id', '=', customerId)
      .orderBy('id')
      .limit(EXPORT_PAGE);
    if (after !== null) q = q.where('id', '>', after);
    const rows = await q.execute();
    yield* rows;
    if (rows.length < EXPORT_PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
}

/** Lets one collection's stream stop at the first row of the next without losing that row. */
class Peekable<T> {
  #head: IteratorResult<T> | null = null;
  constructor(private readonly it: AsyncIterator<T>) {}
  async peek(): Promise<T | null> {
    this.#head ??= await this.it.next();
    return this.#head.done ? null : this.#head.value;
  }
  take(): void {
    this.#head = null;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

const recordLine = (r: RecordRow): ExportedRecord => ({
  id: r.id,
  version: r.version,
  data: (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown>,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

/** One collection as NDJSON, a page at a time; the stats are complete once the stream has ended. */
async function* collectionNdjson(rows: Peekable<RecordRow>, collection: string, stats: { records: number; bytes: number; hash: Hash }, onPage?: () => void): AsyncGenerator<Buffer> {
  let lines: string[] = [];
  const emit = () => {
    const chunk = Buffer.from(lines.join(''), 'utf8');
    lines = [];
    stats.hash.update(chunk);
    stats.bytes += chunk.length;
    onPage?.();
    return chunk;
  };
  for (;;) {
    const row = await rows.peek();
    if (row === null || row.collection !== collection) break;
    rows.take();
    lines.push(`${JSON.stringify(recordLine(row))}\n`);
    stats.records++;
    if (lines.length >= EXPORT_PAGE) yield emit();
  }
  if (lines.length > 0) yield emit();
}

/**
 * Hashes and counts a file's bytes as they pass and fails at the end if they are not what
 * `data_files` recorded. It holds back the latest chunk until the check passes, so a corrupt
 * file never reaches the archive whole, even for a reader that salvages truncated archives.
 */
class VerifiedFile extends Transform {
  readonly #hash = createHash('sha256');
  #size = 0;
  #held: Buffer | null = null;

  constructor(private readonly file: FileRow) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    if (this.#size > Number(this.file.size)) return cb(new ExportIntegrityError(this.file.id, `more than the recorded ${this.file.size} bytes`));
    const previous = this.#held;
    this.#held = chunk;
    cb(null, previous ?? undefined);
  }

  override _flush(cb: TransformCallback): void {
    const actual = this.#hash.digest('hex');
    if (this.#size !== Number(this.file.size)) return cb(new ExportIntegrityError(this.file.id, `${this.#size} bytes instead of the recorded ${this.file.size}`));
    if (actual !== this.file.sha256) return cb(new ExportIntegrityError(this.file.id, `sha256 ${actual} instead of the recorded ${this.file.sha256}`));
    cb(null, this.#held ?? undefined);
  }
}

/** Whether a file row still exists: a file deleted while the export ran is left out, not an error. */
async function fileStillListed(db: Db, customerId: string, id: string): Promise<boolean> {
  return (await db.selectFrom('data_files').select('id').where('customer_id', '=', customerId).where('id', '=', id).executeTakeFirst()) !== undefined;
}

/**
 * Starts the export of everything the customer keeps with us and logs it (R10.5). The returned
 * stream is the ZIP as it is built; it ends with `manifest.json` or errors (the HTTP layer then
 * cuts the connection), never ends quietly with something missing or altered. Destroying it
 * (the client went away) stops the work and releases the open file.
 *
 * Not a point-in-time snapshot: one transaction held for a multi-GB download would pin a
 * connection (PGlite has only one). Each record and file is exported consistently and at most
 * once; ones created or deleted while the export runs may or may not be in it.
 */
export async function exportCustomerData(
  deps: ExportDeps,
  who: DataAccessor,
  opts: {
    extraEntries?: Array<{ name: string; content: Buffer }>;
    /** Called as records (a page at a time) and files are added, for a progress display (R10.5). */
    onProgress?: (done: { records: number; files: number }) => void;
  } = {},
): Promise<CustomerExport> {
  const customer = await deps.db.selectFrom('customers').select(['id', 'code', 'name']).where('id', '=', who.customerId).executeTakeFirst();
  if (!customer) throw errors.notFound('お客様 / customer', who.customerId);
  const exportedAt = deps.clock.now();
  await logDataRead(deps.db, deps.clock, { ...who, operation: 'export', targetType: 'customer', targetId: customer.id });

  const zip = new ZipFile();
  const out = new PassThrough();
  zip.outputStream.pipe(out);
  let current: Readable | null = null;
  let stopped = false;
  const stop = (err: Error) => {
    if (stopped) return;
    stopped = true;
    current?.destroy(err);
    if (!out.destroyed) out.destroy(err);
  };
  zip.on('error', stop);
  out.on('close', () => {
    if (!out.readableEnded) stop(new Error('the export stream was closed before it finished'));
  });

  /** yazl writes entries in the order they are added; adding the next only after this one ended keeps one source open at a time. */
  const addStream = async (path: string, source: Readable, opts: { mtime: Date; compressionLevel: number; size?: number }) => {
    // Stopped while this source was being opened: nobody would ever read it, so it would never end.
    if (stopped) {
      source.destroy();
      throw new Error('the export was stopped');
    }
    current = source;
    zip.addReadStream(source, path, { mode: 0o100644, ...opts });
    await finished(source);
    current = null;
  };

  const run = async () => {
    zip.addBuffer(Buffer.from(README, 'utf8'), 'README.txt', { mtime: exportedAt, mode: 0o100644 });
    // The migration package (R10.6) adds its schema description beside the same open layout.
    for (const extra of opts.extraEntries ?? []) zip.addBuffer(extra.content, extra.name, { mtime: exportedAt, mode: 0o100644 });

    const collections: ManifestCollection[] = [];
    const done = { records: 0, files: 0 };
    const rows = new Peekable(recordRows(deps.db, customer.id));
    try {
      for (let row = await rows.peek(); row !== null && !stopped; row = await rows.peek()) {
        const name = row.collection;
        const stats = { records: 0, bytes: 0, hash: createHash('sha256') };
        const path = `records/${name}.ndjson`;
        const before = done.records;
        const onPage = () => {
          done.records = before + stats.records;
          opts.onProgress?.({ ...done });
        };
        await addStream(path, Readable.from(collectionNdjson(rows, name, stats, onPage), { objectMode: false }), { mtime: exportedAt, compressionLevel: 6 });
        collections.push({ name, path, records: stats.records, bytes: stats.bytes, sha256: stats.hash.digest('hex') });
      }
    } finally {
      await rows.close();
    }

    // Kept in memory for the manifest: ~250 bytes a file, so 100,000 files cost ~25 MB.
    const manifestFiles: ManifestFile[] = [];
    for await (const file of fileRows(deps.db, customer.id)) {
      if (stopped) break;
      let body: NodeJS.ReadableStream;
      try {
        body = await deps.files.get(file.blob_key);
      } catch (err) {
        if (err instanceof BlobNotFoundError && !(await fileStillListed(deps.db, customer.id, file.id))) continue;
        throw err;
      }
      const path = `files/${file.id}/${safeEntryName(file.name)}`;
      const verified = new VerifiedFile(file);
      // pipeline only for its teardown (either side failing destroys the other); the error itself reaches us through finished(verified).
      pipeline(body, verified, () => {});
      await addStream(path, verified, { mtime: file.created_at, compressionLevel: compressionLevelFor(file.content_type), size: Number(file.size) });
      manifestFiles.push({ id: file.id, name: file.name, path, contentType: file.content_type, size: Number(file.size), sha256: file.sha256, createdAt: file.created_at.toISOString() });
      done.files++;
      opts.onProgress?.({ ...done });
    }
    if (stopped) return;

    const manifest: ExportManifest = {
      format: EXPORT_FORMAT,
      customer: { id: customer.id, code: customer.code, name: customer.name },
      exportedAt: exportedAt.toISOString(),
      collections,
      files: manifestFiles,
    };
    // Last, because it can only be written once every byte before it has been hashed.
    zip.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8'), 'manifest.json', { mtime: exportedAt, mode: 0o100644 });
    zip.end();
  };
  run().catch((err: unknown) => stop(err instanceof Error ? err : new Error(String(err))));

  return { filename: exportFilename(customer, exportedAt), stream: out };
}
