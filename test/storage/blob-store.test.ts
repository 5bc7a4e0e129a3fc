import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  BlobRetainedError,
  InvalidKeyError,
  InvalidStoreConfigError,
  LocalDirectoryStore,
  S3Store,
  StorageUnavailableError,
  deviceIdOf,
  onSameDevice,
  parseBlobStoreUrl,
  validateBlobKey,
  type BlobInfo,
  type BlobStore,
  type S3StoreOptions,
} from '../../src/storage/index.js';

const BUCKET = 'hokan-test';
const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const MiB = 1024 * 1024;
const HOUR = 3600_000;
const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

let tmp: string;
let s3rver: ChildProcess | null = null;
let endpoint = '';
const s3Stores: S3Store[] = [];

/** s3rver runs in a child process; s3rver-server.ts explains why. */
async function startS3rver(directory: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', path.join(projectRoot, 'test/storage/s3rver-server.ts'), directory, BUCKET],
    { cwd: projectRoot, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited early with code ${code}`)));
    child.once('error', reject);
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return { child, port };
}

function s3Store(opts: Partial<S3StoreOptions> = {}): S3Store {
  const store = new S3Store({ bucket: BUCKET, endpoint, region: 'us-east-1', forcePathStyle: true, ...CREDS, ...opts });
  s3Stores.push(store);
  return store;
}

function rawS3Client(): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: CREDS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'hokan-blob-'));
  const dir = path.join(tmp, 's3rver');
  await mkdir(dir);
  const started = await startS3rver(dir);
  s3rver = started.child;
  endpoint = `http://127.0.0.1:${started.port}`;
});

afterAll(async () => {
  for (const s of s3Stores) s.destroy();
  if (s3rver && s3rver.exitCode === null) {
    const exited = new Promise((resolve) => s3rver!.once('exit', resolve));
    s3rver.stdin!.end(); // the server closes itself when its stdin ends
    await exited;
  }
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

/** Deterministic bytes, in chunks, optionally failing after `failAfter` bytes. */
function chunkAt(index: number, size: number): Buffer {
  const buf = Buffer.alloc(size, (index * 37 + 11) & 0xff);
  buf.writeUInt32BE(index, 0);
  return buf;
}

function generated(total: number, chunkSize: number, failAfter?: number): Readable {
  let sent = 0;
  let index = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        // asynchronous, as a network source would fail
        setTimeout(() => this.destroy(new Error('source broke half-way')), 5);
        return;
      }
      if (sent >= total) {
        this.push(null);
        return;
      }
      const size = Math.min(chunkSize, total - sent);
      sent += size;
      this.push(chunkAt(index++, size));
    },
  });
}

function expectedDigest(total: number, chunkSize: number): string {
  const hash = createHash('sha256');
  for (let sent = 0, index = 0; sent < total; index++) {
    const size = Math.min(chunkSize, total - sent);
    hash.update(chunkAt(index, size));
    sent += size;
  }
  return hash.digest('hex');
}

async function drain(stream: NodeJS.ReadableStream): Promise<{ size: number; sha256: string; bytes: Buffer | null }> {
  const hash = createHash('sha256');
  const small: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(buf);
    size += buf.length;
    if (size <= MiB) small.push(buf);
  }
  return { size, sha256: hash.digest('hex'), bytes: size <= MiB ? Buffer.concat(small) : null };
}

async function collect(it: AsyncIterable<BlobInfo>): Promise<BlobInfo[]> {
  const out: BlobInfo[] = [];
  for await (const info of it) out.push(info);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function walkFiles(dir: string, rel = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await walkFiles(dir, r)));
    else out.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

interface Backend {
  store: BlobStore;
  /** Everything the backend physically holds under `prefix`, store-internal files included. */
  rawNames(prefix: string): Promise<string[]>;
}

