import { fileURLToPath } from 'node:url';
import type { BlobStore } from './blob-store.js';
import { InvalidStoreConfigError } from './errors.js';
import { LocalDirectoryStore } from './local-directory-store.js';
import { S3Store, type S3StoreOptions } from './s3-store.js';

export interface BlobStoreCredentials {
  accessKeyId?: string;
  secretAccessKey?: string;
}

const S3_PARAMS = ['endpoint', 'region', 'forcePathStyle', 'objectLock'] as const;
type S3Param = (typeof S3_PARAMS)[number];

const fail = (what: string): never => {
  throw new InvalidStoreConfigError(`Invalid blob store URL: ${what}`);
};

/**
 * Turns one configuration string into a store:
 *   /abs/path, file:///abs/path, or
 *   s3://bucket/optional/prefix?endpoint=http://127.0.0.1:4568&region=ap-northeast-1&forcePathStyle=true&objectLock=true
 * Credentials come separately so that the URL can be logged; messages never repeat parts of the
 * URL that could hold a secret (user-info, parameter values).
 */
export function parseBlobStoreUrl(url: string, credentials?: BlobStoreCredentials): BlobStore {
  if (typeof url !== 'string' || url.trim() === '') return fail('it is empty.');
  if (url !== url.trim()) return fail('it has leading or trailing spaces.');
  if (url.startsWith('/')) return new LocalDirectoryStore({ root: url });

  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    return fail(`${JSON.stringify(url)} is a relative path; use an absolute path, a file:// URL or an s3:// URL.`);
  }
  if (scheme === 'file') return parseFileUrl(url);
  if (scheme === 's3') return parseS3Url(url, credentials);
  return fail(`unknown scheme "${scheme}:"; use an absolute path, file:// or s3://.`);
}

function parseFileUrl(url: string): BlobStore {
  if (!/^file:\/\//i.test(url)) fail('a file URL must start with file:// followed by an absolute path (file:///srv/backup).');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('the file URL cannot be parsed.');
  }
  if (parsed.hostname !== '' && parsed.hostname !== 'localhost') {
    fail(`a file URL must not name a host ("${parsed.hostname}"); use file:///abs/path.`);
  }
  if (parsed.search !== '' || parsed.hash !== '') fail('a file URL must not have a query or fragment.');
  let root: string;
  try {
    root = fileURLToPath(parsed);
  } catch {
    return fail('the file URL does not name a local path.');
  }
  return new LocalDirectoryStore({ root });
}

function parseS3Url(url: string, credentials: BlobStoreCredentials | undefined): BlobStore {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('the s3 URL cannot be parsed (expected s3://bucket/prefix?endpoint=…).');
  }
  if (parsed.username !== '' || parsed.password !== '') {
    fail('the s3 URL must not contain credentials; pass them separately.');
  }
  if (parsed.port !== '') fail('the s3 URL must not have a port; put host and port in the endpoint parameter.');
  if (parsed.hash !== '') fail('the s3 URL must not have a fragment.');
  const bucket = parsed.hostname;
  if (bucket === '') fail('the bucket is missing (expected s3://bucket/prefix).');

  let prefix: string;
  try {
    prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
  } catch {
    return fail('the key prefix is not validly percent-encoded.');
  }

  const opts: S3StoreOptions = { bucket, prefix };
  const seen = new Set<string>();
  for (const [name, value] of parsed.searchParams) {
    if (!(S3_PARAMS as readonly string[]).includes(name)) {
      fail(`unknown query parameter "${name}" (allowed: ${S3_PARAMS.join(', ')}).`);
    }
    if (seen.has(name)) fail(`the query parameter "${name}" is given twice.`);
    seen.add(name);
    applyParam(opts, name as S3Param, value);
  }
  if (credentials?.accessKeyId !== undefined) opts.accessKeyId = credentials.accessKeyId;
  if (credentials?.secretAccessKey !== undefined) opts.secretAccessKey = credentials.secretAccessKey;

  try {
    return new S3Store(opts);
  } catch (err) {
    if (err instanceof InvalidStoreConfigError) fail(err.message);
    throw err;
  }
}

function applyParam(opts: S3StoreOptions, name: S3Param, value: string): void {
  switch (name) {
    case 'endpoint':
      if (value === '') fail('the endpoint parameter is empty.');
      opts.endpoint = value; // S3Store checks it and says what is wrong
      return;
    case 'region':
      if (value === '') fail('the region parameter is empty.');
      opts.region = value;
      return;
    case 'forcePathStyle':
    case 'objectLock':
      if (value !== 'true' && value !== 'false') fail(`the ${name} parameter must be "true" or "false".`);
      opts[name] = value === 'true';
      return;
  }
}
