/**
 * Backup stream format v1: a 22-byte header, then records of
 *   u32be length L | L bytes AES-256-GCM ciphertext | 16-byte tag.
 *
 * Record i uses nonce = header nonce prefix (8 bytes) || u32be i, and
 * AAD = header (22 bytes) || u32be i || final flag (1 byte) || caller AAD.
 *
 * Every record but the last holds exactly chunkSize bytes; the last holds fewer (zero when the
 * plaintext length is a multiple of chunkSize, including empty plaintext) and is the only one
 * sealed with the final flag 1. Because a full record can never be final and a short one must be,
 * the decoder knows which flag to authenticate against from L alone and never has to try both.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type DecipherGCM, type KeyObject } from 'node:crypto';
import { BackupCryptoError, BackupIntegrityError, type BackupIntegrityErrorCode } from './errors.js';
import { assertDataKey } from './keys.js';

export const MAGIC = Buffer.from('HKNBAK1\0', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_LENGTH = 22;
export const NONCE_PREFIX_LENGTH = 8;
export const LENGTH_FIELD_LENGTH = 4;
export const TAG_LENGTH = 16;
export const RECORD_OVERHEAD = LENGTH_FIELD_LENGTH + TAG_LENGTH;
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

const ALGORITHM = 'aes-256-gcm';
const VERSION_OFFSET = 8;
const RESERVED_OFFSET = 9;
const CHUNK_SIZE_OFFSET = 10;
const NONCE_PREFIX_OFFSET = 14;
// The record index is 32 bits of the nonce; going past it would reuse a nonce under the same key.
const MAX_RECORDS = 2 ** 32;

/** Size of the encrypted form of `plainLength` bytes, e.g. to check an object's size before a restore. */
export function encryptedLength(plainLength: number, chunkSize: number = DEFAULT_CHUNK_SIZE): number {
  assertChunkSize(chunkSize);
  if (!Number.isSafeInteger(plainLength) || plainLength < 0) {
    throw new BackupCryptoError('invalid_argument', 'A plaintext length must be a whole, non-negative number of bytes.');
  }
  const records = Math.floor(plainLength / chunkSize) + 1;
  return HEADER_LENGTH + records * RECORD_OVERHEAD + plainLength;
}

export function assertChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new BackupCryptoError('invalid_argument', `The chunk size must be a whole number of bytes from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}.`);
  }
}

/** Nonce and AAD for one stream, rewritten in place per record so sealing a record allocates nothing for them. */
class RecordParams {
  readonly nonce = Buffer.alloc(12);
  readonly aad: Buffer;

  constructor(header: Buffer, callerAad: Buffer) {
    header.copy(this.nonce, 0, NONCE_PREFIX_OFFSET, HEADER_LENGTH);
    this.aad = Buffer.alloc(HEADER_LENGTH + 5 + callerAad.length);
    header.copy(this.aad, 0);
    callerAad.copy(this.aad, HEADER_LENGTH + 5);
  }

  set(index: number, final: boolean): void {
    this.nonce.writeUInt32BE(index, NONCE_PREFIX_LENGTH);
    this.aad.writeUInt32BE(index, HEADER_LENGTH);
    this.aad[HEADER_LENGTH + 4] = final ? 1 : 0;
  }
}

function callerAadBytes(aad: string | undefined): Buffer {
  return Buffer.from(aad ?? '', 'utf8');
}

function secretKey(dataKey: Buffer): KeyObject {
  assertDataKey(dataKey);
  // A KeyObject holds its own copy, so a caller wiping its Buffer after starting a stream cannot
  // silently change the key halfway through.
  return createSecretKey(dataKey);
}

/** Turns plaintext into the v1 format; `emit` receives the header and then one Buffer per record. */
export class ChunkEncoder {
  private readonly key: KeyObject;
  private readonly chunkSize: number;
  private readonly header: Buffer;
  private readonly params: RecordParams;
  private readonly emit: (bytes: Buffer) => void;
  private stage: Buffer | undefined;
  private staged = 0;
  private index = 0;
  private started = false;
  private ended = false;

  constructor(dataKey: Buffer, options: { chunkSize?: number; aad?: string }, emit: (bytes: Buffer) => void) {
    this.key = secretKey(dataKey);
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    assertChunkSize(this.chunkSize);
    this.header = Buffer.alloc(HEADER_LENGTH);
    MAGIC.copy(this.header, 0);
    this.header[VERSION_OFFSET] = FORMAT_VERSION;
    this.header[RESERVED_OFFSET] = 0;
    this.header.writeUInt32BE(this.chunkSize, CHUNK_SIZE_OFFSET);
    randomBytes(NONCE_PREFIX_LENGTH).copy(this.header, NONCE_PREFIX_OFFSET);
    this.params = new RecordParams(this.header, callerAadBytes(options.aad));
    this.emit = emit;
  }