const backends: Array<{ name: string; make: () => Promise<Backend> }> = [
  {
    name: 'LocalDirectoryStore',
    make: async () => {
      const root = path.join(tmp, 'local', 'not-yet-created'); // the store creates its root
      return {
        store: new LocalDirectoryStore({ root }),
        rawNames: async (prefix) => (await walkFiles(root)).filter((n) => n.startsWith(prefix)),
      };
    },
  },
  {
    // s3rver accepts and ignores the Object Lock headers (it has no Object Lock), so the suite
    // runs with objectLock on: that proves the headers do not break uploads, not that they lock.
    name: 'S3Store on s3rver',
    make: async () => {
      const client = rawS3Client();
      return {
        store: s3Store({ prefix: 'contract', objectLock: true, listPageSize: 2 }),
        rawNames: async (prefix) => {
          const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `contract/${prefix}` }));
          return (out.Contents ?? []).map((o) => o.Key!.slice('contract/'.length));
        },
      };
    },
  },
];

describe.each(backends)('BlobStore contract: $name', ({ make }) => {
  let b: Backend;
  beforeAll(async () => {
    b = await make();
  });

  it('round-trips a Buffer and reports size and sha256', async () => {
    const body = Buffer.from('介護記録 — care record\n');
    const put = await b.store.put('rt/buffer.txt', body, { contentType: 'text/plain' });
    expect(put).toEqual({ key: 'rt/buffer.txt', size: body.length, sha256: sha(body) });
    const got = await drain(await b.store.get('rt/buffer.txt'));
    expect(got.bytes?.equals(body)).toBe(true);
    expect(await b.store.head('rt/buffer.txt')).toEqual({ key: 'rt/buffer.txt', size: body.length, retainUntil: null });
  });

  it('round-trips a 20 MB stream, hashing it on the way', async () => {
    const total = 20 * MiB;
    const digest = expectedDigest(total, 256 * 1024);
    const put = await b.store.put('rt/stream.bin', generated(total, 256 * 1024));
    expect(put).toEqual({ key: 'rt/stream.bin', size: total, sha256: digest });
    const got = await drain(await b.store.get('rt/stream.bin'));
    expect(got.size).toBe(total);
    expect(got.sha256).toBe(digest);
    expect((await b.store.head('rt/stream.bin'))?.size).toBe(total);
    // digest reads to the end (more than one reused buffer's worth) and agrees with put.
    expect(await b.store.digest('rt/stream.bin')).toEqual({ size: total, sha256: digest });
  });

  it('stores an empty body', async () => {
    expect(await b.store.put('rt/empty', Buffer.alloc(0))).toEqual({ key: 'rt/empty', size: 0, sha256: sha('') });
    expect((await drain(await b.store.get('rt/empty'))).size).toBe(0);
    expect(await b.store.digest('rt/empty')).toEqual({ size: 0, sha256: sha('') });
  });

  it('answers a missing key: get and digest throw BlobNotFoundError, head is null, delete is a no-op', async () => {
    await expect(b.store.get('missing/nothing')).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(b.store.digest('missing/nothing')).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(b.store.get('missing/nothing')).rejects.toMatchObject({ code: 'blob_not_found' });
    expect(await b.store.head('missing/nothing')).toBeNull();
    await expect(b.store.delete('missing/nothing', new Date())).resolves.toBeUndefined();
  });

  it('lists keys under a prefix, across several pages, without internal files', async () => {
    const keys = ['ls/a/1', 'ls/a/2', 'ls/a/sub/3', 'ls/a/sub/4', 'ls/ab', 'ls/b/1', 'ls/b/2'];
    for (const k of keys) await b.store.put(k, Buffer.from(k));
    const all = await collect(b.store.list('ls/'));
    expect(all.map((i) => i.key)).toEqual([...keys].sort());
    expect(all.find((i) => i.key === 'ls/ab')).toEqual({ key: 'ls/ab', size: 5, retainUntil: null });
    expect((await collect(b.store.list('ls/a/'))).map((i) => i.key)).toEqual(['ls/a/1', 'ls/a/2', 'ls/a/sub/3', 'ls/a/sub/4']);
    // a prefix is a string prefix, as on S3, not a directory
    expect((await collect(b.store.list('ls/a'))).map((i) => i.key)).toEqual(['ls/a/1', 'ls/a/2', 'ls/a/sub/3', 'ls/a/sub/4', 'ls/ab']);
    expect(await collect(b.store.list('ls/none/'))).toEqual([]);
    const everything = (await collect(b.store.list(''))).map((i) => i.key);
    expect(everything).toEqual(expect.arrayContaining(keys));
    expect(everything.every((k) => !k.includes('.hokan-'))).toBe(true);
  });

  it('rejects bad keys and prefixes in every method', async () => {
    for (const bad of ['../x', '/abs', 'a//b', '', 'a/', 'a/../b', '.hidden', 'a b', 'x.hokan-meta.json']) {
      await expect(b.store.put(bad, Buffer.from('x')), bad).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(b.store.get(bad), bad).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(b.store.head(bad), bad).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(b.store.delete(bad, new Date()), bad).rejects.toMatchObject({ code: 'invalid_key' });
    }
    for (const bad of ['../', '/abs/', 'a//', '../x']) {
      expect(() => b.store.list(bad), bad).toThrow(InvalidKeyError);
    }
  });

  it('refuses to delete a retained blob before its date, and deletes it after', async () => {
    const now = new Date();
    const retainUntil = new Date(now.getTime() + HOUR);
    await b.store.put('ret/delete', Buffer.from('backup'), { retainUntil });
    expect((await b.store.head('ret/delete'))?.retainUntil?.toISOString()).toBe(retainUntil.toISOString());
    const listed = await collect(b.store.list('ret/'));
    expect(listed.find((i) => i.key === 'ret/delete')?.retainUntil?.toISOString()).toBe(retainUntil.toISOString());

    const err = await b.store.delete('ret/delete', now).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobRetainedError);
    expect(err).toMatchObject({ code: 'blob_retained', key: 'ret/delete' });
    // exactly at the date it is still retained ("retainUntil > now" is what lets it go)
    await expect(b.store.delete('ret/delete', new Date(retainUntil.getTime() - 1))).rejects.toBeInstanceOf(BlobRetainedError);
    expect(await b.store.head('ret/delete')).not.toBeNull();

    await b.store.delete('ret/delete', new Date(retainUntil.getTime() + 1));
    expect(await b.store.head('ret/delete')).toBeNull();
    expect(await b.rawNames('ret/delete')).toEqual([]);
  });

  it('refuses to overwrite a blob retained into the future, and overwrites one whose date passed', async () => {
    await b.store.put('ret/future', Buffer.from('first'), { retainUntil: new Date(Date.now() + HOUR) });
    await expect(b.store.put('ret/future', Buffer.from('second'))).rejects.toBeInstanceOf(BlobRetainedError);
    await expect(b.store.put('ret/future', generated(1000, 100))).rejects.toMatchObject({ code: 'blob_retained' });
    expect((await drain(await b.store.get('ret/future'))).bytes?.toString()).toBe('first');

    await b.store.put('ret/past', Buffer.from('first'), { retainUntil: new Date(Date.now() - 1000) });
    const second = await b.store.put('ret/past', Buffer.from('second'), { retainUntil: new Date(Date.now() + HOUR) });
    expect(second.sha256).toBe(sha('second'));
    expect((await drain(await b.store.get('ret/past'))).bytes?.toString()).toBe('second');
    expect((await b.store.head('ret/past'))?.retainUntil?.getTime()).toBeGreaterThan(Date.now());
  });

  it('overwrites an unretained blob', async () => {
    await b.store.put('ow/key', Buffer.from('one'));
    await b.store.put('ow/key', Buffer.from('two!'));
    expect(await b.store.head('ow/key')).toEqual({ key: 'ow/key', size: 4, retainUntil: null });
    expect((await drain(await b.store.get('ow/key'))).bytes?.toString()).toBe('two!');
  });

  it('shows no part of a blob until its put has completed', async () => {
    const body = new Readable({ read() {} });
    const putting = b.store.put('vis/slow', body);
    body.push(Buffer.alloc(3 * MiB, 1));
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the store take in what it has
    expect(await b.store.head('vis/slow')).toBeNull();
    await expect(b.store.get('vis/slow')).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await collect(b.store.list('vis/'))).toEqual([]);
    body.push(Buffer.alloc(MiB, 2));
    body.push(null);
    expect((await putting).size).toBe(4 * MiB);
    expect((await b.store.head('vis/slow'))?.size).toBe(4 * MiB);
  });

  it('leaves nothing behind when the body stream fails half-way, and passes its error on', async () => {
    // 10 MiB before failing: past the first 8 MiB part, so on S3 a multipart upload is under way.
    const err = await b.store.put('fail/half', generated(20 * MiB, 512 * 1024, 10 * MiB)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('source broke half-way');
    expect(await b.store.head('fail/half')).toBeNull();
    await expect(b.store.get('fail/half')).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await collect(b.store.list('fail/'))).toEqual([]);
    expect(await b.rawNames('fail/')).toEqual([]);
  });

  it('keeps the previous blob when an overwrite fails half-way', async () => {
    await b.store.put('fail/keep', Buffer.from('previous'));
    await expect(b.store.put('fail/keep', generated(2 * MiB, 256 * 1024, MiB))).rejects.toThrow('source broke half-way');
    expect((await drain(await b.store.get('fail/keep'))).bytes?.toString()).toBe('previous');
    expect((await b.rawNames('fail/keep')).filter((n) => n !== 'fail/keep' && n !== 'fail/keep.hokan-meta.json')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('validateBlobKey', () => {
  it('accepts ordinary keys', () => {
    for (const ok of ['a', '0', 'customers/42/files/7f3c-aa_01.bin', 'backups/2026-11-27/db.tar.gz', 'a/.b', `a${'b'.repeat(500)}`]) {
      expect(() => validateBlobKey(ok), ok).not.toThrow();
    }
  });

  it('names what is wrong', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['/abs', /starts with '\/'/],
      ['../x', /start with a letter or a digit/],
      ['a/../x', /'\.\.' segment/],
      ['a/./x', /'\.' segment/],
      ['a//b', /empty segment/],
      ['a/', /ends with '\/'/],
      ['a\\b', /character other than/],
      ['ä', /character other than/],
      [`a${'b'.repeat(501)}`, /longer than 501/],
      ['a/x.hokan-tmp-1', /reserved/],
    ];
    for (const [key, message] of cases) {
      expect(() => validateBlobKey(key), key).toThrow(message);
    }
  });
});

describe('LocalDirectoryStore specifics', () => {
  let root: string;
  let store: LocalDirectoryStore;
  beforeAll(async () => {
    root = path.join(tmp, 'local-specific');
    store = new LocalDirectoryStore({ root });
  });

  it('refuses a relative root', () => {
    expect(() => new LocalDirectoryStore({ root: 'data/blobs' })).toThrow(InvalidStoreConfigError);
  });

  it('makes the object read-only and keeps retention in a sidecar written with it', async () => {
    const retainUntil = new Date(Date.now() + HOUR);
    const put = await store.put('ro/obj', Buffer.from('immutable'), { retainUntil });
    expect((await stat(path.join(root, 'ro/obj'))).mode & 0o777).toBe(0o444);
    const sidecar = JSON.parse(await readFile(path.join(root, 'ro/obj.hokan-meta.json'), 'utf8')) as unknown;
    expect(sidecar).toEqual({ retainUntil: retainUntil.toISOString(), sha256: put.sha256, size: 9 });
    expect(await walkFiles(root, 'ro')).toEqual(expect.arrayContaining(['ro/obj', 'ro/obj.hokan-meta.json']));
    expect((await walkFiles(root, 'ro')).length).toBe(2);
  });

  it('does not list temp files or stray files that no key can name', async () => {
    await store.put('stray/real', Buffer.from('x'));
    await writeFile(path.join(root, 'stray/real.hokan-tmp-0123abcd'), 'half-written');
    await writeFile(path.join(root, 'stray/has space'), 'hand-made');
    expect((await collect(store.list('stray/'))).map((i) => i.key)).toEqual(['stray/real']);
  });

  it('refuses a key that would need a blob to be a directory, or the reverse', async () => {
    await store.put('clash/a', Buffer.from('file'));
    await expect(store.put('clash/a/b', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await store.put('clash/d/e', Buffer.from('x'));
    await expect(store.put('clash/d', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(store.get('clash/d')).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.digest('clash/d')).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await store.head('clash/d')).toBeNull();
  });

  it('treats an unreadable sidecar as a storage fault, never as "not retained"', async () => {
    await store.put('corrupt/obj', Buffer.from('x'), { retainUntil: new Date(Date.now() + HOUR) });
    const meta = path.join(root, 'corrupt/obj.hokan-meta.json');
    await rm(meta, { force: true });
    await writeFile(meta, '{not json');
    await expect(store.delete('corrupt/obj', new Date())).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(existsSync(path.join(root, 'corrupt/obj'))).toBe(true);
  });

  it('R10.7 removeLeftovers clears a retention record whose object a killed delete already removed; records with their object stay', async () => {
    await store.put('left/a', Buffer.from('a'));
    await store.put('left/b', Buffer.from('b'));
    // A delete killed between its two unlinks: the object is gone, its record is not.
    await rm(path.join(root, 'left/a'), { force: true });
    const now = new Date();
    // Younger than the threshold: it might belong to an upload in progress, so it stays.
    expect(await store.removeLeftovers('left/', now)).toBe(0);
    expect(existsSync(path.join(root, 'left/a.hokan-meta.json'))).toBe(true);
    expect(await store.removeLeftovers('left/', now, 0)).toBe(1);
    expect((await walkFiles(root, 'left')).sort()).toEqual(['left/b', 'left/b.hokan-meta.json']);
    expect((await collect(store.list('left/'))).map((i) => i.key)).toEqual(['left/b']);
  });
});

describe('S3Store specifics', () => {
  it('records retention and sha256 as object metadata, and the sha256 of a stream as a tag', async () => {
    const store = s3Store({ prefix: 'meta' });
    const client = rawS3Client();
    const retainUntil = new Date(Date.now() + HOUR);
    const put = await store.put('m/buffer', Buffer.from('hello'), { retainUntil, contentType: 'text/plain' });
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'meta/m/buffer' }));
    expect(head.Metadata).toEqual({ 'hokan-retain-until': retainUntil.toISOString(), 'hokan-sha256': put.sha256 });
    expect(head.ContentType).toBe('text/plain');

    const streamed = await store.put('m/stream', generated(3 * MiB, 64 * 1024));
    const tags = await client.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'meta/m/stream' }));
    expect(tags.TagSet).toEqual([{ Key: 'hokan-sha256', Value: streamed.sha256 }]);
    client.destroy();
  });

  it('reports a closed port as StorageUnavailableError naming the endpoint, without secrets', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const store = s3Store({ endpoint: `http://127.0.0.1:${port}`, accessKeyId: 'AKIDCLOSED', secretAccessKey: 'very-secret-value' });
    const attempts: Array<() => Promise<unknown>> = [() => store.head('k'), () => store.get('k'), () => store.put('k', Buffer.from('x')), () => collect(store.list(''))];
    for (const attempt of attempts) {
      const err = await attempt().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect((err as Error).message).toContain(`127.0.0.1:${port}`);
      expect((err as Error).message).not.toContain('very-secret-value');
      expect((err as Error).message).not.toContain('AKIDCLOSED');
    }
    expect(store.description).not.toContain('secret');
  });

  it('reports a missing bucket as StorageUnavailableError', async () => {
    const store = s3Store({ bucket: 'no-such-bucket' });
    // (HEAD answers carry no body, so head() alone cannot tell a missing bucket from a missing key)
    await expect(store.get('k')).rejects.toThrow(/bucket "no-such-bucket" does not exist/);
    await expect(store.put('k', Buffer.from('x'))).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(collect(store.list(''))).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});

