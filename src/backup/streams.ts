import { createHash } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';

/** Passes bytes through while computing their SHA-256 and count. */
export class HashingStream extends Transform {
  readonly #hash = createHash('sha256');
  bytes = 0;
  #digest: string | null = null;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: (err?: Error | null) => void): void {
    this.#digest = this.#hash.digest('hex');
    cb();
  }

  get sha256(): string {
    if (this.#digest === null) throw new Error('HashingStream: digest read before the stream ended');
    return this.#digest;
  }
}

/**
 * Writes with backpressure; rejects if the stream fails or is destroyed meanwhile. A destroyed
 * stream never emits 'drain', so waiting for it alone could hang a backup inside its snapshot.
 */
export async function writeWithBackpressure(out: Writable, data: string | Buffer): Promise<void> {
  const dead = () => out.errored ?? (out.destroyed ? new Error('the backup stream was closed before it finished') : null);
  const before = dead();
  if (before) throw before;
  if (out.write(data)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      out.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(dead() ?? new Error('the backup stream was closed before it finished'));
    const onError = (err: Error) => done(err);
    out.on('drain', onDrain);
    out.on('close', onClose);
    out.on('error', onError);
    const now = dead();
    if (now) done(now);
  });
}

/** Yields complete lines of a UTF-8 NDJSON stream; errors of the stream surface here. */
export async function* ndjsonLines(input: Readable | NodeJS.ReadableStream): AsyncGenerator<string> {
  let rest = '';
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for await (const chunk of input as AsyncIterable<Buffer>) {
    rest += decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = rest.indexOf('\n', start)) >= 0) {
      if (nl > start) yield rest.slice(start, nl);
      start = nl + 1;
    }
    rest = rest.slice(start);
  }
  rest += decoder.decode();
  if (rest.length > 0) yield rest;
}

/** Reads a whole (small) stream, for manifests. */
export async function readAll(input: NodeJS.ReadableStream, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error(`stream larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
