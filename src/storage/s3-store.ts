import { createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
  type HeadObjectCommandOutput,
  type ListObjectsV2CommandOutput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  isValidBlobKey,
  validateBlobKey,
  validateBlobPrefix,
  type BlobDigest,
  type BlobInfo,
  type BlobStore,
  type PutOptions,
  type PutResult,
} from './blob-store.js';
import {
  BlobNotFoundError,
  BlobRetainedError,
  InvalidStoreConfigError,
  StorageError,
  StorageUnavailableError,
} from './errors.js';
import { checkRetainUntil, HashingStream, isRetained, KeyedLock, mapLimit, releaseBody, sha256Hex, toReadable } from './internal.js';

export interface S3StoreOptions {
  bucket: string;
  /** Keys live under `<prefix>/` in the bucket; leading and trailing slashes are ignored. */
  prefix?: string;
  /** For S3-compatible services (MinIO, Wasabi, s3rver…); omit for AWS. */
  endpoint?: string;
  /** Defaults to us-east-1. */
  region?: string;
  /** Both or neither; with neither, the SDK's default chain (env, profile, instance role) applies. */
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle?: boolean;
  /** Also ask the bucket's Object Lock (COMPLIANCE mode) to hold every retained object. */
  objectLock?: boolean;
  /** MaxKeys per ListObjectsV2 request, 1–1000 (default 1000). */
  listPageSize?: number;
}

export const META_RETAIN_UNTIL = 'hokan-retain-until';
export const META_SHA256 = 'hokan-sha256';
/** Tag carrying the sha256 of a streamed body, which is only known after the last byte left. */
export const TAG_SHA256 = 'hokan-sha256';

const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
const HEAD_CONCURRENCY = 8;
const BUCKET_PATTERN = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);
const DENIED_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken']);

/** Validates an endpoint URL and returns it without a trailing slash. Shared with config.ts. */
export function normaliseEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new InvalidStoreConfigError('The S3 endpoint is not a valid URL (expected e.g. http://127.0.0.1:4568).');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidStoreConfigError(`The S3 endpoint must use http or https, not "${url.protocol.replace(/:$/, '')}".`);
  }
  // Credentials in the URL would end up in the description and therefore in logs.
  if (url.username !== '' || url.password !== '') {
    throw new InvalidStoreConfigError('The S3 endpoint must not contain credentials; pass them separately.');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new InvalidStoreConfigError('The S3 endpoint must be just scheme, host and port, without a path or query.');
  }
  return url.origin;
}

function networkCode(err: unknown): string | null {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; depth++) {
    const code = 'code' in e ? (e as { code: unknown }).code : undefined;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const name = 'name' in e ? (e as { name: unknown }).name : undefined;
    if (name === 'TimeoutError') return 'timeout';
    e = 'cause' in e ? (e as { cause: unknown }).cause : undefined;
  }
  return null;
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof S3ServiceException &&
    (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404) &&
    err.name !== 'NoSuchBucket'
  );
}