describe('parseBlobStoreUrl', () => {
  it('accepts an absolute path and a file:// URL', () => {
    const a = parseBlobStoreUrl('/srv/hokan/backup');
    expect(a).toBeInstanceOf(LocalDirectoryStore);
    expect(a.description).toBe('directory /srv/hokan/backup');
    const f = parseBlobStoreUrl('file:///srv/hokan/backup');
    expect(f).toBeInstanceOf(LocalDirectoryStore);
    expect(f.description).toBe('directory /srv/hokan/backup');
    expect(parseBlobStoreUrl('file://localhost/srv/x').description).toBe('directory /srv/x');
  });

  it('accepts an s3:// URL with its parameters and keeps credentials out of the description', () => {
    const s = parseBlobStoreUrl(
      's3://backups-tokyo/hokan/daily?endpoint=http://127.0.0.1:4568&region=ap-northeast-1&forcePathStyle=true&objectLock=true',
      { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI-secret' },
    );
    expect(s).toBeInstanceOf(S3Store);
    expect(s.description).toBe('s3://backups-tokyo/hokan/daily at http://127.0.0.1:4568 (object lock)');
    expect(s.description).not.toMatch(/AKIDEXAMPLE|secret/);
    expect(parseBlobStoreUrl('s3://plain-bucket').description).toBe('s3://plain-bucket/ in us-east-1');
    (s as S3Store).destroy();
  });

  it('gives a store that works against s3rver', async () => {
    const store = parseBlobStoreUrl(`s3://${BUCKET}/via-url/?endpoint=${endpoint}&region=us-east-1&forcePathStyle=true`, CREDS);
    expect(store).toBeInstanceOf(S3Store);
    s3Stores.push(store as S3Store);
    await store.put('k', Buffer.from('through the URL'));
    expect((await drain(await store.get('k'))).bytes?.toString()).toBe('through the URL');
  });

  it('names the problem in each bad form', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['data/blobs', /relative path/],
      ['./blobs', /relative path/],
      ['http://example.com/x', /unknown scheme "http:"/],
      ['ftp://x', /unknown scheme "ftp:"/],
      ['file:relative/x', /file URL must start with file:\/\//],
      ['file://otherhost/srv/x', /must not name a host/],
      ['file:///srv/x?mode=1', /query/],
      ['s3://', /bucket is missing/],
      ['s3:///only/prefix', /bucket is missing/],
      ['s3://Bad_Bucket/x', /bucket name/],
      ['s3://bucket/a//b', /prefix/],
      ['s3://bucket?endpoint=not%20a%20url', /endpoint is not a valid URL/],
      ['s3://bucket?endpoint=ftp://127.0.0.1', /endpoint must use http or https/],
      ['s3://bucket?endpoint=http://127.0.0.1:4568/some/path', /endpoint must be just scheme, host and port/],
      ['s3://bucket?region=', /region parameter is empty/],
      ['s3://bucket?region=Tokyo!', /region/],
      ['s3://bucket?forcePathStyle=yes', /forcePathStyle parameter must be "true" or "false"/],
      ['s3://bucket?objectLock=1', /objectLock parameter/],
      ['s3://bucket?bucketKey=x', /unknown query parameter "bucketKey"/],
      ['s3://bucket?region=a&region=b', /given twice/],
      ['s3://bucket:9000/x', /port/],
    ];
    for (const [url, message] of cases) {
      let err: unknown = null;
      try {
        parseBlobStoreUrl(url);
      } catch (e) {
        err = e;
      }
      expect(err, url).toBeInstanceOf(InvalidStoreConfigError);
      expect((err as InvalidStoreConfigError).code).toBe('invalid_store_config');
      expect((err as Error).message, url).toMatch(message);
    }
  });

  it('never repeats credentials found in the URL', () => {
    for (const url of ['s3://AKIDINURL:hunter2secret@bucket/x', 's3://bucket?endpoint=http://user:hunter2secret@127.0.0.1:4568']) {
      let message = '';
      try {
        parseBlobStoreUrl(url);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/credentials/);
      expect(message).not.toContain('hunter2secret');
      expect(message).not.toContain('AKIDINURL');
    }
  });

  it('rejects only one of the two credentials', () => {
    expect(() => parseBlobStoreUrl('s3://bucket', { accessKeyId: 'AKID' })).toThrow(/both .* or neither/);
  });
});

describe('device checks', () => {
  it('sees two directories under one temp dir as one device', async () => {
    const a = path.join(tmp, 'dev-a');
    const b = path.join(tmp, 'dev-b');
    await mkdir(a);
    await mkdir(b);
    expect(await onSameDevice(a, b)).toBe(true);
  });

  it('walks up to the nearest existing ancestor for a path not created yet', async () => {
    expect(await deviceIdOf(path.join(tmp, 'not', 'there', 'yet'))).toBe((await stat(tmp)).dev);
  });

  it.skipIf(!existsSync('/proc/self'))('tells a different filesystem apart', async () => {
    expect(await onSameDevice('/proc/self', tmp)).toBe(false);
  });
});
