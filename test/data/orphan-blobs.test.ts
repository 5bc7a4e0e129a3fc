import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { fileBlobKey } from '../../src/data/files.js';
import { ORPHAN_GRACE_MS, sweepOrphanBlobs } from '../../src/data/orphan-blobs.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

describe.each(databaseKinds)('live file objects no row references are swept, a day after first seen, on %s', (kind) => {
  let app: TestApp & { filesDir: string };
  let customerId: string;
  let token: string;

  const objects = async () => {
    const keys: string[] = [];
    for await (const b of app.ctx.files.list(`customers/${customerId}/files/`)) keys.push(b.key);
    return keys.sort();
  };

  beforeAll(async () => {
    app = await startTestApp(kind);
    customerId = (await addCustomerWithContract(app, 'kaede')).customer.id;
    await addCustomerUser(app, customerId, 'kaede-admin', 'customer_admin');
    const cookie = await app.signIn('kaede-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie, payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('an orphan is recorded, kept through the grace period, then removed and audited; referenced files and late-referenced objects stay', async () => {
    const upload = await app.request({ method: 'POST', url: '/api/v1/data/files?name=scan.bin', token, headers: { 'content-type': 'application/octet-stream' }, payload: randomBytes(2000) });
    expect(upload.statusCode).toBe(201);
    const referencedKey = fileBlobKey(customerId, upload.json().file.id);
    // Left by a restore that was killed: staged, never referenced.
    const orphanKey = `${referencedKey}-r0123456789ab`;
    await app.ctx.files.put(orphanKey, Buffer.from('staged copy of a care record scan'));
    // Written by an upload whose row commits only later (after the first sweep).
    const lateId = '00000000-0000-4000-8000-00000000beef';
    const lateKey = fileBlobKey(customerId, lateId);
    const late = await app.ctx.files.put(lateKey, Buffer.from('upload in flight'));

    expect(await sweepOrphanBlobs({ db: app.ctx.db, clock: app.clock, files: app.ctx.files })).toEqual({ recorded: 2, removed: 0, leftovers: 0 });
    await app.ctx.db
      .insertInto('data_files')
      .values({ customer_id: customerId, id: lateId, name: 'late.bin', content_type: 'application/octet-stream', size: late.size, sha256: late.sha256, blob_key: lateKey, created_at: app.clock.now() })
      .execute();

    app.clock.advance(ORPHAN_GRACE_MS - 60_000);
    expect(await sweepOrphanBlobs({ db: app.ctx.db, clock: app.clock, files: app.ctx.files })).toEqual({ recorded: 0, removed: 0, leftovers: 0 });
    expect(await objects()).toEqual([lateKey, orphanKey, referencedKey].sort());

    app.clock.advance(120_000);
    expect(await sweepOrphanBlobs({ db: app.ctx.db, clock: app.clock, files: app.ctx.files })).toEqual({ recorded: 0, removed: 1, leftovers: 0 });
    expect(await objects()).toEqual([lateKey, referencedKey].sort());
    const download = await app.request({ method: 'GET', url: `/api/v1/data/files/${upload.json().file.id}/content`, token });
    expect(download.statusCode).toBe(200);
    expect(await app.ctx.db.selectFrom('orphan_blob_candidates').selectAll().execute()).toEqual([]);
    const audit = await app.ctx.db.selectFrom('audit_log').select(['action', 'details']).where('action', '=', 'files.orphans_removed').execute();
    expect(audit).toHaveLength(1);
    expect((await verifyAuditChain(app.ctx.db)).ok).toBe(true);
  });
  it('R10.7 temp files a killed upload or export left are removed once older than the grace period; younger ones (a write in progress) stay', async () => {
    const filesDir = path.join(app.filesDir, 'customers', customerId, 'files');
    const exportsDir = path.join(app.filesDir, 'customers', customerId, 'exports');
    fs.mkdirSync(exportsDir, { recursive: true });
    const oldUpload = path.join(filesDir, `${randomUUID()}.hokan-tmp-0123456789abcdef`);
    const oldExport = path.join(exportsDir, `${randomUUID()}.zip.hokan-tmp-0123456789abcdef`);
    const inProgress = path.join(filesDir, `${randomUUID()}.hokan-tmp-fedcba9876543210`);
    for (const f of [oldUpload, oldExport, inProgress]) fs.writeFileSync(f, 'the first part of a care record scan');
    // Their age is their mtime, which the filesystem stamps from the wall clock: dated, not waited for.
    const left = new Date(Date.now() - ORPHAN_GRACE_MS - 3_600_000);
    for (const f of [oldUpload, oldExport]) fs.utimesSync(f, left, left);
    const keys = await objects();

    expect(await sweepOrphanBlobs({ db: app.ctx.db, clock: app.clock, files: app.ctx.files })).toEqual({ recorded: 0, removed: 0, leftovers: 2 });
    expect([oldUpload, oldExport, inProgress].map((f) => fs.existsSync(f))).toEqual([false, false, true]);
    expect(await objects()).toEqual(keys);
    const audit = await app.ctx.db.selectFrom('audit_log').select(['details']).where('action', '=', 'files.orphans_removed').orderBy('seq', 'desc').executeTakeFirstOrThrow();
    expect(audit.details).toMatchObject({ objects: 0, leftovers: 2 });
    expect((await verifyAuditChain(app.ctx.db)).ok).toBe(true);
  });
});
