import type { AddressInfo } from 'node:net';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';
import { haveChromium, launchChromium, requireChromium, shot } from './chromium.js';
import { TestSmtpListener } from '../helpers/smtp.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { registerHost } from '../../src/monitoring/hardware-hosts.js';
import { sampleSchema } from '../../src/monitoring/hardware-metrics.js';
import { ingestSamples } from '../../src/monitoring/hardware-samples.js';
import { createMonitor } from '../../src/monitoring/monitors.js';
import { createChecklist } from '../../src/monitoring/rounds.js';

/*
 * Issue 6's named acceptance test in Debian's Chromium against the real server on 127.0.0.1 and a
 * real SMTP listener: an operator opens an incident and posts the first notice in the console; a
 * reader sees it on the status page with JavaScript disabled, and it arrives by e-mail. Then every
 * new console page (monitoring, notices) is captured in Japanese and English under test-results/web/.
 * The same launch and skip rules as browser.test.ts.
 */

requireChromium('browser tests (console operations)');

for (const kind of haveChromium ? databaseKinds : []) {
  describe(`browser: console operations (${kind})`, () => {
    let app: TestApp;
    let smtp: TestSmtpListener;
    let browser: Browser;
    let base: string;
    const contexts: BrowserContext[] = [];
    const context = async (javaScriptEnabled = true) => {
      const c = await browser.newContext({ javaScriptEnabled, viewport: { width: 1200, height: 900 } });
      contexts.push(c);
      return c;
    };
    const signIn = async (page: Page) => {
      await page.goto(`${base}/console/sign-in`);
      await page.getByLabel(/^ID$/).fill('ope');
      await page.getByLabel(/パスワード|Password/).fill(TEST_PASSWORD);
      await page.getByRole('button', { name: /サインイン|Sign in/ }).click();
      await page.waitForURL(/\/console$/);
    };

    beforeAll(async () => {
      smtp = new TestSmtpListener();
      await smtp.start();
      // The browser keeps cookies by the real clock, so the app's clock starts at the real now.
      app = await startTestApp(kind, new Date().toISOString(), { HOKAN_SMTP_URL: smtp.url });
      await addOperator(app, 'ope', ['admin', 'operator']);
      await addCustomerWithContract(app, 'sakura', { termStart: '2026-04-01', termEnd: '2028-03-31' });
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

    it('R8.1 R8.2 an operator opens an incident and posts the first notice in the console; a reader then sees it on the status page (JavaScript disabled) and it arrives by e-mail at the real SMTP listener', async () => {
      const page = await (await context()).newPage();
      await signIn(page);
      await page.goto(`${base}/console/incidents`);
      await page.getByText('障害を登録する').click();
      await page.getByLabel('件名（ステータスページに表示されます）').fill('ストレージ応答停止');
      await page.getByLabel('重大度').selectOption('critical');
      await page.getByRole('button', { name: '登録する' }).click();
      await page.waitForURL(/\/console\/incidents\?done=saved$/);
      await page.getByRole('link', { name: 'ストレージ応答停止' }).click();
      await page.getByRole('link', { name: /お知らせ（第一報・続報・復旧報・報告書）を掲載する/ }).click();
      await page.waitForURL(/\/notices$/);
      expect(await page.getByLabel('段階').inputValue()).toBe('first');
      await page.getByLabel('現在の状況（日本語）').fill('ストレージへの書き込みが応答しません。復旧作業中です。');
      await page.getByLabel('現在の状況（英語）').fill('Writes to storage do not answer; we are working on it.');
      // The preview is rendered on the server: the page comes back with the text and the form as filled.
      await page.getByRole('button', { name: 'プレビュー' }).click();
      await page.getByTestId('preview').waitFor();
      expect(await page.getByTestId('preview').textContent()).toContain('【重要】障害通知（第一報）');
      expect(await page.getByLabel('現在の状況（日本語）').inputValue()).toBe('ストレージへの書き込みが応答しません。復旧作業中です。');
      await shot(page, `${kind}-console-notice-preview.ja`);
      await page.getByRole('button', { name: '掲載して送信する' }).click();
      await page.waitForURL(/\/notices\?done=posted$/);
      expect(await page.getByTestId('notice').count()).toBe(1);
      expect(await page.getByTestId('notice').first().textContent()).toContain('第一報');
      await shot(page, `${kind}-console-notice-posted.ja`);

      const reader = await (await context(false)).newPage();
      await reader.goto(`${base}/status`);
      expect(await reader.getByRole('heading', { name: /ストレージ応答停止/ }).count()).toBe(1);
      expect(await reader.locator('.post-label').first().textContent()).toBe('第一報');
      expect(await reader.content()).toContain('ストレージへの書き込みが応答しません。');
      await shot(reader, `${kind}-status-first-notice.ja`);
      await reader.getByRole('link', { name: 'English' }).click();
      expect(await reader.locator('.post-label').first().textContent()).toBe('1st report');
      await shot(reader, `${kind}-status-first-notice.en`);

      await app.ctx.queue.runDueJobs();
      const mail = smtp.received.find((m) => m.to.includes('sakura@example.jp'));
      expect(mail?.subject).toBe('【重要】障害通知（第一報）');
      expect(mail?.text).toContain('ストレージへの書き込みが応答しません。');
      await page.reload();
      expect(await page.getByTestId('delivery').first().textContent()).toContain('送信済み 1');
    });

    it('R12.3 the new console pages, in Japanese and English: every input labelled, charts drawn', async () => {
      const actor = systemActor('test');
      const { monitor } = await createMonitor(app.ctx.db, app.ctx.clock, actor, { kind: 'database', name: 'データベース', intervalSeconds: 60, component: 'service' });
      const scheduler = app.ctx.monitors;
      if (!scheduler) throw new Error('the app has no monitor scheduler');
      for (let i = 0; i < 5; i++) {
        await scheduler.runDueChecks();
        app.clock.advance(60_000);
      }
      const { host } = await registerHost(app.ctx.db, app.ctx.clock, actor, 'rack-a-01');
      const now = app.clock.now().getTime();
      await ingestSamples(app.ctx.db, app.ctx.clock, host.id, [0, 1, 2, 3, 4, 5].map((k) => sampleSchema.parse({ at: new Date(now - (6 - k) * 600_000).toISOString(), cpuPercent: 20 + k * 8, memory: { usedBytes: (3 + k) * 1e9, totalBytes: 16e9 }, load: { one: 1, five: 1, fifteen: 1 }, disks: [{ mount: '/', fs: 'ext4', usedBytes: 40 + k, totalBytes: 100 }], diskIo: [], temperatures: { maxC: 45 + k, cpuC: 44 + k } })), 30);
      await createChecklist(app.ctx.db, app.ctx.clock, actor, { name: 'サーバー室の目視点検', intervalHours: 24, items: [{ key: 'rack', label: 'ラックのランプ', description: null }] });
      const ops = await (await context()).newPage();
      await signIn(ops);
      await ops.goto(`${base}/console/incidents`);
      await ops.getByRole('link', { name: 'ストレージ応答停止' }).click();
      const incidentPath = new URL(ops.url()).pathname;
      const pages = ['/console/monitors', `/console/monitors/${monitor.id}`, '/console/hardware', `/console/hardware/${host.id}`, '/console/rounds', `${incidentPath}/notices`, '/console/components', '/console/webhooks'];
      const names = ['monitors', 'monitor', 'hardware', 'hardware-host', 'rounds', 'incident-notices', 'components', 'webhooks'];
      for (const lang of ['ja', 'en'] as const) {
        for (const [i, url] of pages.entries()) {
          const res = await ops.goto(`${base}${url}?lang=${lang}`);
          expect(res?.status(), url).toBe(200);
          expect(await ops.locator('html').getAttribute('lang')).toBe(lang);
          // Open every <details> so the forms are in the screenshot, then check each control's label.
          await ops.evaluate(() => document.querySelectorAll('details').forEach((d) => d.setAttribute('open', '')));
          const unlabeled = await ops.evaluate(() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter((el) => !(el as HTMLInputElement).labels?.length).length);
          expect(unlabeled, url).toBe(0);
          await shot(ops, `${kind}-console-${names[i]}.${lang}`);
        }
      }
      await ops.goto(`${base}/console/monitors/${monitor.id}?lang=ja`);
      expect(await ops.locator('svg.chart path').count()).toBe(1);
      expect(await ops.getByTestId('monitor-state').textContent()).toBe('正常');
      await ops.goto(`${base}/console/hardware/${host.id}?lang=ja`);
      expect(await ops.locator('svg.chart').count()).toBe(4);
    });
  });
}