export class S3Store implements BlobStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly objectLock: boolean;
  private readonly listPageSize: number;
  private readonly lock = new KeyedLock();

  constructor(opts: S3StoreOptions) {
    if (typeof opts.bucket !== 'string' || !BUCKET_PATTERN.test(opts.bucket) || opts.bucket.includes('..')) {
      throw new InvalidStoreConfigError(
        `The S3 bucket name ${JSON.stringify(opts.bucket ?? '')} is not valid (3–63 characters: lower-case letters, digits, '.' and '-').`,
      );
    }
    const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (prefix !== '' && !isValidBlobKey(prefix)) {
      throw new InvalidStoreConfigError(`The S3 key prefix ${JSON.stringify(prefix)} is not valid: it must be a valid blob key.`);
    }
    const region = opts.region ?? 'us-east-1';
    if (!REGION_PATTERN.test(region)) throw new InvalidStoreConfigError(`The S3 region ${JSON.stringify(region)} is not valid.`);
    const endpoint = opts.endpoint === undefined ? undefined : normaliseEndpoint(opts.endpoint);
    if ((opts.accessKeyId === undefined) !== (opts.secretAccessKey === undefined)) {
      throw new InvalidStoreConfigError('Give both the S3 access key id and the secret access key, or neither.');
    }
    const pageSize = opts.listPageSize ?? 1000;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
      throw new InvalidStoreConfigError('listPageSize must be an integer from 1 to 1000.');
    }

    this.bucket = opts.bucket;
    this.keyPrefix = prefix === '' ? '' : `${prefix}/`;
    this.objectLock = opts.objectLock ?? false;
    this.listPageSize = pageSize;
    this.description = `s3://${opts.bucket}/${prefix}${endpoint ? ` at ${endpoint}` : ` in ${region}`}${this.objectLock ? ' (object lock)' : ''}`;
    this.client = new S3Client({
      region,
      ...(endpoint !== undefined ? { endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? false,
      ...(opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
      // Several S3-compatible services reject the SDK's default CRC32 checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Without a connect timeout an unreachable backup target hangs the backup job instead of
      // failing it; no request timeout, because one 8 MiB part on a slow link can take minutes.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
      maxAttempts: 3,
    });
  }

  async put(key: string, body: NodeJS.ReadableStream | Buffer, opts: PutOptions = {}): Promise<PutResult> {
    try {
      validateBlobKey(key);
      const retainUntil = checkRetainUntil(opts.retainUntil);
      return await this.lock.run(key, async () => {
        const current = await this.headUnlocked(key);
        if (current !== null && isRetained(current.retainUntil, new Date())) {
          throw new BlobRetainedError(key, current.retainUntil, 'overwrite');
        }
        return Buffer.isBuffer(body)
          ? await this.putBuffer(key, body, retainUntil, opts.contentType)
          : await this.putStream(key, toReadable(body), retainUntil, opts.contentType);
      });
    } catch (err) {
      releaseBody(body);
      throw err;
    }
  }

  async get(key: string): Promise<NodeJS.ReadableStream> {
    validateBlobKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }));
      if (!(out.Body instanceof Readable)) throw new Error('GetObject returned no readable body');
      return out.Body;
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(key, this.description);
      throw this.translate(err);
    }
  }

  async digest(key: string): Promise<BlobDigest> {
    const body = await this.get(key);
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
      }
    } catch (err) {
      throw this.translate(err);
    }
    return { size, sha256: hash.digest('hex') };
  }

  async head(key: string): Promise<BlobInfo | null> {
    validateBlobKey(key);
    return this.headUnlocked(key);
  }

  async delete(key: string, now: Date): Promise<void> {
    validateBlobKey(key);
    await this.lock.run(key, async () => {
      const current = await this.headUnlocked(key);
      if (current === null) return;
      if (isRetained(current.retainUntil, now)) throw new BlobRetainedError(key, current.retainUntil, 'delete');
      try {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }));
      } catch (err) {
        throw this.translate(err);
      }
    });
  }

  list(prefix: string): AsyncIterable<BlobInfo> {
    validateBlobPrefix(prefix);
    return this.listPages(prefix);
  }

  /** Releases the client's sockets; the store is unusable afterwards. */
  destroy(): void {
    this.client.destroy();
  }

  private async *listPages(prefix: string): AsyncGenerator<BlobInfo> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.keyPrefix + prefix, MaxKeys: this.listPageSize, ContinuationToken: token }),
        );
      } catch (err) {
        throw this.translate(err);
      }
      const keys = (page.Contents ?? [])
        .map((o) => o.Key?.slice(this.keyPrefix.length))
        // Objects written by other tools under names no blob key can have are not ours.
        .filter((k): k is string => k !== undefined && isValidBlobKey(k));
      // Retention lives in per-object metadata, which listings do not return.
      const infos = await mapLimit(keys, HEAD_CONCURRENCY, (k) => this.headUnlocked(k));
      for (const info of infos) if (info !== null) yield info; // null: deleted since the listing
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new StorageUnavailableError(this.description, 'a truncated listing came without a continuation token');
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private async headUnlocked(key: string): Promise<BlobInfo | null> {
    let out: HeadObjectCommandOutput;
    try {
      out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyPrefix + key }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.translate(err);
    }
    let retainUntil: Date | null = null;
    const raw = out.Metadata?.[META_RETAIN_UNTIL];
    if (raw !== undefined) {
      retainUntil = new Date(raw);
      // Unreadable retention must not read as "not retained", or a delete would get through.
      if (Number.isNaN(retainUntil.getTime())) {
        throw new StorageUnavailableError(this.description, `the retention metadata of ${JSON.stringify(key)} is unreadable`);
      }
    }
    // A lock placed by the bucket's default retention or by another tool binds us as well
    // (only reported when the credentials may read retention).
    const lockDate = out.ObjectLockRetainUntilDate;
    if (lockDate instanceof Date && !Number.isNaN(lockDate.getTime()) && (retainUntil === null || lockDate > retainUntil)) {
      retainUntil = lockDate;
    }
    return { key, size: out.ContentLength ?? 0, retainUntil };
  }

  private baseParams(key: string, retainUntil: Date | null, contentType: string | undefined, sha256: string | null): PutObjectCommandInput {
    const metadata: Record<string, string> = {};
    if (retainUntil !== null) metadata[META_RETAIN_UNTIL] = retainUntil.toISOString();
    if (sha256 !== null) metadata[META_SHA256] = sha256;
    return {
      Bucket: this.bucket,
      Key: this.keyPrefix + key,
      Metadata: metadata,
      ...(contentType !== undefined ? { ContentType: contentType } : {}),
      ...(this.objectLock && retainUntil !== null
        ? {
            ObjectLockMode: 'COMPLIANCE',
            ObjectLockRetainUntilDate: retainUntil,
            // S3 refuses Object Lock writes that carry no checksum; with WHEN_REQUIRED the SDK
            // would send none, so name one explicitly.
            ChecksumAlgorithm: 'SHA256',
          }
        : {}),
    };
  }

  private async putBuffer(key: string, body: Buffer, retainUntil: Date | null, contentType: string | undefined): Promise<PutResult> {
    const sha256 = sha256Hex(body);
    await this.upload({ ...this.baseParams(key, retainUntil, contentType, sha256), Body: body });
    return { key, size: body.length, sha256 };
  }

  private async putStream(key: string, source: Readable, retainUntil: Date | null, contentType: string | undefined): Promise<PutResult> {
    const hasher = new HashingStream();
    let sourceError: unknown = null;
    source.once('error', (err: unknown) => {
      sourceError = err;
    });
    // pipeline() forwards a source error into the hasher, which the Upload is reading, and
    // destroys the source if the Upload gives up on the hasher.
    pipeline(source, hasher, () => {});
    try {
      // Metadata is fixed when the upload starts, before the hash is known: the sha256 of a
      // stream goes into a tag afterwards (see putTag) and, above all, into the PutResult.
      await this.upload({ ...this.baseParams(key, retainUntil, contentType, null), Body: hasher });
    } catch (err) {
      hasher.destroy();
      // The caller's own error (e.g. a size limit) matters more than how the upload noticed it.
      throw sourceError ?? err;
    }
    const { size, sha256 } = hasher.result();
    await this.putTag(key, sha256);
    return { key, size, sha256 };
  }

  private async upload(params: PutObjectCommandInput): Promise<void> {
    // Upload aborts the multipart upload when a part or the body fails (leavePartsOnError:
    // false): S3 only shows an object once CompleteMultipartUpload succeeds, so nothing appears.
    const upload = new Upload({ client: this.client, params, partSize: PART_SIZE, queueSize: QUEUE_SIZE, leavePartsOnError: false });
    try {
      await upload.done();
    } catch (err) {
      throw this.translate(err);
    }
  }

  /**
   * Best effort: the object and its retention are already committed (and perhaps locked), so a
   * failure here must not fail the put, whose result carries the hash anyway; some S3-compatible
   * services do not implement tagging at all.
   */
  private async putTag(key: string, sha256: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectTaggingCommand({ Bucket: this.bucket, Key: this.keyPrefix + key, Tagging: { TagSet: [{ Key: TAG_SHA256, Value: sha256 }] } }),
      );
    } catch {
      // deliberately ignored, see above
    }
  }

  private translate(err: unknown): unknown {
    if (err instanceof StorageError) return err;
    const net = networkCode(err);
    if (net !== null) return new StorageUnavailableError(this.description, `cannot reach the endpoint (${net})`, { cause: err });
    if (err instanceof Error && err.name === 'CredentialsProviderError') {
      return new StorageUnavailableError(this.description, 'no S3 credentials could be loaded', { cause: err });
    }
    if (err instanceof S3ServiceException) {
      const status = err.$metadata.httpStatusCode;
      if (err.name === 'NoSuchBucket') return new StorageUnavailableError(this.description, `the bucket "${this.bucket}" does not exist`, { cause: err });
      if (DENIED_NAMES.has(err.name) || status === 403) {
        return new StorageUnavailableError(this.description, `access was denied (${err.name})`, { cause: err });
      }
      if (status !== undefined && status >= 500) {
        return new StorageUnavailableError(this.description, `the service answered ${status} ${err.name}`, { cause: err });
      }
    }
    return err;
  }
}
