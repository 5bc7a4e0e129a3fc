import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';

/** Helpers shared by the stores; not part of the public API. */

export function isRetained(retainUntil: Date | null, now: Date): retainUntil is Date {
  return retainUntil !== null && retainUntil.getTime() > now.getTime();
}

export function toReadable(body: NodeJS.ReadableStream): Readable {
  // Old-style streams have no reliable async iterator or destroy(); wrap() gives them both.
  return body instanceof Readable ? body : new Readable({ objectMode: false }).wrap(body);
}

/**
 * Passes bytes through unchanged while hashing and counting them, so a put learns its sha256 and
 * size without ever holding the whole body.
 */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private digestHex: string | null = null;

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.hash.update(buf);
    this.bytes += buf.length;
    cb(null, buf);
  }

  override _flush(cb: TransformCallback): void {
    this.digestHex = this.hash.digest('hex');
    cb();
  }

  /** Only meaningful once the stream has ended. */
  result(): { size: number; sha256: string } {
    if (this.digestHex === null) throw new Error('HashingStream.result() called before the stream ended');
    return { size: this.bytes, sha256: this.digestHex };
  }
}

export function sha256Hex(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Serialises operations on one key within this process. The retention check and the write or
 * delete that follows it must not interleave with another put/delete of the same key, or a
 * delete could remove an object a concurrent put just made retained. (Other processes writing
 * the same store are not covered; for S3, Object Lock is the guard that holds regardless.)
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function checkRetainUntil(value: Date | undefined): Date | null {
  if (value === undefined) return null;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError('retainUntil must be a valid Date');
  return value;
}

/**
 * A put owns its body: when it fails, the body is destroyed so whoever feeds it (an HTTP upload,
 * a backup reader) stops instead of waiting forever on back-pressure.
 */
export function releaseBody(body: NodeJS.ReadableStream | Buffer): void {
  if (Buffer.isBuffer(body)) return;
  if (body instanceof Readable) {
    if (!body.destroyed) body.destroy();
  } else if ('destroy' in body && typeof body.destroy === 'function') {
    (body as { destroy(): void }).destroy();
  }
}
