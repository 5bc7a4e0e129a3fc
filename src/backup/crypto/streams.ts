import { Transform, type TransformCallback } from 'node:stream';
import { ChunkDecoder, ChunkEncoder } from './format.js';

export interface EncryptOptions {
  /** Plaintext bytes per record, 1 KiB..16 MiB; default 64 KiB. */
  chunkSize?: number;
  /**
   * Bound into every record, e.g. `customerId|backupId|partName`, so a part cannot be swapped for
   * a part of another backup made with the same data key. Decrypt must be given the same text.
   */
  aad?: string;
}

export interface DecryptOptions {
  aad?: string;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

class EncryptTransform extends Transform {
  private readonly encoder: ChunkEncoder;

  constructor(dataKey: Buffer, options: EncryptOptions) {
    super();
    // Built here rather than lazily so a bad key or chunk size throws at the call site.
    this.encoder = new ChunkEncoder(dataKey, options, (bytes) => {
      this.push(bytes);
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.encoder.write(chunk);
      callback();
    } catch (e) {
      callback(asError(e));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.encoder.end();
      callback();
    } catch (e) {
      callback(asError(e));
    }
  }
}

class DecryptTransform extends Transform {
  private readonly decoder: ChunkDecoder;

  constructor(dataKey: Buffer, options: DecryptOptions) {
    super();
    this.decoder = new ChunkDecoder(dataKey, options, (plaintext) => {
      this.push(plaintext);
    });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.write(chunk);
      callback();
    } catch (e) {
      callback(asError(e));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.end();
      callback();
    } catch (e) {
      callback(asError(e));
    }
  }
}

/** Plaintext in, v1 backup format out. Holds at most one chunk of plaintext. */
export function createEncryptStream(dataKey: Buffer, opts: EncryptOptions = {}): Transform {
  return new EncryptTransform(dataKey, opts);
}

/**
 * v1 backup format in, plaintext out; each chunk is pushed only after its tag verified, and the
 * stream errors with a BackupIntegrityError on anything else. Chunks already pushed are authentic
 * and in order, but completeness is known only when the stream finishes without an error: a
 * restore must not commit what it read until then.
 */
export function createDecryptStream(dataKey: Buffer, opts: DecryptOptions = {}): Transform {
  return new DecryptTransform(dataKey, opts);
}

/** Whole-buffer form of the same format, for small data such as manifests. */
export function encryptBuffer(dataKey: Buffer, plaintext: Buffer, opts: EncryptOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const encoder = new ChunkEncoder(dataKey, opts, (bytes) => parts.push(bytes));
  encoder.write(plaintext);
  encoder.end();
  return Buffer.concat(parts);
}

/** Throws BackupIntegrityError exactly where createDecryptStream would error. */
export function decryptBuffer(dataKey: Buffer, data: Buffer, opts: DecryptOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const decoder = new ChunkDecoder(dataKey, opts, (plaintext) => parts.push(plaintext));
  decoder.write(data);
  decoder.end();
  return Buffer.concat(parts);
}
