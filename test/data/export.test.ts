import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as yauzl from 'yauzl';
import { readZip } from '../helpers/zip.js';
import { resumeContract, suspendContract, terminateImmediately } from '../../src/contracts/contracts.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { searchDataAccess } from '../../src/data/access-log.js';
import { EXPORT_FORMAT, MAX_ENTRY_NAME_BYTES, safeEntryName, type ExportedRecord, type ExportManifest } from '../../src/data/export.js';
import { fileBlobKey, uploadFile } from '../../src/data/files.js';
import type { DataAccessor } from '../../src/data/records.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const op = systemActor('test operator');
const MB = 1024 * 1024;

const isValidZip = async (buf: Buffer) => readZip(buf).then(() => true, () => false);

/** Every path segment must be usable on Windows, macOS and Linux. */
function expectSafePath(p: string) {
  for (const seg of p.split('/')) {
    expect(seg, p).not.toMatch(/[\u0000-\u001f\u007f\\:*?"<>|]/);
    expect(seg, p).not.toMatch(/^\.|[. ]$/);
    expect(seg, p).not.toMatch(/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i);
    expect(Buffer.byteLength(seg), p).toBeLessThanOrEqual(MAX_ENTRY_NAME_BYTES);
    expect(seg.length, p).toBeGreaterThan(0);
  }
}

/** Forced GC so the heap bound measures what is kept alive, not garbage not yet collected. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const liveBytes = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Deterministic, incompressible bytes without holding them all. */
function randomStream(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      const n = Math.min(left, 256 * 1024);
      left -= n;
      this.push(n > 0 ? randomBytes(n) : null);
    },
  });
}

