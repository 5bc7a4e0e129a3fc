import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { BlobNotFoundError, StorageUnavailableError } from '../storage/index.js';

/** Long enough for a full disk to be cleared or an object store to come back, short enough to retry. */
export const STORAGE_RETRY_AFTER_SECONDS = 30;

/**
 * A storage failure as the customer sees it (R3.1). Storage errors leave the HTTP answer to the
 * caller (src/storage/errors.ts); for the data API an object gone from under its row is the normal
 * race with a concurrent delete, so "not found", and a store that cannot answer (disk full, S3
 * down) is temporary, so 503 with Retry-After rather than a 500 nobody retries. The storage error
 * stays as the cause: its message names the store, which the customer must not see but operators
 * need. Anything else is returned unchanged.
 */
export function fromStorageError(err: unknown, what: string, id: string): unknown {
  if (err instanceof BlobNotFoundError) {
    const e = errors.notFound(what, id);
    e.cause = err;
    return e;
  }
  if (err instanceof StorageUnavailableError) {
    const e = new HokanError(
      'service_unavailable',
      bi('ファイルの保存先に一時的にアクセスできません。しばらくしてから再度お試しください。', 'The file store is temporarily unavailable; please retry shortly.'),
    );
    e.retryAfterSeconds = STORAGE_RETRY_AFTER_SECONDS;
    e.cause = err;
    return e;
  }
  return err;
}
