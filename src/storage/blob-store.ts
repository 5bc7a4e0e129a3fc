import { InvalidKeyError } from './errors.js';

export interface PutResult {
  key: string;
  size: number;
  /** Lower-case hex SHA-256 of the bytes stored, computed while they streamed through. */
  sha256: string;
}

export interface BlobInfo {
  key: string;
  size: number;
  retainUntil: Date | null;
}

/** What an object holds, by size and SHA-256 (lower-case hex). */
export interface BlobDigest {
  size: number;
  sha256: string;
}

export interface PutOptions {
  /** Until this instant the blob can be neither deleted nor overwritten. */
  retainUntil?: Date;
  contentType?: string;
}

/**
 * One place bytes live: the live file store and every backup target implement this, so the
 * backup job can copy between any two of them. The immutability rule (no delete or overwrite
 * while retained) is part of the contract, not an option of one implementation.
 */
export interface BlobStore {
  /** Human-readable location for logs and errors; never contains a secret. */
  readonly description: string;
  put(key: string, body: NodeJS.ReadableStream | Buffer, opts?: PutOptions): Promise<PutResult>;
  /** Throws BlobNotFoundError. */
  get(key: string): Promise<NodeJS.ReadableStream>;
  head(key: string): Promise<BlobInfo | null>;
  /**
   * The size and SHA-256 of the stored bytes, read to the end. Throws BlobNotFoundError. Cheaper
   * than hashing get()'s stream where the store can read into reused memory (the local store).
   */
  digest(key: string): Promise<BlobDigest>;
  /** Throws BlobRetainedError while `retainUntil > now`; deleting a missing key is a no-op. */
  delete(key: string, now: Date): Promise<void>;
  /** Keys starting with `prefix`, in no particular order, paginated internally. */
  list(prefix: string): AsyncIterable<BlobInfo>;
}

const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9/._-]{0,500}$/;
const MAX_KEY_LENGTH = 501;
/**
 * The local store keeps `<key>.hokan-meta.json` sidecars and `<name>.hokan-tmp-*` temp files next
 * to the objects. Reserving the marker in every store keeps a key that is valid in one store
 * valid in all of them, so a backup can always be copied back.
 */
export const RESERVED_MARKER = '.hokan-';

function keyProblem(key: unknown): string | null {
  if (typeof key !== 'string') return 'it is not a string';
  if (key.length === 0) return 'it is empty';
  if (key.startsWith('/')) return "it starts with '/' (keys are relative to the store)";
  if (key.length > MAX_KEY_LENGTH) return `it is longer than ${MAX_KEY_LENGTH} characters`;
  if (!/^[A-Za-z0-9/._-]*$/.test(key)) return 'it contains a character other than A-Z a-z 0-9 / . _ -';
  if (!KEY_PATTERN.test(key)) return 'it must start with a letter or a digit';
  if (key.includes('//')) return "it contains an empty segment ('//')";
  if (key.endsWith('/')) return "it ends with '/'";
  const segments = key.split('/');
  if (segments.includes('..')) return "it contains a '..' segment";
  // A '.' segment would name the same file as the key without it on a filesystem, but a
  // different object on S3: refuse it so both stores agree on what a key means.
  if (segments.includes('.')) return "it contains a '.' segment";
  if (key.includes(RESERVED_MARKER)) return `'${RESERVED_MARKER}' is reserved for the store's own files`;
  return null;
}

/** Throws InvalidKeyError unless `key` is a usable blob key. */
export function validateBlobKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== null) throw new InvalidKeyError(String(key), problem);
}

export function isValidBlobKey(key: string): boolean {
  return keyProblem(key) === null;
}

/** A prefix is empty, a key, or a key followed by '/'. Throws InvalidKeyError. */
export function validateBlobPrefix(prefix: string): void {
  if (prefix === '') return;
  const body = typeof prefix === 'string' && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const problem = keyProblem(body);
  if (problem !== null) throw new InvalidKeyError(String(prefix), problem, 'prefix');
}
