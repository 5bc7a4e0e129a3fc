import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { openIncident } from '../../src/incidents/incidents.js';
import { japanMonthOf } from '../../src/incidents/statistics.js';
import { importTermsVersion, publishTermsVersion } from '../../src/terms/index.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';
import { haveChromium, launchChromium, requireChromium, shot } from './chromium.js';

/*
 * In Debian's Chromium against the real server on 127.0.0.1, following the launch and skip rules
 * of browser.test.ts: a customer admin reads the terms in force, the differences between two
 * versions and a monthly report; screenshots in Japanese and English go to test-results/web/.
 */
const TERMS = fs.readFileSync(path.resolve(import.meta.dirname, '../fixtures/terms-of-use.ja.txt'), 'utf8');

requireChromium('terms browser tests');

for (const kind of haveChromium ? databaseKinds : []) {
  describe(`terms and reports in the browser (${kind})`, () => {
    let app: TestApp;
    let browser: Browser;
    let base: string;
    let v1: string;
    let v2: string;
    const contexts: BrowserContext[] = [];

    beforeAll(async () => {
      // The browser keeps cookies by the real clock, so the app's clock starts at the real now.
      app = await startTestApp(kind, new Date().toISOString());
      const ops = systemActor('test');
      await addOperator(app, 'ope', ['admin', 'operator']);
      const sakura = await addCustomerWithContract(app, 'sakura', { termStart: '2026-04-01', termEnd: '2028-03-31' });
      await addCustomerUser(app, sakura.customer.id, 'sakura-admin', 'customer_admin');
      v1 = (await importTermsVersion(app.ctx.db, app.clock, ops, { edition: '6.5版', effectiveDate: '2021-08-16', text: TERMS })).version.id;
      await publishTermsVersion(app.ctx.db, app.clock, ops, v1);
      app.clock.advance(60_000);
      const revised = TERMS.replace('日本国内に限るものとします。', '日本国内（離島を含みます。）に限るものとします。');
      v2 = (await importTermsVersion(app.ctx.db, app.clock, ops, { edition: '7版', effectiveDate: '2026-04-01', text: revised })).version.id;
      await publishTermsVersion(app.ctx.db, app.clock, ops, v2);
      await openIncident(app.ctx.db, app.clock, ops, { title: 'データAPIの応答遅延', severity: 'major', occurredAt: new Date(app.clock.now().getTime() - 30 * 60_000), customerIds: [sakura.customer.id] });
      await app.server.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.server.address() as AddressInfo).port}`;
      browser = await launchChromium();
    });
    afterAll(async () => {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser?.close();
      await app?.close();
    });

    it('R1.1 R1.3 R12.4 a customer admin reads the terms in force, the differences between versions and the monthly report, in Japanese and English, without JavaScript', async () => {
      const c = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1200, height: 900 } });
      contexts.push(c);
      const page = await c.newPage();
      await page.goto(`${base}/portal/sign-in`);
      await page.getByLabel(/^ID$/).fill('sakura-admin');
      await page.getByLabel(/パスワード|Password/).fill(TEST_PASSWORD);
      await page.getByRole('button', { name: /サインイン|Sign in/ }).click();
      await page.waitForURL(/\/portal$/);

      await page.getByRole('link', { name: '利用規約・お知らせ' }).click();
      expect(await page.getByTestId('governing-edition').textContent()).toBe('7版');
      expect(await page.locator('#art-4').textContent()).toContain('日本国内（離島を含みます。）に限る');
      await shot(page, `${kind}-portal-terms.ja`);
      // The diff form is a plain GET form: choose the versions, submit.
      await page.getByLabel('比較元の版（旧）').selectOption(v1);
      await page.getByLabel('比較先の版（新）').selectOption(v2);
      await page.getByRole('button', { name: '差分を表示' }).click();
      await page.waitForURL(/\/portal\/terms\/diff\?/);
      expect(await page.getByTestId('diff-summary').textContent()).toContain('変更 1');
      expect(await page.locator('ins.d').first().textContent()).toBe('（離島を含みます。）');
      // The inserted text is highlighted: its background differs from the page's.
      expect(await page.locator('ins.d').first().evaluate((el) => getComputedStyle(el).backgroundColor)).toBe('rgb(216, 240, 222)');
      await shot(page, `${kind}-portal-terms-diff.ja`);
      await page.getByRole('link', { name: 'English' }).click();
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      expect(await page.getByTestId('diff-summary').textContent()).toContain('changed 1');
      await shot(page, `${kind}-portal-terms-diff.en`);

      const month = japanMonthOf(app.clock.now());
      for (const lang of ['ja', 'en'] as const) {
        for (const url of ['/portal/terms', '/portal/terms/notices', '/portal/reports', `/portal/reports/${month}`, '/portal/breaches', '/portal/notices']) {
          const res = await page.goto(`${base}${url}?lang=${lang}`);
          expect(res?.status(), url).toBe(200);
          const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((el) => !(el as HTMLInputElement).labels?.length).length);
          expect(unlabeled, url).toBe(0);
          await shot(page, `${kind}-${url.slice(1).replaceAll('/', '-')}.${lang}`);
        }
      }
      await page.goto(`${base}/portal/reports/${month}?lang=ja`);
      expect(await page.getByTestId('incident-count').textContent()).toBe('1');
      expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(2);
      await page.getByRole('link', { name: '報告書（HTML）' }).click();
      await page.waitForURL(/\/api\/v1\/customers\/[0-9a-f-]+\/reports\/\d{4}-\d{2}\.html$/);
      expect(await page.locator('body').textContent()).toContain('データAPIの応答遅延');
      await shot(page, `${kind}-portal-report-html.ja`);
    });

    it('the console pages for terms, consultations, reports and breaches render with labelled inputs (ja and en)', async () => {
      const c = await browser.newContext({ viewport: { width: 1200, height: 900 } });
      contexts.push(c);
      const page = await c.newPage();
      await page.goto(`${base}/console/sign-in`);
      await page.getByLabel(/^ID$/).fill('ope');
      await page.getByLabel(/パスワード|Password/).fill(TEST_PASSWORD);
      await page.getByRole('button', { name: /サインイン|Sign in/ }).click();
      await page.waitForURL(/\/console$/);
      for (const lang of ['ja', 'en'] as const) {
        for (const [url, name] of [['/console/terms', 'console-terms'], [`/console/terms/versions/${v2}`, 'console-terms-version'], ['/console/consultations', 'console-consultations'], ['/console/reports', 'console-reports'], ['/console/breaches', 'console-breaches']] as const) {
          const res = await page.goto(`${base}${url}?lang=${lang}`);
          expect(res?.status(), url).toBe(200);
          const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((el) => !(el as HTMLInputElement).labels?.length).length);
          expect(unlabeled, url).toBe(0);
          await shot(page, `${kind}-${name}.${lang}`);
        }
      }
    });
  });
}