  write(data: Buffer): void {
    if (this.ended) throw new BackupCryptoError('invalid_argument', 'Cannot write to a backup encryptor after it has ended.');
    this.start();
    const size = this.chunkSize;
    let offset = 0;
    if (this.staged > 0 && this.stage) {
      const take = Math.min(size - this.staged, data.length);
      data.copy(this.stage, this.staged, 0, take);
      this.staged += take;
      offset = take;
      if (this.staged < size) return;
      this.seal(this.stage, false);
      this.staged = 0;
    }
    // Whole chunks straight from the caller's buffer: no copy, and nothing kept after this call,
    // so a producer that reuses its buffers cannot change what gets sealed.
    while (data.length - offset >= size) {
      this.seal(data.subarray(offset, offset + size), false);
      offset += size;
    }
    if (offset < data.length) {
      this.stage ??= Buffer.allocUnsafe(size);
      data.copy(this.stage, 0, offset);
      this.staged = data.length - offset;
    }
  }

  end(): void {
    if (this.ended) return;
    this.start();
    this.seal(this.stage ? this.stage.subarray(0, this.staged) : Buffer.alloc(0), true);
    this.staged = 0;
    this.ended = true;
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.emit(this.header);
  }

  private seal(plain: Buffer, final: boolean): void {
    if (this.index >= MAX_RECORDS) {
      throw new BackupCryptoError('invalid_argument', 'A backup stream cannot have more than 2^32 chunks; split the data into more parts.');
    }
    this.params.set(this.index, final);
    const cipher = createCipheriv(ALGORITHM, this.key, this.params.nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(this.params.aad);
    const ciphertext = cipher.update(plain);
    cipher.final(); // GCM produces no bytes here; the call computes the tag
    const record = Buffer.allocUnsafe(RECORD_OVERHEAD + ciphertext.length);
    record.writeUInt32BE(ciphertext.length, 0);
    ciphertext.copy(record, LENGTH_FIELD_LENGTH);
    cipher.getAuthTag().copy(record, LENGTH_FIELD_LENGTH + ciphertext.length);
    this.index += 1;
    this.emit(record);
  }
}

type DecoderState = 'header' | 'length' | 'body' | 'tag' | 'done' | 'failed';

/**
 * Reads the v1 format from arbitrarily cut input. Ciphertext goes through the decipher as it
 * arrives and its plaintext is held back until the record's tag has verified: Node's GCM decipher
 * returns plaintext from update() before final() has checked anything, so emitting it earlier
 * would hand a restore bytes an attacker chose.
 */
export class ChunkDecoder {
  private readonly key: KeyObject;
  private readonly callerAad: Buffer;
  private readonly emit: (plaintext: Buffer) => void;
  private state: DecoderState = 'header';
  // Header, length field and tag are small and may arrive split; they are gathered here.
  private readonly field = Buffer.alloc(HEADER_LENGTH);
  private fieldFill = 0;
  private params: RecordParams | undefined;
  private chunkSize = 0;
  private index = 0;
  private bodyLeft = 0;
  private final = false;
  private decipher: DecipherGCM | undefined;
  private held: Buffer[] = [];
  private consumed = 0;
  private failure: BackupIntegrityError | undefined;

  constructor(dataKey: Buffer, options: { aad?: string }, emit: (plaintext: Buffer) => void) {
    this.key = secretKey(dataKey);
    this.callerAad = callerAadBytes(options.aad);
    this.emit = emit;
  }

  /** Throws BackupIntegrityError; plaintext of records verified before the failure has already been emitted. */
  write(data: Buffer): void {
    if (this.failure) throw this.failure;
    try {
      this.consume(data);
    } catch (e) {
      if (e instanceof BackupIntegrityError) {
        this.state = 'failed';
        this.failure = e;
        this.held = [];
      }
      throw e;
    }
  }

