import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/run-backup.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { removeTree } from '../helpers/backup.js';
import { databaseKinds } from '../helpers/databases.js';
import { haveChromium, launchChromium, requireChromium, shot } from './chromium.js';

/*
 * R10.4 in Debian's Chromium with JavaScript disabled: an admin restores a customer from the
 * console, lands on the progress page, and the page refreshes itself (meta refresh) until the job
 * the test runs has finished. Screenshots under test-results/web/.
 */

requireChromium('browser tests (console restore)');

for (const kind of haveChromium ? databaseKinds : []) {
  describe(`browser: console restore (${kind})`, () => {
    let app: TestApp;
    let browser: Browser;
    let base: string;
    let context: BrowserContext | undefined;
    const dirs: string[] = [];

    beforeAll(async () => {
      const primary = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-br-primary-'));
      dirs.push(primary);
      // The browser keeps cookies by the real clock, so the app's clock starts at the real now.
      app = await startTestApp(kind, new Date().toISOString(), { HOKAN_BACKUP_URL: primary, HOKAN_BACKUP_SAME_DEVICE_OK: 'true' });
      await addOperator(app, 'boss', ['admin']);
      const { customer } = await addCustomerWithContract(app, 'sakura', { termStart: '2026-04-01', termEnd: '2028-03-31' });
      await addCustomerUser(app, customer.id, 'sakura-admin', 'customer_admin');
      const token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customer.id}/api-tokens`, cookie: await app.signIn('sakura-admin'), payload: { name: 'sw' } })).json().token as string;
      for (let i = 0; i < 10; i++) await app.request({ method: 'POST', url: '/api/v1/data/collections/residents/records', token, payload: { id: `r-${i}`, data: { name: `利用者${i}` } } });
      await runBackup({ db: app.ctx.db, clock: app.clock, settings: app.ctx.backup, live: app.ctx.files, instanceId: 'test' }, customer.id);
      await app.server.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.server.address() as AddressInfo).port}`;
      browser = await launchChromium();
    });
    afterAll(async () => {
      await context?.close().catch(() => undefined);
      await browser?.close();
      await app?.close();
      dirs.forEach(removeTree);
    });

    it('R10.4 an admin restores a customer from the console and watches the progress page refresh itself to done (JavaScript disabled)', async () => {
      context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${base}/console/sign-in`);
      await page.getByLabel(/^ID$/).fill('boss');
      await page.getByLabel(/パスワード|Password/).fill(TEST_PASSWORD);
      await page.getByRole('button', { name: /サインイン|Sign in/ }).click();
      await page.waitForURL(/\/console$/);
      await page.goto(`${base}/console/backups`);
      await page.getByText('復元', { exact: true }).first().click();
      await page.getByLabel('確認のため、復元するお客様のコードを入力').fill('sakura');
      await page.getByLabel('このお客様の現在のデータが置き換えられることを理解しました').check();
      await shot(page, `${kind}-console-restore-form.ja`);
      await page.getByRole('button', { name: 'このバックアップに戻す' }).click();
      await page.waitForURL(/\/console\/backups\/restores\/[0-9a-f-]{36}$/);
      expect(await page.getByTestId('restore-state').textContent()).toBe('待機中');
      await shot(page, `${kind}-console-restore-queued.ja`);
      await app.ctx.queue.runDueJobs();
      // No script: the page's own refresh brings the finished state.
      await page.getByTestId('restore-state').filter({ hasText: '完了' }).waitFor({ timeout: 10_000 });
      expect(await page.getByTestId('restore-progress').textContent()).toContain('完了しました（レコード 10 件・ファイル 0 件）');
      expect(await page.locator('progress').getAttribute('value')).toBe('100');
      await shot(page, `${kind}-console-restore-done.ja`);
    });
  });
}
