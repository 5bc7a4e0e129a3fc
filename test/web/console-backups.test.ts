import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackupChecks } from '../../src/backup/catalog.js';
import { listRestoreJobs } from '../../src/backup/restore-jobs.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { listChecklists } from '../../src/monitoring/rounds.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { removeTree } from '../helpers/backup.js';
import { databaseKinds } from '../helpers/databases.js';
import { postForm, webSignIn } from './helpers.js';

/*
 * The console's backups page over HTTP (the real server, real backup directories): restore as a
 * job with its self-refreshing progress page, drills and verifications queued from forms, and the
 * visual-rounds checklist form — CSRF tokens from the page, refusals next to their fields.
 */
for (const kind of databaseKinds) {
  describe(`console: backups and checklists (${kind})`, () => {
    let app: TestApp;
    const dirs: string[] = [];
    let boss: string;
    let ope: string;
    let helpdesk: string;
    let sakura: { id: string; token: string };
    let backupId: string;
    const get = (url: string, cookie = boss) => app.request({ method: 'GET', url, headers: { cookie } });
    const residents = async () => (await app.ctx.db.selectFrom('data_records').select('id').where('customer_id', '=', sakura.id).orderBy('id').execute()).map((r) => r.id);

    beforeAll(async () => {
      const primary = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-cb-primary-'));
      const offsite = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-cb-offsite-'));
      dirs.push(primary, offsite);
      app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_BACKUP_URL: primary, HOKAN_OFFSITE_URL: offsite, HOKAN_BACKUP_SAME_DEVICE_OK: 'true' });
      await addOperator(app, 'boss', ['admin']);
      await addOperator(app, 'ope', ['operator']);
      await addOperator(app, 'helpdesk', ['support']);
      const { customer } = await addCustomerWithContract(app, 'sakura');
      await addCustomerWithContract(app, 'midori');
      await addCustomerUser(app, customer.id, 'sakura-admin', 'customer_admin');
      const token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customer.id}/api-tokens`, cookie: await app.signIn('sakura-admin'), payload: { name: 'sw' } })).json().token as string;
      for (let i = 0; i < 25; i++) await app.request({ method: 'POST', url: '/api/v1/data/collections/residents/records', token, payload: { id: `r-${String(i).padStart(2, '0')}`, data: { name: `利用者${i}` } } });
      sakura = { id: customer.id, token };
      backupId = (await runBackup({ db: app.ctx.db, clock: app.clock, settings: app.ctx.backup, live: app.ctx.files, instanceId: 'test' }, customer.id)).id;
      boss = await webSignIn(app, 'console', 'boss');
      ope = await webSignIn(app, 'console', 'ope');
      helpdesk = await webSignIn(app, 'console', 'helpdesk');
    });
    afterAll(async () => {
      await app?.close();
      dirs.forEach(removeTree);
    });

    it('R10.4 the backups page offers the restore form to admins only, drills to operators, neither to support', async () => {
      const page = await get('/console/backups');
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('id="restore"');
      expect(page.body).toMatch(/<label for="restore-confirmCustomerCode">/);
      expect(page.body).toMatch(/<label for="restore-acknowledge" class="inline-label">/);
      expect(page.body).toContain('id="drill"');
      expect(page.body).not.toContain('hokan backup restore|verify|drill（CLI）またはAPIで行います');
      const op = await get('/console/backups', ope);
      expect(op.body).not.toContain('id="restore"');
      expect(op.body).toContain('id="drill"');
      expect(op.body).toContain(`action="/console/backups/${backupId}/verify"`);
      const sup = await get('/console/backups', helpdesk);
      expect(sup.statusCode).toBe(200);
      expect(sup.body).not.toContain('id="drill"');
      expect(sup.body).not.toContain('id="restore"');
    });

    it('R10.4 a restore is refused next to its field when the typed customer code or the acknowledgement is missing, in Japanese and English; nothing is queued', async () => {
      const noCode = await postForm(app, boss, '/console/backups', '/console/backups/restores', { backupId, from: 'primary', confirmCustomerCode: 'midori', acknowledge: 'on' });
      expect(noCode.statusCode).toBe(400);
      expect(noCode.body).toMatch(/id="restore-confirmCustomerCode-error">選んだバックアップのお客様のコードと一致しません。</);
      // The page names the field by its label; the API's "path: " prefix is not shown.
      expect(noCode.body).not.toContain('confirmCustomerCode:');
      expect(noCode.body).toContain('aria-invalid="true"');
      const en = await postForm(app, boss, '/console/backups?lang=en', '/console/backups/restores?lang=en', { backupId, from: 'primary', confirmCustomerCode: 'sakura' });
      expect(en.statusCode).toBe(400);
      expect(en.body).toMatch(/id="restore-acknowledge-error">tick the box to confirm that the data will be replaced</);
      const empty = await postForm(app, boss, '/console/backups', '/console/backups/restores', { backupId: '', from: 'primary', confirmCustomerCode: '', acknowledge: 'on' });
      expect(empty.statusCode).toBe(400);
      expect(empty.body).toMatch(/id="restore-backupId-error">一覧から選んでください。</);
      expect(empty.body).toMatch(/id="restore-confirmCustomerCode-error">入力してください。</);
      const offsite = await postForm(app, boss, '/console/backups', '/console/backups/restores', { backupId, from: 'offsite', confirmCustomerCode: 'sakura', acknowledge: 'on' });
      expect(offsite.statusCode).toBe(409);
      expect(offsite.body).toMatch(/id="restore-from-error">このバックアップは遠隔地に複製されていないため/);
      // An operator's post is refused on the server whatever the page showed; so is one without the CSRF token.
      expect((await postForm(app, ope, '/console/backups', '/console/backups/restores', { backupId, from: 'primary', confirmCustomerCode: 'sakura', acknowledge: 'on' })).statusCode).toBe(403);
      const noCsrf = await app.request({ method: 'POST', url: '/console/backups/restores', headers: { cookie: boss, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ backupId, from: 'primary', confirmCustomerCode: 'sakura', acknowledge: 'on' }).toString() });
      expect(noCsrf.statusCode).toBeGreaterThanOrEqual(400);
      expect(await listRestoreJobs(app.ctx.db)).toHaveLength(0);
    });

    it('R10.4 a restore from the form redirects to its progress page, which refreshes itself until the job is done', async () => {
      await app.request({ method: 'DELETE', url: '/api/v1/data/collections/residents/records/r-03', token: sakura.token });
      expect(await residents()).toHaveLength(24);
      const res = await postForm(app, boss, '/console/backups', '/console/backups/restores', { backupId, from: 'primary', confirmCustomerCode: 'sakura', acknowledge: 'on' });
      expect(res.statusCode).toBe(303);
      const url = res.headers['location'] as string;
      expect(url).toMatch(/^\/console\/backups\/restores\/[0-9a-f-]{36}$/);
      const waiting = await get(url);
      expect(waiting.statusCode).toBe(200);
      expect(waiting.body).toContain(`<meta http-equiv="refresh" content="2;url=${url}">`);
      expect(waiting.body).toMatch(/data-testid="restore-state">待機中</);
      expect(waiting.body).toContain('<progress class="progress" max="100" value="0"');
      // A second restore of the same customer waits for this one.
      const twice = await postForm(app, boss, '/console/backups', '/console/backups/restores', { backupId, from: 'primary', confirmCustomerCode: 'sakura', acknowledge: 'on' });
      expect(twice.statusCode).toBe(409);
      expect(twice.body).toContain('このお客様の復元が既に実行中または待機中です');

      await app.ctx.queue.runDueJobs();
      const done = await get(`${url}?lang=en`, helpdesk);
      expect(done.body).not.toContain('http-equiv="refresh"');
      expect(done.body).toMatch(/data-testid="restore-state">done</);
      expect(done.body).toContain('Done (25 records, 0 files).');
      expect(done.body).toContain('<progress class="progress" max="100" value="100"');
      expect(await residents()).toHaveLength(25);
      const list = await get('/console/backups');
      expect(list.body).toMatch(new RegExp(`data-testid="restore-job"><td><a href="${url}">`));
    });

    it('R10.4 a drill and a verification queued from the console show in "Checks and drills"', async () => {
      const bad = await postForm(app, ope, '/console/backups', '/console/backups/drills', { customerId: 'not-a-customer', target: 'primary' });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/id="drill-customerId-error">一覧から選んでください。</);
      const res = await postForm(app, ope, '/console/backups', '/console/backups/drills', { customerId: sakura.id, target: 'primary' });
      expect(res.statusCode).toBe(303);
      expect(res.headers['location']).toBe('/console/backups?done=drill');
      const verify = await postForm(app, ope, '/console/backups', `/console/backups/${backupId}/verify`, { target: 'primary' });
      expect(verify.statusCode).toBe(303);
      const noCopy = await postForm(app, ope, '/console/backups', `/console/backups/${backupId}/verify`, { target: 'offsite' });
      expect(noCopy.statusCode).toBe(409);
      expect(noCopy.body).toMatch(/role="alert">このバックアップは遠隔地に複製されていません。</);
      expect((await postForm(app, helpdesk, '/console/backups', '/console/backups/drills', { customerId: sakura.id, target: 'primary' })).statusCode).toBe(403);
      await app.ctx.queue.runDueJobs();
      const checks = await listBackupChecks(app.ctx.db);
      expect(checks.map((c) => c.kind).sort()).toEqual(['drill', 'verify', 'verify']);
      expect(checks.every((c) => c.ok)).toBe(true);
      const page = await get('/console/backups', helpdesk);
      expect(page.body).toContain('検証と訓練の結果');
      expect(page.body).toMatch(/data-testid="backup-check"><td>[^<]+<\/td><td>訓練（復元と比較）<\/td><td>sakura 株式会社<\/td><td>[^<]+<\/td><td>バックアップ先<\/td><td>正常<\/td>/);
      expect(page.body.match(/data-testid="backup-check"/g)).toHaveLength(3);
    });

    it('R12.3③ a checklist is created from the console form; a bad interval or no items is refused next to the field and creates nothing', async () => {
      const before = await get('/console/rounds', ope);
      expect(before.body).not.toContain('POST /api/v1/rounds/checklists');
      expect(before.body).toContain('id="checklist-new"');
      expect(before.body).toMatch(/<label for="checklist-new-items">/);
      const bad = await postForm(app, ope, '/console/rounds', '/console/rounds/checklists', { name: 'サーバー室', intervalHours: '0', items: 'ラックのランプ' });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/id="checklist-new-intervalHours-error">1以上にしてください。</);
      const en = await postForm(app, ope, '/console/rounds?lang=en', '/console/rounds/checklists?lang=en', { name: 'Server room', intervalHours: '9000', items: '\n  \n' });
      expect(en.statusCode).toBe(400);
      expect(en.body).toMatch(/id="checklist-new-intervalHours-error">[^<]*8760/);
      expect(en.body).toMatch(/id="checklist-new-items-error">write at least one item, one per line</);
      expect(await listChecklists(app.ctx.db)).toHaveLength(0);
      expect((await postForm(app, helpdesk, '/console/rounds', '/console/rounds/checklists', { name: 'x', items: 'y' })).statusCode).toBe(403);

      const ok = await postForm(app, ope, '/console/rounds', '/console/rounds/checklists', { name: 'サーバー室の目視点検', intervalHours: '12', items: 'ラックのランプ\r\nUPSの表示 | バッテリー運転の表示がないこと\n' });
      expect(ok.statusCode).toBe(303);
      const [c] = await listChecklists(app.ctx.db);
      expect(c).toMatchObject({ name: 'サーバー室の目視点検', intervalHours: 12, items: [{ key: 'item-1', label: 'ラックのランプ', description: null }, { key: 'item-2', label: 'UPSの表示', description: 'バッテリー運転の表示がないこと' }] });
      const page = await get('/console/rounds', ope);
      expect(page.body).toMatch(/data-testid="round-due">サーバー室の目視点検 · 12時間ごと/);
      expect(page.body).toContain(`action="/console/rounds/${c!.id}"`);
    });
  });
}