describe('export entry names', () => {
  it('are safe on every OS, keep Japanese, and keep the extension when cut to 200 bytes of UTF-8', () => {
    expect(safeEntryName('ケアプラン 2026-11.pdf')).toBe('ケアプラン 2026-11.pdf');
    expect(safeEntryName('記録/2026\\11:*?"<>|.txt')).toBe('記録_2026_11_______.txt');
    expect(safeEntryName('a\u0000b\u001fc\u007fd\u202egpj.exe')).toBe('abcdgpj.exe');
    expect(safeEntryName('.bashrc')).toBe('bashrc');
    expect(safeEntryName('../../etc/passwd')).toBe('_.._etc_passwd');
    expect(safeEntryName('...')).toBe('file');
    expect(safeEntryName('')).toBe('file');
    expect(safeEntryName('報告書. . ')).toBe('報告書');
    expect(safeEntryName('CON')).toBe('_CON');
    expect(safeEntryName('nul.txt')).toBe('_nul.txt');
    expect(safeEntryName('com1.tar.gz')).toBe('_com1.tar.gz');
    expect(safeEntryName('CONSOLE.txt')).toBe('CONSOLE.txt');
    // macOS sends decomposed kana (カ + ゛); Windows shows the composed form.
    expect(safeEntryName('ガイド.txt'.normalize('NFD'))).toBe('ガイド.txt');
    expect(safeEntryName('a\ud800b.txt')).toBe('ab.txt');
    const long = safeEntryName(`${'介護記録'.repeat(30)}.docx`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(MAX_ENTRY_NAME_BYTES);
    expect(long).toMatch(/^(介護記録)+(介|介護|介護記)?\.docx$/);
    // A family emoji is one grapheme of 25 bytes: it stays whole or goes whole.
    const emoji = safeEntryName('👨‍👩‍👧‍👦'.repeat(10));
    expect(emoji).toBe('👨‍👩‍👧‍👦'.repeat(8));
  });
});

describe.each(databaseKinds)('R10.5 customer data export on %s', (kind) => {
  let app: TestApp & { filesDir: string };
  let a: { customerId: string; contractId: string; admin: string; member: string; token: string };
  let b: { customerId: string };
  let operatorCookie: string;
  const expected = new Map<string, Map<string, Record<string, unknown>>>();
  const uploaded = new Map<string, { name: string; body: Buffer; contentType: string }>();

  const accessor = (customerId: string): DataAccessor => ({ customerId, actor: systemActor('test'), sourceIp: null });
  const exportUrl = '/api/v1/data/export';

  const listening = async (): Promise<number> => {
    if (!app.server.server.listening) await app.server.listen({ host: '127.0.0.1', port: 0 });
    return (app.server.server.address() as AddressInfo).port;
  };
  /** Files of the live store this process has open (Linux), to see that an abandoned export let go of them. */
  const openStoreFiles = () =>
    fs.existsSync('/proc/self/fd')
      ? fs.readdirSync('/proc/self/fd').flatMap((fd) => {
          try {
            const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
            return target.startsWith(app.filesDir) ? [target] : [];
          } catch {
            return [];
          }
        })
      : [];

  /** A customer with its admin signed in. */
  const customerWithAdmin = async (code: string) => {
    const c = await addCustomerWithContract(app, code);
    await addCustomerUser(app, c.customer.id, `${code}-admin`, 'customer_admin');
    return { customerId: c.customer.id, contractId: c.contractId, admin: await app.signIn(`${code}-admin`) };
  };

  const seedRecords = async (customerId: string, collection: string, n: number, make: (i: number) => Record<string, unknown>) => {
    const now = app.clock.now();
    const mine = expected.get(collection) ?? new Map<string, Record<string, unknown>>();
    for (let start = 0; start < n; start += 500) {
      const rows = [];
      for (let i = start; i < Math.min(n, start + 500); i++) {
        const id = `r${String(i).padStart(5, '0')}`;
        const data = make(i);
        if (customerId === a?.customerId) mine.set(id, data);
        rows.push({ customer_id: customerId, collection, id, version: 1, data: JSON.stringify(data), created_at: now, updated_at: now });
      }
      await app.ctx.db.insertInto('data_records').values(rows).execute();
    }
    if (customerId === a?.customerId) expected.set(collection, mine);
  };

  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_MAX_FILE_BYTES: String(4 * MB) });
    const ca = await customerWithAdmin('aoi');
    await addCustomerUser(app, ca.customerId, 'aoi-staff', 'member');
    const token = await app.request({ method: 'POST', url: `/api/v1/customers/${ca.customerId}/api-tokens`, cookie: ca.admin, payload: { name: 'care-software' } });
    a = { ...ca, member: await app.signIn('aoi-staff'), token: token.json().token as string };
    const cb = await addCustomerWithContract(app, 'beni');
    b = { customerId: cb.customer.id };
    await addOperator(app, 'export-admin', ['admin', 'support']);
    operatorCookie = await app.signIn('export-admin');

    // ~2,500 records in 3 collections, Japanese text, including characters JSON and NDJSON must get right.
    await seedRecords(a.customerId, 'residents', 1000, (i) => ({ name: `山田 花子 ${i}`, room: `${200 + (i % 50)}号室`, status: i % 3 ? '入所中' : '退所', note: '改行\nと"引用符"と\\と絵文字🍵' }));
    await seedRecords(a.customerId, 'care_logs', 1200, (i) => ({ resident: `r${String(i % 1000).padStart(5, '0')}`, text: `食事摂取 ${i % 10}割、バイタル安定。`, tags: ['食事', 'バイタル'], n: i }));
    await seedRecords(a.customerId, 'visits', 299, (i) => ({ kind: i % 5 === 0 ? '訪問看護' : '通所', at: `2026-11-${String((i % 28) + 1).padStart(2, '0')}` }));
    // One through the API as well, and one changed to version 2, so versions are exported as they are.
    const created = await app.request({ method: 'POST', url: '/api/v1/data/collections/visits/records', token: a.token, payload: { id: 'r99999', data: { kind: 'API経由' } } });
    expect(created.statusCode).toBe(201);
    expected.get('visits')!.set('r99999', { kind: 'API経由' });
    const changed = await app.request({ method: 'PUT', url: '/api/v1/data/collections/residents/records/r00007', token: a.token, headers: { 'if-match': '"v1"' }, payload: { data: { name: '更新 済子' } } });
    expect(changed.statusCode).toBe(200);
    expected.get('residents')!.set('r00007', { name: '更新 済子' });

    // Four files: empty, ~1 MB, a Japanese name with a "/" (the upload route refuses that, older or restored data may not), and a hostile long one.
    const files = [
      { name: 'empty.txt', contentType: 'text/plain', body: Buffer.alloc(0) },
      { name: 'ケアプラン 2026-11.pdf', contentType: 'application/pdf', body: randomBytes(MB + 123) },
      { name: '記録/2026年11月 申し送り.txt', contentType: 'text/plain; charset=utf-8', body: Buffer.from('夜間帯は特変なし。\n'.repeat(500), 'utf8') },
      { name: `..CON<秘密>|"メモ"?*:\u0007${'長い名前'.repeat(40)}.csv. `, contentType: 'text/csv', body: Buffer.from('氏名,部屋\n山田,201\n', 'utf8') },
    ];
    for (const f of files) {
      const file = await uploadFile(app.ctx.db, app.clock, app.ctx.files, accessor(a.customerId), { name: f.name, contentType: f.contentType, body: Readable.from([f.body]), maxBytes: 4 * MB });
      uploaded.set(file.id, f);
    }

    // The other customer's data, which must never appear.
    await seedRecords(b.customerId, 'residents', 30, (i) => ({ name: `別法人の利用者 ${i}`, secret: 'BENI-SECRET' }));
    await uploadFile(app.ctx.db, app.clock, app.ctx.files, accessor(b.customerId), { name: 'beni.txt', contentType: 'text/plain', body: Readable.from([Buffer.from('BENI-SECRET file')]), maxBytes: MB });
  });
  afterAll(async () => app?.close());

  it("gives the customer admin a streamed ZIP holding every record and file exactly once, byte for byte, with a manifest that checks out", async () => {
    const res = await app.request({ method: 'GET', url: exportUrl, cookie: a.admin });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    expect(res.headers['content-length']).toBeUndefined();
    // 2026-11-24T01:00Z is 10:00 in Japan.
    expect(res.headers['content-disposition']).toBe(`attachment; filename="hokan-export-aoi-20261124-1000.zip"; filename*=UTF-8''hokan-export-aoi-20261124-1000.zip`);

    const entries = await readZip(res.rawPayload);
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(byName.size).toBe(entries.length);
    expect(entries[entries.length - 1]!.name).toBe('manifest.json');
    for (const e of entries) {
      expect(e.utf8Flag, e.name).toBe(true);
      expectSafePath(e.name);
    }

    const readme = byName.get('README.txt')!.data.toString('utf8');
    expect(readme).toContain('manifest.json');
    expect(readme).toContain('レコード');
    expect(readme).toContain('records/<collection>.ndjson');

    const manifest = JSON.parse(byName.get('manifest.json')!.data.toString('utf8')) as ExportManifest;
    expect(manifest).toMatchObject({ format: EXPORT_FORMAT, customer: { id: a.customerId, code: 'aoi' }, exportedAt: '2026-11-24T01:00:00.000Z' });

    // Records: every one exactly once, with its data, in id order, and the manifest's numbers right.
    expect(manifest.collections.map((c) => c.name)).toEqual(['care_logs', 'residents', 'visits']);
    let total = 0;
    for (const c of manifest.collections) {
      const entry = byName.get(`records/${c.name}.ndjson`)!;
      expect(c.path).toBe(entry.name);
      expect(c.bytes).toBe(entry.data.length);
      expect(c.sha256).toBe(sha256(entry.data));
      const text = entry.data.toString('utf8');
      expect(text.endsWith('\n')).toBe(true);
      const lines = text.slice(0, -1).split('\n').map((l) => JSON.parse(l) as ExportedRecord);
      expect(c.records).toBe(lines.length);
      const want = expected.get(c.name)!;
      expect(lines.map((l) => l.id)).toEqual([...want.keys()].sort());
      for (const l of lines) {
        expect(Object.keys(l)).toEqual(['id', 'version', 'data', 'createdAt', 'updatedAt']);
        expect(l.data, `${c.name}/${l.id}`).toEqual(want.get(l.id));
        expect(l.version).toBe(c.name === 'residents' && l.id === 'r00007' ? 2 : 1);
      }
      total += lines.length;
    }
    expect(total).toBe(2500);

    // Files: byte-identical, at the path the manifest names, with the original name kept there.
    expect(manifest.files.map((f) => f.id).sort()).toEqual([...uploaded.keys()].sort());
    for (const f of manifest.files) {
      const src = uploaded.get(f.id)!;
      const entry = byName.get(f.path)!;
      expect(entry, f.path).toBeDefined();
      expect(f.path).toBe(`files/${f.id}/${safeEntryName(src.name)}`);
      expect(Buffer.compare(entry.data, src.body), f.path).toBe(0);
      expect(f).toMatchObject({ name: src.name, contentType: src.contentType, size: src.body.length, sha256: sha256(src.body) });
    }
    const named = (n: string) => manifest.files.find((f) => f.name === n)!.path.split('/')[2];
    expect(named('ケアプラン 2026-11.pdf')).toBe('ケアプラン 2026-11.pdf');
    expect(named('記録/2026年11月 申し送り.txt')).toBe('記録_2026年11月 申し送り.txt');
    const hostile = manifest.files.find((f) => f.name.includes('CON'))!.path.split('/')[2]!;
    expect(hostile).toMatch(/^CON_秘密___メモ____(長い名前)+長?い?名?\.csv$/);
    expect(Buffer.byteLength(hostile)).toBeGreaterThan(MAX_ENTRY_NAME_BYTES - 12);
    expect(entries.filter((e) => e.name.startsWith('files/'))).toHaveLength(4);

    // Nothing of the other customer's.
    const everything = Buffer.concat(entries.map((e) => e.data)).toString('utf8');
    expect(everything).not.toContain('BENI-SECRET');
    expect(everything).not.toContain('別法人');
    expect(everything).not.toContain(b.customerId);
  });

  it('logs the export in the data access log, as the admin who took it', async () => {
    const log = await searchDataAccess(app.ctx.db, { customerId: a.customerId, operation: 'export' });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ targetType: 'customer', targetId: a.customerId, actor: { kind: 'customer_user', label: 'aoi-admin (customer_admin)' }, sourceIp: '127.0.0.1' });
    expect(await searchDataAccess(app.ctx.db, { customerId: b.customerId, operation: 'export' })).toHaveLength(0);
  });

  it('refuses members, API tokens, provider staff and the signed-out, and logs nothing for them', async () => {
    for (const [who, auth] of [['member', { cookie: a.member }], ['API token', { token: a.token }], ['operator', { cookie: operatorCookie }]] as const) {
      const res = await app.request({ method: 'GET', url: exportUrl, ...auth });
      expect(res.statusCode, who).toBe(403);
      expect(res.json().error.code, who).toBe('forbidden');
      expect(res.headers['content-type'], who).toMatch(/^application\/json/);
    }
    expect((await app.request({ method: 'GET', url: exportUrl })).statusCode).toBe(401);
    expect(await searchDataAccess(app.ctx.db, { customerId: a.customerId, operation: 'export' })).toHaveLength(1);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await app.request({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, { get?: { summary?: string } }> };
    expect(doc.paths['/api/v1/data/export']?.get?.summary).toMatch(/ZIP/);
  });

  it('answers like the data API while suspended (403) and after the contract ended (410)', async () => {
    const c = await customerWithAdmin('owari');
    await suspendContract(app.ctx.db, app.clock, op, c.contractId, { reason: 'unpaid_fees', note: 'test' });
    const suspended = await app.request({ method: 'GET', url: exportUrl, cookie: c.admin });
    expect(suspended.statusCode).toBe(403);
    expect(suspended.json().error.code).toBe('customer_suspended');
    await resumeContract(app.ctx.db, app.clock, op, c.contractId, { note: 'paid' });
    const empty = await app.request({ method: 'GET', url: exportUrl, cookie: c.admin });
    expect(empty.statusCode).toBe(200);
    const entries = await readZip(empty.rawPayload);
    expect(entries.map((e) => e.name)).toEqual(['README.txt', 'manifest.json']);
    expect(JSON.parse(entries[1]!.data.toString('utf8'))).toMatchObject({ customer: { id: c.customerId }, collections: [], files: [] });
    await terminateImmediately(app.ctx.db, app.clock, op, c.contractId, { ground: 'gross_breach', note: 'test' });
    const ended = await app.request({ method: 'GET', url: exportUrl, cookie: c.admin });
    expect(ended.statusCode).toBe(410);
    expect(ended.json().error.code).toBe('contract_ended');
  });

  it('cuts the download off, never completing the archive, when a stored file no longer matches its SHA-256', async () => {
    const c = await customerWithAdmin('kuro');
    const good = Buffer.from('正常なファイル', 'utf8');
    await uploadFile(app.ctx.db, app.clock, app.ctx.files, accessor(c.customerId), { name: 'good.txt', contentType: 'text/plain', body: Readable.from([good]), maxBytes: 4 * MB });
    const original = randomBytes(MB);
    const victim = await uploadFile(app.ctx.db, app.clock, app.ctx.files, accessor(c.customerId), { name: 'scan.pdf', contentType: 'application/pdf', body: Readable.from([original]), maxBytes: 4 * MB });
    // Same size, different bytes: only the hash can tell (bit rot, a botched restore, tampering).
    const tampered = randomBytes(MB);
    await app.ctx.files.put(fileBlobKey(c.customerId, victim.id), tampered);

    // In-process: whatever light-my-request makes of the destroyed response, it is not a usable archive.
    const injected = await app.request({ method: 'GET', url: exportUrl, cookie: c.admin }).then(
      (res) => res.rawPayload,
      () => null,
    );
    if (injected !== null) {
      expect(await isValidZip(injected)).toBe(false);
      expect(injected.includes(tampered)).toBe(false);
    }

    // Over a real socket: the client sees the response break off, not a clean end.
    const port = await listening();
    const received: Buffer[] = [];
    const outcome = await new Promise<{ status: number; ended: 'complete' | 'aborted' }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: exportUrl, headers: { cookie: c.admin } }, (res) => {
        res.on('data', (d: Buffer) => received.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ended: res.complete ? 'complete' : 'aborted' }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, ended: 'aborted' }));
      });
      req.on('error', reject);
    });
    expect(outcome).toEqual({ status: 200, ended: 'aborted' });
    const partial = Buffer.concat(received);
    expect(partial.length).toBeGreaterThan(0);
    expect(await isValidZip(partial)).toBe(false);
    expect(partial.includes(Buffer.from('manifest.json'))).toBe(false);
    // The held-back last chunk means not even the raw (stored, uncompressed) bytes arrive whole.
    expect(partial.includes(tampered)).toBe(false);

    // The untouched file is still exported fine once the stored bytes are right again.
    await app.ctx.files.put(fileBlobKey(c.customerId, victim.id), original);
    const fixed = await app.request({ method: 'GET', url: exportUrl, cookie: c.admin });
    const entries = await readZip(fixed.rawPayload);
    expect(entries.find((e) => e.name.endsWith('/scan.pdf'))!.data.equals(original)).toBe(true);
  });

  it('stops and lets go of the open file when the client goes away mid-download; the next export is whole', async () => {
    const c = await customerWithAdmin('tochuu');
    for (let i = 0; i < 3; i++) {
      await uploadFile(app.ctx.db, app.clock, app.ctx.files, accessor(c.customerId), { name: `scan-${i}.pdf`, contentType: 'application/pdf', body: randomStream(4 * MB - 1), maxBytes: 4 * MB });
    }
    const port = await listening();
    const got = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: exportUrl, headers: { cookie: c.admin } }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => {
          n += d.length;
          if (n > MB && !req.destroyed) {
            req.destroy();
            resolve(n);
          }
        });
      });
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
    });
    expect(got).toBeLessThan(12 * MB);
    for (let i = 0; i < 50 && openStoreFiles().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(openStoreFiles()).toEqual([]);

    const again = await app.request({ method: 'GET', url: exportUrl, cookie: c.admin });
    expect(again.statusCode).toBe(200);
    expect((await readZip(again.rawPayload)).filter((e) => e.name.startsWith('files/'))).toHaveLength(3);
  });

  it('keeps memory flat: exporting ~50 MB of files grows live memory by far less than the export', async () => {
    const c = await customerWithAdmin('ookii');
    const sizes = [...Array.from({ length: 40 }, () => MB), 4 * MB - 1, 4 * MB, 2 * MB + 5];
    const want = new Map<string, number>();
    for (const [i, size] of sizes.entries()) {
      const f = await uploadFile(app.ctx.db, app.clock, app.ctx.files, accessor(c.customerId), {
        name: `写真-${i}.${i % 2 ? 'jpg' : 'bin'}`,
        contentType: i % 2 ? 'image/jpeg' : 'application/octet-stream',
        body: randomStream(size),
        maxBytes: 4 * MB,
      });
      want.set(f.id, size);
    }
    const totalBytes = sizes.reduce((s, n) => s + n, 0);
    expect(totalBytes).toBeGreaterThan(50 * MB);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-export-test-'));
    const zipPath = path.join(dir, 'export.zip');
    try {
      const baseline = liveBytes();
      let peak = 0;
      let received = 0;
      let nextSample = 0;
      const res = await app.server.inject({ method: 'GET', url: exportUrl, headers: { cookie: c.admin }, payloadAsStream: true });
      expect(res.statusCode).toBe(200);
      await pipeline(
        res.stream(),
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            received += chunk.length;
            if (received >= nextSample) {
              peak = Math.max(peak, liveBytes() - baseline);
              nextSample += 4 * MB;
            }
            yield chunk;
          }
        },
        fs.createWriteStream(zipPath),
      );
      expect(received).toBeGreaterThan(totalBytes);
      // Buffering the export anywhere would hold > 50 MB; streaming holds a few chunks.
      expect(peak).toBeLessThan(30 * MB);

      const zip = await yauzl.openPromise(zipPath, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true });
      let manifest: ExportManifest | null = null;
      const hashes = new Map<string, string>();
      for await (const entry of zip.eachEntry()) {
        const hash = createHash('sha256');
        const chunks: Buffer[] = [];
        for await (const d of await zip.openReadStreamPromise(entry)) {
          hash.update(d as Buffer);
          if (entry.fileName === 'manifest.json') chunks.push(d as Buffer);
        }
        hashes.set(entry.fileName, hash.digest('hex'));
        if (entry.fileName === 'manifest.json') manifest = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportManifest;
      }
      expect(manifest!.files).toHaveLength(sizes.length);
      for (const f of manifest!.files) {
        expect(f.size).toBe(want.get(f.id));
        expect(hashes.get(f.path)).toBe(f.sha256);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