  /** Call at end of input: anything short of a verified final record is a truncation. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.state === 'done') return;
    let where: string;
    switch (this.state) {
      case 'header':
        where = this.consumed === 0 ? 'the input is empty' : `it ends after ${this.consumed} of the ${HEADER_LENGTH} header bytes`;
        break;
      case 'length':
        if (this.fieldFill > 0) where = `it ends inside the length field of chunk ${this.index}`;
        else if (this.index === 0) where = 'it ends right after the header (chunk 0 is missing)';
        else where = `it ends after chunk ${this.index - 1} without a final chunk (chunk ${this.index} or later is missing)`;
        break;
      case 'body':
        where = `it ends inside the ciphertext of chunk ${this.index}`;
        break;
      default:
        where = `it ends inside the tag of chunk ${this.index}`;
    }
    const at = this.state === 'header' ? { offset: this.consumed } : { chunkIndex: this.index, offset: this.consumed };
    this.failure = new BackupIntegrityError('truncated', `Backup data is truncated at byte ${this.consumed}: ${where}.`, at);
    this.state = 'failed';
    this.held = [];
    throw this.failure;
  }

  private consume(data: Buffer): void {
    let offset = 0;
    const length = data.length;
    while (offset < length) {
      switch (this.state) {
        case 'header': {
          const take = Math.min(HEADER_LENGTH - this.fieldFill, length - offset);
          data.copy(this.field, this.fieldFill, offset, offset + take);
          // Check magic and version as soon as their bytes arrive, so a file that is not a backup
          // fails as bad_header at once, while a real backup cut short inside its header still
          // reaches end() as truncated.
          this.checkHeaderPrefix(this.fieldFill, this.fieldFill + take);
          this.fieldFill += take;
          offset += take;
          this.consumed += take;
          if (this.fieldFill === HEADER_LENGTH) this.acceptHeader();
          break;
        }
        case 'length': {
          const take = Math.min(LENGTH_FIELD_LENGTH - this.fieldFill, length - offset);
          data.copy(this.field, this.fieldFill, offset, offset + take);
          this.fieldFill += take;
          offset += take;
          this.consumed += take;
          if (this.fieldFill === LENGTH_FIELD_LENGTH) this.beginRecord(this.field.readUInt32BE(0));
          break;
        }
        case 'body': {
          const take = Math.min(this.bodyLeft, length - offset);
          const plain = (this.decipher as DecipherGCM).update(data.subarray(offset, offset + take));
          if (plain.length > 0) this.held.push(plain);
          this.bodyLeft -= take;
          offset += take;
          this.consumed += take;
          if (this.bodyLeft === 0) {
            this.state = 'tag';
            this.fieldFill = 0;
          }
          break;
        }
        case 'tag': {
          const take = Math.min(TAG_LENGTH - this.fieldFill, length - offset);
          data.copy(this.field, this.fieldFill, offset, offset + take);
          this.fieldFill += take;
          offset += take;
          this.consumed += take;
          if (this.fieldFill === TAG_LENGTH) this.finishRecord();
          break;
        }
        case 'done':
          this.fail('trailing_data', `Backup data has ${length - offset} or more bytes after its final chunk (chunk ${this.index - 1}).`, {
            chunkIndex: this.index - 1,
            offset: this.consumed,
          });
          break;
        case 'failed':
          throw this.failure;
      }
    }
  }

  private checkHeaderPrefix(from: number, to: number): void {
    const end = Math.min(to, CHUNK_SIZE_OFFSET);
    for (let i = from; i < end; i++) {
      const byte = this.field[i];
      if (i < VERSION_OFFSET && byte !== MAGIC[i]) {
        this.fail('bad_header', 'This is not a hokan backup stream: the header does not start with HKNBAK1.', { offset: i });
      }
      if (i === VERSION_OFFSET && byte !== FORMAT_VERSION) {
        this.fail('bad_header', `Backup stream format version ${String(byte)} is not supported (only version ${FORMAT_VERSION}).`, { offset: i });
      }
      if (i === RESERVED_OFFSET && byte !== 0) {
        this.fail('bad_header', 'The backup header is invalid: its reserved byte is not zero.', { offset: i });
      }
    }
  }

  private acceptHeader(): void {
    const chunkSize = this.field.readUInt32BE(CHUNK_SIZE_OFFSET);
    // Also the bound on how much unverified plaintext a hostile file can make us hold.
    if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
      this.fail('bad_header', `The backup header is invalid: chunk size ${chunkSize} is outside ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE}.`, {
        offset: CHUNK_SIZE_OFFSET,
      });
    }
    this.chunkSize = chunkSize;
    this.params = new RecordParams(Buffer.from(this.field.subarray(0, HEADER_LENGTH)), this.callerAad);
    this.state = 'length';
    this.fieldFill = 0;
  }

  private beginRecord(recordLength: number): void {
    if (recordLength > this.chunkSize) {
      this.fail('tampered', `Backup data was tampered with: chunk ${this.index} claims ${recordLength} bytes, more than the chunk size ${this.chunkSize}.`, {
        chunkIndex: this.index,
        offset: this.consumed - LENGTH_FIELD_LENGTH,
      });
    }
    if (this.index >= MAX_RECORDS) {
      this.fail('tampered', 'Backup data was tampered with: it has more chunks than the format allows.', { chunkIndex: this.index, offset: this.consumed });
    }
    const params = this.params as RecordParams;
    this.final = recordLength < this.chunkSize;
    params.set(this.index, this.final);
    const decipher = createDecipheriv(ALGORITHM, this.key, params.nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(params.aad);
    this.decipher = decipher;
    this.bodyLeft = recordLength;
    this.state = recordLength > 0 ? 'body' : 'tag';
    this.fieldFill = 0;
  }

  private finishRecord(): void {
    const decipher = this.decipher as DecipherGCM;
    decipher.setAuthTag(this.field.subarray(0, TAG_LENGTH));
    try {
      decipher.final();
    } catch {
      this.fail(
        'tampered',
        `Backup data was tampered with, or does not belong to this key and context: chunk ${this.index} failed authentication` +
          ' (changed or reordered bytes, another backup part, a wrong data key or wrong associated data).',
        { chunkIndex: this.index, offset: this.consumed - TAG_LENGTH },
      );
    }
    this.decipher = undefined;
    const verified = this.held;
    this.held = [];
    this.index += 1;
    this.state = this.final ? 'done' : 'length';
    this.fieldFill = 0;
    for (const piece of verified) this.emit(piece);
  }

  private fail(code: BackupIntegrityErrorCode, message: string, where: { chunkIndex?: number; offset?: number }): never {
    throw new BackupIntegrityError(code, message, where);
  }
}
