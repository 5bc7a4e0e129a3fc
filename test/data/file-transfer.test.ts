import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { HokanError } from '../../src/core/errors.js';
import { fileBlobKey, uploadFile } from '../../src/data/files.js';
import { StorageUnavailableError, type BlobStore } from '../../src/storage/index.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

// content-disposition is what Express and friends parse the header with; it has no types of its own.
const contentDisposition = createRequire(import.meta.url)('content-disposition') as { parse(header: string): { type: string; parameters: Record<string, string> } };

const LIMIT = 64 * 1024;

/** Resolves when `check` holds, polling; rejects with `what` after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f));
}

/** Descriptors this process holds open on files under `dir`. */
function openFilesUnder(dir: string): string[] {
  return fs
    .readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((target) => target.startsWith(dir));
}

describe.each(databaseKinds)('R3.1 file uploads and downloads over real connections on %s', (kind) => {
  let app: TestApp & { filesDir: string };
  let customerId: string;
  let token: string;
  let port: number;

  beforeAll(async () => {
    // A long request timeout, so a connection that closes promptly was closed by the server's answer.
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_MAX_FILE_BYTES: String(LIMIT), HOKAN_REQUEST_TIMEOUT_MS: '60000' });
    customerId = (await addCustomerWithContract(app, 'aoi')).customer.id;
    await addCustomerUser(app, customerId, 'aoi-admin', 'customer_admin');
    const cookie = await app.signIn('aoi-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie, payload: { name: 'care-software' } })).json().token;
    await app.server.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => app?.close());

  const connections = () => new Promise<number>((resolve, reject) => app.server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  /**
   * Sends `head` and then `body` chunks as fast as the server takes them, until it answers; waits
   * for it to close the connection, or for `giveUpMs`. Returns the status line, the headers and whether it closed.
   */
  function exchange(head: string, body: () => Buffer | null, giveUpMs = 5_000): Promise<{ status: string; headers: string; closed: boolean; ms: number }> {
    return new Promise((resolve) => {
      const started = Date.now();
      const s = net.connect(port, '127.0.0.1');
      let received = '';
      let settled = false;
      const finish = (closed: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        s.destroy();
        const [headers = ''] = received.split('\r\n\r\n');
        resolve({ status: headers.split('\r\n')[0] ?? '', headers: headers.toLowerCase(), closed, ms: Date.now() - started });
      };
      const timer = setTimeout(() => finish(false), giveUpMs);
      s.on('data', (d: Buffer) => (received += d.toString('latin1')));
      s.on('close', () => finish(true));
      s.on('error', () => {});
      const pump = () => {
        for (;;) {
          // A client stops sending once answered; what it sent before that is unread by design.
          if (s.destroyed || settled || received.length > 0) return;
          const chunk = body();
          if (chunk === null) return;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      s.write(head, pump);
    });
  }

  const uploadHead = (name: string, extra: string, auth = true) =>
    `POST /api/v1/data/files?name=${name} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth ? `Authorization: Bearer ${token}\r\n` : ''}Content-Type: application/octet-stream\r\n${extra}\r\n`;

  it('R3.1 an upload whose client left before its handler started fails at once: no hung store write, no open file, no temp file', async () => {
    let putStarted = false;
    let putSettled = false;
    const store = app.ctx.files;
    const put = store.put.bind(store);
    store.put = async (...args: Parameters<BlobStore['put']>) => {
      putStarted = true;
      try {
        return await put(...args);
      } finally {
        putSettled = true;
      }
    };
    // Holds the handler back (every request reads the contract state) until the client has gone,
    // the way a busy database or a slow check does in production.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = app.ctx.db.transaction().execute(async (trx) => {
      await sql`lock table contracts in access exclusive mode`.execute(trx);
      locked();
      await released;
    });
    try {
      await isLocked;
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((resolve) => s.once('connect', resolve));
      s.write(uploadHead('gone.bin', `Content-Length: ${LIMIT}\r\n`) + 'a'.repeat(1000));
      await until('the server to hold the connection', async () => (await connections()) === 1);
      s.destroy();
      await until('the server to see the client go', async () => (await connections()) === 0);
    } finally {
      release();
      await holder;
    }
    await until('the handler to start its store write', () => putStarted, 20_000);
    // Without the fix the write never ends: it waits for a body that will never come.
    await until('the store write to end', () => putSettled, 3_000);
    store.put = put;
    const dir = path.join(app.filesDir, 'customers', customerId, 'files');
    expect(filesUnder(dir).filter((f) => f.includes('.hokan-tmp-'))).toEqual([]);
    expect(openFilesUnder(app.filesDir)).toEqual([]);
    expect(await app.ctx.db.selectFrom('data_files').select('id').where('customer_id', '=', customerId).execute()).toEqual([]);
  });

  it('R3.1 an upload refused before its body was read closes the connection at once: a declared size over the limit (413), a body passing the limit mid-stream (413), no credentials (401)', async () => {
    const declared = await exchange(uploadHead('big.bin', `Content-Length: ${10 * LIMIT}\r\n`), (() => {
      let sent = 0;
      return () => (sent++ < 1 ? Buffer.alloc(1000, 97) : null);
    })());
    expect(declared.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(declared.headers).toContain('connection: close');
    expect(declared.closed).toBe(true);

    // Chunked: nothing declared, the limit is met while the bytes stream in; the client keeps sending.
    const chunk = Buffer.alloc(8 * 1024, 97);
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    let chunks = 0;
    const streamed = await exchange(uploadHead('stream.bin', 'Transfer-Encoding: chunked\r\n'), () => (chunks++ < 1000 ? framed : null));
    expect(streamed.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(streamed.headers).toContain('connection: close');
    expect(streamed.closed).toBe(true);
    expect(chunks).toBeLessThan(1000);

    const anonymous = await exchange(uploadHead('anon.bin', `Content-Length: ${LIMIT}\r\n`, false), (() => {
      let sent = 0;
      return () => (sent++ < 1 ? Buffer.alloc(1000, 97) : null);
    })());
    expect(anonymous.status).toBe('HTTP/1.1 401 Unauthorized');
    expect(anonymous.closed).toBe(true);
    // Nothing of the refused uploads was kept.
    const dir = path.join(app.filesDir, 'customers', customerId, 'files');
    expect(filesUnder(dir)).toEqual([]);
  });

  it('R3.1 an upload read to its end keeps the connection open for the next request', async () => {
    const body = Buffer.alloc(1000, 98);
    let sent = false;
    const done = await exchange(uploadHead('kept.bin', `Content-Length: ${body.length}\r\n`), () => (sent ? null : ((sent = true), body)), 1_000);
    expect(done.status).toBe('HTTP/1.1 201 Created');
    expect(done.headers).not.toContain('connection: close');
    expect(done.closed).toBe(false);
  });

  it('R3.1 a download whose object is gone (a concurrent delete won) is 404; a store that cannot answer is 503 with Retry-After', async () => {
    const up = async (name: string) => {
      const res = await app.request({ method: 'POST', url: `/api/v1/data/files?name=${name}`, token, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from(`contents of ${name}`) });
      expect(res.statusCode).toBe(201);
      return res.json().file.id as string;
    };
    const goneId = await up('gone.txt');
    await app.ctx.files.delete(fileBlobKey(customerId, goneId), app.clock.now());
    const gone = await app.request({ method: 'GET', url: `/api/v1/data/files/${goneId}/content`, token });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('not_found');

    // An object the filesystem cannot open (a symlink to itself: ELOOP), like a failing disk.
    const brokenId = await up('broken.txt');
    const object = path.join(app.filesDir, fileBlobKey(customerId, brokenId));
    fs.rmSync(object, { force: true });
    fs.symlinkSync(object, object);
    const broken = await app.request({ method: 'GET', url: `/api/v1/data/files/${brokenId}/content`, token });
    expect(broken.statusCode).toBe(503);
    expect(broken.headers['retry-after']).toBe('30');
    expect(broken.json().error.code).toBe('service_unavailable');
    // The customer is not told where the store is.
    expect(broken.body).not.toContain(app.filesDir);
    fs.rmSync(object, { force: true });
  });

  it('R3.1 an upload to a store that cannot answer is 503 with Retry-After, not 500', async () => {
    const down: BlobStore = {
      description: 'a store that is down',
      put: async () => {
        throw new StorageUnavailableError('a store that is down', 'write failed (ENOSPC)');
      },
      get: async () => {
        throw new Error('unused');
      },
      head: async () => null,
      digest: async () => {
        throw new Error('unused');
      },
      delete: async () => {},
      list: async function* () {},
    };
    const who = { customerId, actor: systemActor('test'), sourceIp: null };
    const err = await uploadFile(app.ctx.db, app.clock, down, who, { name: 'x.bin', contentType: 'application/octet-stream', body: Readable.from([Buffer.from('x')]), maxBytes: LIMIT }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HokanError);
    expect(err).toMatchObject({ code: 'service_unavailable', retryAfterSeconds: 30 });
  });

  it("R3.1 a download's Content-Disposition gives the exact name in filename* (RFC 5987) and an ASCII filename= fallback", async () => {
    for (const name of ['ケアプラン(2026).pdf', "O'Brien.pdf", 'a*b!.txt']) {
      const up = await app.request({ method: 'POST', url: `/api/v1/data/files?name=${encodeURIComponent(name)}`, token, headers: { 'content-type': 'application/pdf' }, payload: Buffer.from('%PDF-1.7') });
      expect(up.statusCode, name).toBe(201);
      const down = await app.request({ method: 'GET', url: `/api/v1/data/files/${up.json().file.id}/content`, token });
      expect(down.statusCode).toBe(200);
      const header = String(down.headers['content-disposition']);
      expect(contentDisposition.parse(header), header).toEqual({ type: 'attachment', parameters: { filename: name } });
      expect(header).toMatch(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''[A-Za-z0-9%._~-]+$/);
    }
  });
});
