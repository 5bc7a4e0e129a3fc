/**
 * Storage-internal errors. They carry a stable `code` so callers (the file API, the backup job)
 * can branch on it without parsing messages; turning them into HokanError/HTTP answers is the
 * caller's business, because only the caller knows whether a missing blob is a 404 or a 500.
 */
export type StorageErrorCode =
  | 'blob_not_found'
  | 'blob_retained'
  | 'invalid_key'
  | 'storage_unavailable'
  | 'invalid_store_config';

export abstract class StorageError extends Error {
  abstract readonly code: StorageErrorCode;
}

// Keys come from our own code, but a bad one may be long or odd: keep messages readable.
function quoteKey(key: string): string {
  return JSON.stringify(key.length > 120 ? `${key.slice(0, 120)}…` : key);
}

export class BlobNotFoundError extends StorageError {
  readonly code = 'blob_not_found' as const;
  constructor(
    readonly key: string,
    readonly store: string,
  ) {
    super(`No blob with key ${quoteKey(key)} in ${store}.`);
    this.name = 'BlobNotFoundError';
  }
}

export class BlobRetainedError extends StorageError {
  readonly code = 'blob_retained' as const;
  constructor(
    readonly key: string,
    readonly retainUntil: Date,
    readonly operation: 'delete' | 'overwrite',
  ) {
    super(`The blob ${quoteKey(key)} is retained until ${retainUntil.toISOString()} and cannot be ${operation === 'delete' ? 'deleted' : 'overwritten'} before then.`);
    this.name = 'BlobRetainedError';
  }
}

export class InvalidKeyError extends StorageError {
  readonly code = 'invalid_key' as const;
  constructor(
    readonly key: string,
    readonly reason: string,
    kind: 'key' | 'prefix' = 'key',
  ) {
    super(`Invalid blob ${kind} ${quoteKey(key)}: ${reason}.`);
    this.name = 'InvalidKeyError';
  }
}

export class StorageUnavailableError extends StorageError {
  readonly code = 'storage_unavailable' as const;
  /** `store` is a BlobStore description, which by construction never holds a secret. */
  constructor(
    readonly store: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`Storage ${store} is unavailable: ${detail}.`, options);
    this.name = 'StorageUnavailableError';
  }
}

export class InvalidStoreConfigError extends StorageError {
  readonly code = 'invalid_store_config' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStoreConfigError';
  }
}

export function isStorageError(e: unknown): e is StorageError {
  return e instanceof StorageError;
}
