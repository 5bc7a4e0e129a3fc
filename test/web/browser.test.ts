import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';
import { haveChromium, launchChromium, requireChromium, shot } from './chromium.js';
import { TestSmtpListener } from '../helpers/smtp.js';
import { addDays, formatJapanDate, japanDateOf } from '../../src/core/japan-time.js';

/*
 * End to end in Debian's Chromium against the real server on 127.0.0.1 (with a real SMTP
 * listener behind the outbox). Screenshots of every page, Japanese and English, go to
 * test-results/web/.
 */

requireChromium('browser tests');

async function signIn(page: Page, base: string, face: 'portal' | 'console', loginId: string): Promise<void> {
  await page.goto(`${base}/${face}/sign-in`);
  await page.getByLabel(/^ID$/).fill(loginId);
  await page.getByLabel(/パスワード|Password/).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: /サインイン|Sign in/ }).click();
  await page.waitForURL(new RegExp(`/${face}$`));
}

for (const kind of haveChromium ? databaseKinds : []) {
  describe(`browser (${kind})`, () => {
    let app: TestApp;
    let smtp: TestSmtpListener;
    let browser: Browser;
    let base: string;
    let sakuraId: string;
    const contexts: BrowserContext[] = [];
    const context = async (opts: { javaScriptEnabled?: boolean; isMobile?: boolean } = {}) => {
      const c = await browser.newContext({ acceptDownloads: true, javaScriptEnabled: opts.javaScriptEnabled ?? true, ...(opts.isMobile ? { viewport: { width: 390, height: 844 }, isMobile: true } : { viewport: { width: 1200, height: 900 } }) });
      contexts.push(c);
      return c;
    };

    beforeAll(async () => {
      smtp = new TestSmtpListener();
      await smtp.start();
      // The browser keeps cookies by the real clock, so the app's clock starts at the real now.
      app = await startTestApp(kind, new Date().toISOString(), { HOKAN_SMTP_URL: smtp.url });
      await addOperator(app, 'ope', ['admin', 'operator']);
      const sakura = await addCustomerWithContract(app, 'sakura', { fee: 98_000, termStart: '2026-04-01', termEnd: '2028-03-31' });
      sakuraId = sakura.customer.id;
      await addCustomerUser(app, sakuraId, 'sakura-admin', 'customer_admin');
      await addCustomerUser(app, sakuraId, 'sakura-member', 'member');
      await app.server.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.server.address() as AddressInfo).port}`;
      browser = await launchChromium();
    });
    afterAll(async () => {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser?.close();
      await app?.close();
      await smtp?.stop();
    });

    it('R8.1 R8.2 an operator opens an incident in the console and a reader without JavaScript sees it on the status page', async () => {
      const page = await (await context()).newPage();
      await signIn(page, base, 'console', 'ope');
      await shot(page, `${kind}-console-overview.ja`);
      await page.goto(`${base}/console/incidents`);
      await page.getByText('障害を登録する').click();
      await page.getByLabel('件名（ステータスページに表示されます）').fill('データAPIに接続できない障害');
      await page.getByLabel('重大度').selectOption('critical');
      await page.getByLabel('サービスが全く利用できない').check();
      await shot(page, `${kind}-console-incident-form.ja`);
      await page.getByRole('button', { name: '登録する' }).click();
      await page.waitForURL(/\/console\/incidents\?done=saved$/);
      await expect.poll(() => page.getByRole('link', { name: 'データAPIに接続できない障害' }).count()).toBe(1);
      await shot(page, `${kind}-console-incidents.ja`);
      // An incident is public once its first notice is posted (browser-ops.test.ts covers that page).
      await page.getByRole('link', { name: 'データAPIに接続できない障害' }).click();
      await page.getByRole('link', { name: /お知らせ（第一報・続報・復旧報・報告書）を掲載する/ }).click();
      await page.getByRole('button', { name: '掲載して送信する' }).click();
      await page.waitForURL(/\/notices\?done=posted$/);

      const reader = await (await context({ javaScriptEnabled: false })).newPage();
      await reader.goto(`${base}/status`);
      expect(await reader.locator('html').getAttribute('lang')).toBe('ja');
      await expect.poll(() => reader.locator('#h-active').textContent()).toBe('発生中の障害');
      expect(await reader.getByRole('heading', { name: /データAPIに接続できない障害/ }).count()).toBe(1);
      expect(await reader.getByRole('status').first().textContent()).toBe('サービスに障害が発生しています');
      await shot(reader, `${kind}-status-incident.ja`);
      await reader.getByRole('link', { name: 'English' }).click();
      expect(await reader.locator('html').getAttribute('lang')).toBe('en');
      expect(await reader.locator('#h-active').textContent()).toBe('Active incidents');
      await shot(reader, `${kind}-status-incident.en`);
      // The subscription form posts email and lang to the notices' route.
      expect(await reader.locator('form[action="/status/subscribe"] input[name="lang"]').getAttribute('value')).toBe('en');
      // Keyboard: the first Tab reaches the skip link.
      await reader.keyboard.press('Tab');
      expect(await reader.evaluate(() => document.activeElement?.className)).toBe('skip');
    });

    it('R14.1 a member cannot see the fee; the customer admin can', async () => {
      const member = await (await context()).newPage();
      await signIn(member, base, 'portal', 'sakura-member');
      expect(await member.locator('[data-testid="fee"]').count()).toBe(0);
      expect(await member.content()).not.toContain('98,000');
      await shot(member, `${kind}-portal-contract-member.ja`);
      const admin = await (await context()).newPage();
      await signIn(admin, base, 'portal', 'sakura-admin');
      expect(await admin.locator('[data-testid="fee"]').textContent()).toBe('98,000円');
    });

    it('R10.5 a customer admin exports the data, sees the progress, then downloads the ZIP', async () => {
      const page = await (await context()).newPage();
      await signIn(page, base, 'portal', 'sakura-admin');
      await page.goto(`${base}/portal/export`);
      await page.getByRole('button', { name: 'エクスポートを開始' }).click();
      await page.waitForURL(/\/portal\/export\?job=/);
      expect(await page.getByTestId('export-progress').textContent()).toContain('開始を待っています');
      expect(await page.locator('progress').getAttribute('value')).toBe('0');
      await shot(page, `${kind}-portal-export-progress.ja`);
      await app.ctx.queue.runDueJobs();
      // The page refreshes itself (meta refresh, no script needed) and offers the download.
      await page.getByTestId('export-ready').waitFor({ timeout: 15_000 });
      await shot(page, `${kind}-portal-export-ready.ja`);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: /ダウンロード/ }).first().click()]);
      expect(download.suggestedFilename()).toMatch(/\.zip$/);
      const file = await download.path();
      expect(fs.readFileSync(file).subarray(0, 2).toString()).toBe('PK');
    });

    it('R22.3 a customer admin files a termination notice and sees the computed end date', async () => {
      const page = await (await context()).newPage();
      await signIn(page, base, 'portal', 'sakura-admin');
      await page.goto(`${base}/portal/termination`);
      const earliest = addDays(japanDateOf(app.clock.now()), 30);
      expect(await page.getByTestId('earliest-end').textContent()).toBe(formatJapanDate(earliest));
      await shot(page, `${kind}-portal-termination-form.ja`);
      await page.getByLabel('備考').fill('書面を送付しました');
      await page.getByRole('button', { name: '解約を通知する' }).click();
      await page.getByTestId('termination-filed').waitFor();
      expect(await page.getByTestId('end-date').textContent()).toBe(formatJapanDate(earliest));
      await shot(page, `${kind}-portal-termination-filed.ja`);
      await page.getByRole('link', { name: 'English' }).click();
      expect(await page.getByTestId('end-date').textContent()).toBe(earliest);
      await shot(page, `${kind}-portal-termination-filed.en`);
    });

    it('language switch: English is remembered across pages; every page is captured in Japanese and English, on a phone too', async () => {
      const portal = await (await context()).newPage();
      await signIn(portal, base, 'portal', 'sakura-admin');
      await portal.getByRole('link', { name: 'English' }).click();
      expect(await portal.locator('h1').textContent()).toBe('Your contract');
      await portal.getByRole('link', { name: 'Data export' }).click();
      expect(await portal.locator('html').getAttribute('lang')).toBe('en');
      expect(await portal.locator('h1').textContent()).toBe('Data export');
      const ops = await (await context()).newPage();
      await signIn(ops, base, 'console', 'ope');
      const pages: Array<[Page, string]> = [
        [portal, '/portal'], [portal, '/portal/incidents'], [portal, '/portal/termination'], [portal, '/portal/export'], [portal, '/portal/users'],
        [ops, '/console'], [ops, '/console/customers'], [ops, '/console/incidents'], [ops, '/console/stops'], [ops, '/console/backups'], [ops, '/console/gateway'], [ops, '/console/audit'],
      ];
      for (const lang of ['ja', 'en'] as const) {
        for (const [page, url] of pages) {
          const res = await page.goto(`${base}${url}?lang=${lang}`);
          expect(res?.status(), url).toBe(200);
          expect(await page.locator('html').getAttribute('lang')).toBe(lang);
          // Every input has a label.
          const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((el) => !(el as HTMLInputElement).labels?.length).length);
          expect(unlabeled, url).toBe(0);
          await shot(page, `${kind}-${url.slice(1).replaceAll('/', '-')}.${lang}`);
        }
      }
      const phone = await (await context({ isMobile: true, javaScriptEnabled: false })).newPage();
      for (const lang of ['ja', 'en'] as const) {
        await phone.goto(`${base}/status?lang=${lang}`);
        // Nothing wider than the screen.
        expect(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);
        await shot(phone, `${kind}-status-phone.${lang}`);
      }
      await phone.goto(`${base}/portal/sign-in?lang=ja`);
      await shot(phone, `${kind}-portal-sign-in-phone.ja`);
      await phone.goto(`${base}/console/sign-in?lang=en`);
      await shot(phone, `${kind}-console-sign-in-phone.en`);
    });
  });
}
