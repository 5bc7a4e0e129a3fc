import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';
import { openIncident } from '../../src/incidents/incidents.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { html, raw } from '../../src/web/html.js';
import { StatusPageCache } from '../../src/web/status-page.js';
import { statusSnapshot } from '../../src/notify/status-snapshot.js';
import { postIncidentNotice } from '../../src/notify/notices.js';
import { createComponent } from '../../src/notify/components.js';
import { EXPORT_JOB, failOrphanedExports, removeExpiredExports } from '../../src/data/export-jobs.js';
import { csrfOf, mergeCookies, postForm, webSignIn } from './helpers.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('html tag', () => {
  it('escapes every interpolation unless it is raw()', () => {
    const evil = '<script>alert("x")</script>&\'';
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe('<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>');
    expect(html`${[html`<b>${'a<'}</b>`, 'b>']}${null}${undefined}${false}${raw('<i>ok</i>')}`.value).toBe('<b>a&lt;</b>b&gt;<i>ok</i>');
  });
});

describe('StatusPageCache', () => {
  it('renders once per language within the TTL, shares concurrent misses, and drops its copy on invalidate()', async () => {
    let now = 0;
    const renders: string[] = [];
    const cache = new StatusPageCache(async (locale) => {
      renders.push(locale);
      return Buffer.from(`${locale}-${renders.length}`);
    }, 5000, () => now);
    const [a, b] = await Promise.all([cache.get('ja'), cache.get('ja')]);
    expect(a).toBe(b);
    await cache.get('en');
    now = 4999;
    await cache.get('ja');
    expect(renders).toEqual(['ja', 'en']);
    now = 5000;
    expect((await cache.get('ja')).body.toString()).toBe('ja-3');
    cache.invalidate();
    expect((await cache.get('ja')).body.toString()).toBe('ja-4');
  });
});

for (const kind of databaseKinds) {
  describe(`web pages (${kind})`, () => {
    let app: TestApp;
    let sakura: { customer: { id: string }; contractId: string };
    let midori: { customer: { id: string }; contractId: string };
    beforeAll(async () => {
      app = await startTestApp(kind);
      await addOperator(app, 'ope', ['admin', 'operator']);
      await addOperator(app, 'helpdesk', ['support']);
      sakura = await addCustomerWithContract(app, 'sakura', { fee: 98_000 });
      midori = await addCustomerWithContract(app, 'midori');
      await addCustomerUser(app, sakura.customer.id, 'sakura-admin', 'customer_admin');
      await addCustomerUser(app, sakura.customer.id, 'sakura-member', 'member');
      await addCustomerUser(app, midori.customer.id, 'midori-admin', 'customer_admin');
    });
    afterAll(async () => app?.close());

    it('R8.2 the status page is served from a cache with an ETag (304), public max-age, Japanese by default and English on ?lang=en', async () => {
      const ja = await app.request({ method: 'GET', url: '/status' });
      expect(ja.statusCode).toBe(200);
      expect(ja.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
      expect(ja.headers['vary']).toBe('Cookie');
      expect(ja.body).toContain('<html lang="ja">');
      expect(ja.body).toContain('すべてのサービスは正常に稼働しています');
      expect(ja.body).toContain('action="/status/subscribe"');
      expect(ja.body).toContain('href="/status/feed.atom"');
      expect(ja.body).not.toContain('<script');
      const again = await app.request({ method: 'GET', url: '/status', headers: { 'if-none-match': String(ja.headers['etag']) } });
      expect(again.statusCode).toBe(304);
      const en = await app.request({ method: 'GET', url: '/status?lang=en' });
      expect(en.body).toContain('<html lang="en">');
      expect(en.body).toContain('All services are operating normally');
      const cookieEn = await app.request({ method: 'GET', url: '/status', headers: { cookie: 'hokan_lang=en' } });
      expect(cookieEn.body).toContain('<html lang="en">');
    });

    it('R8.2 R9.2 an incident shows once the cache is refreshed, with no customer names, and the page answers readers abroad (decision 0022)', async () => {
      // The availability bars are drawn per status component (src/notify/components.ts).
      await createComponent(app.ctx.db, app.ctx.clock, systemActor('test'), 'data-api', { name: { ja: 'データAPI', en: 'Data API' } });
      const slow = await openIncident(app.ctx.db, app.ctx.clock, systemActor('test'), { title: 'データAPIの応答遅延', severity: 'major', occurredAt: new Date(app.clock.now().getTime() - 600_000), customerIds: [sakura.customer.id] });
      // An incident is public once its first notice is posted (src/notify/status-snapshot.ts).
      await postIncidentNotice(app.ctx.db, app.ctx.clock, systemActor('test'), slow.id, { stage: 'first', fields: {} }, { providerName: app.ctx.config.providerName, publicUrl: app.ctx.config.publicUrl });
      app.clock.advance(10_000);
      // The snapshot itself sees it at once; the cached page once its TTL (5 s) has passed (the clock moved 10 s).
      const snap = await statusSnapshot(app.ctx.db, app.ctx.clock);
      expect(snap.activeIncidents.map((i) => i.title)).toEqual(['データAPIの応答遅延']);
      expect(snap.overall).toBe('degraded');
      expect(snap.components[0]!.days).toHaveLength(90);
      const page = await app.request({ method: 'GET', url: '/status', remoteAddress: '8.8.8.8' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('データAPIの応答遅延');
      expect(page.body).toContain('一部のサービスに障害が発生しています');
      expect(page.body).not.toContain('sakura');
      // The Service itself stays Japan-only (R4.1).
      const portal = await app.request({ method: 'GET', url: '/portal/sign-in', remoteAddress: '8.8.8.8' });
      expect(portal.statusCode).toBe(403);
    });

    it('the stylesheet has a hashed, immutable URL and answers If-None-Match with 304', async () => {
      const page = await app.request({ method: 'GET', url: '/status' });
      const href = /href="(\/assets\/hokan\.[0-9a-f]{12}\.css)"/.exec(page.body)![1]!;
      const css = await app.request({ method: 'GET', url: href });
      expect(css.statusCode).toBe(200);
      expect(css.headers['content-type']).toMatch(/^text\/css/);
      expect(css.headers['cache-control']).toContain('immutable');
      expect((await app.request({ method: 'GET', url: href, headers: { 'if-none-match': String(css.headers['etag']) } })).statusCode).toBe(304);
    });

    it('R12.1 every form POST needs the CSRF token of its own session; the JSON API still refuses form bodies', async () => {
      const cookie = await webSignIn(app, 'portal', 'sakura-admin');
      const other = await webSignIn(app, 'portal', 'midori-admin');
      const noToken = await app.request({ method: 'POST', url: '/portal/export', headers: { ...FORM, cookie }, payload: '' });
      expect(noToken.statusCode).toBe(403);
      const otherPage = await app.request({ method: 'GET', url: '/portal/export', headers: { cookie: other } });
      const stolen = await app.request({ method: 'POST', url: '/portal/export', headers: { ...FORM, cookie }, payload: `_csrf=${csrfOf(otherPage.body)}` });
      expect(stolen.statusCode).toBe(403);
      const signInNoToken = await app.request({ method: 'POST', url: '/portal/sign-in', headers: FORM, payload: 'loginId=sakura-admin&password=correct+horse+battery+staple' });
      expect(signInNoToken.statusCode).toBe(403);
      expect(signInNoToken.cookies.find((c) => c.name === 'hokan_session')).toBeUndefined();
      const api = await app.request({ method: 'POST', url: '/api/v1/auth/login', headers: FORM, payload: 'loginId=sakura-admin&password=x' });
      expect(api.statusCode).toBe(415);
    });

    it('R12.2 a form post naming this very site in Origin/Referer is not taken for SSRF; another loopback origin still is', async () => {
      const page = await app.request({ method: 'GET', url: '/portal/sign-in', headers: { host: '127.0.0.1:8080' } });
      const cookie = mergeCookies('', page);
      const payload = new URLSearchParams({ _csrf: csrfOf(page.body), loginId: 'sakura-admin', password: 'correct horse battery staple' }).toString();
      const same = await app.request({ method: 'POST', url: '/portal/sign-in', headers: { ...FORM, cookie, host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080', referer: 'http://127.0.0.1:8080/portal/sign-in' }, payload });
      expect(same.statusCode).toBe(303);
      const other = await app.request({ method: 'POST', url: '/portal/sign-in', headers: { ...FORM, cookie, host: '127.0.0.1:8080', referer: 'http://127.0.0.1:6379/' }, payload });
      expect(other.statusCode).toBe(403);
      expect(other.body).toContain('攻撃の疑いがある通信のため遮断しました');
    });

    it('R18.1 the web sign-in uses the API rules: a wrong password is refused next to the form, customers cannot sign in to the console', async () => {
      const page = await app.request({ method: 'GET', url: '/portal/sign-in?lang=en' });
      const cookie = mergeCookies('', page);
      const bad = await app.request({ method: 'POST', url: '/portal/sign-in', headers: { ...FORM, cookie }, payload: new URLSearchParams({ _csrf: csrfOf(page.body), loginId: 'sakura-admin', password: 'wrong password here' }).toString() });
      expect(bad.statusCode).toBe(401);
      expect(bad.body).toContain('The ID or password is not correct.');
      const consolePage = await app.request({ method: 'GET', url: '/console/sign-in' });
      const c2 = mergeCookies('', consolePage);
      const wrongFace = await app.request({ method: 'POST', url: '/console/sign-in', headers: { ...FORM, cookie: c2 }, payload: new URLSearchParams({ _csrf: csrfOf(consolePage.body), loginId: 'sakura-admin', password: 'correct horse battery staple' }).toString() });
      expect(wrongFace.statusCode).toBe(403);
      expect(wrongFace.cookies.find((c) => c.name === 'hokan_session')).toBeUndefined();
      const anon = await app.request({ method: 'GET', url: '/portal/export' });
      expect(anon.statusCode).toBe(303);
      expect(anon.headers['location']).toBe('/portal/sign-in?next=%2Fportal%2Fexport');
    });

    it('R14.1 the fee is shown to the customer admin and never to a member', async () => {
      const admin = await webSignIn(app, 'portal', 'sakura-admin');
      const member = await webSignIn(app, 'portal', 'sakura-member');
      const a = await app.request({ method: 'GET', url: '/portal', headers: { cookie: admin } });
      expect(a.body).toContain('98,000円');
      const m = await app.request({ method: 'GET', url: '/portal', headers: { cookie: member } });
      expect(m.statusCode).toBe(200);
      expect(m.body).not.toContain('98,000');
      expect(m.body).not.toContain('data-testid="fee"');
      // Members have no export, users or termination pages.
      expect((await app.request({ method: 'GET', url: '/portal/export', headers: { cookie: member } })).statusCode).toBe(403);
      expect((await app.request({ method: 'GET', url: '/portal/termination', headers: { cookie: member } })).statusCode).toBe(403);
    });

    it('R22.3 a termination notice too early is refused next to the end-date field (ja and en), then filed with the computed end date', async () => {
      const cookie = await webSignIn(app, 'portal', 'sakura-admin');
      const tooSoon = await postForm(app, cookie, '/portal/termination', `/portal/contracts/${sakura.contractId}/termination-notice`, { endDate: '2026-12-01', note: '' });
      expect(tooSoon.statusCode).toBe(400);
      expect(tooSoon.body).toMatch(/<p class="field-error" id="terminate-[0-9a-f-]+-endDate-error">解約は30日前までに通知してください。最も早い終了日は 2026-12-24 です/);
      expect(tooSoon.body).toContain('aria-invalid="true"');
      const en = await postForm(app, `${cookie}; hokan_lang=en`, '/portal/termination', `/portal/contracts/${sakura.contractId}/termination-notice`, { endDate: 'next week' });
      expect(en.statusCode).toBe(400);
      expect(en.body).toContain('must be a calendar date YYYY-MM-DD');
      const ok = await postForm(app, cookie, '/portal/termination', `/portal/contracts/${sakura.contractId}/termination-notice`, { endDate: '', note: '書面送付済み' });
      expect(ok.statusCode).toBe(303);
      const page = await app.request({ method: 'GET', url: '/portal/termination', headers: { cookie } });
      expect(page.body).toMatch(/data-testid="end-date">2026年12月24日\(木\)</);
      expect(page.body).toContain('既にお支払いいただいた利用料金は返金されません');
      // Another customer's contract id is not found.
      const foreign = await postForm(app, cookie, '/portal/termination', `/portal/contracts/${midori.contractId}/termination-notice`, {});
      expect(foreign.statusCode).toBe(404);
    });

    it('R10.5 the export runs as a job with progress, then downloads; another customer cannot fetch it', async () => {
      const cookie = await webSignIn(app, 'portal', 'midori-admin');
      const token = await app.request({ method: 'POST', url: '/api/v1/customers/' + midori.customer.id + '/api-tokens', headers: { cookie: (await app.signIn('midori-admin')) }, payload: { name: 'software' } });
      const bearer = (token.json() as { token: string }).token;
      for (let i = 0; i < 3; i++) await app.request({ method: 'POST', url: '/api/v1/data/collections/residents/records', token: bearer, payload: { id: `r${i}`, data: { name: `利用者${i}` } } });
      const start = await postForm(app, cookie, '/portal/export', '/portal/export', {});
      expect(start.statusCode).toBe(303);
      const url = String(start.headers['location']);
      const waiting = await app.request({ method: 'GET', url, headers: { cookie } });
      expect(waiting.body).toContain('<meta http-equiv="refresh"');
      expect(waiting.body).toMatch(/<progress class="progress" max="100" value="0"/);
      await app.ctx.queue.runDueJobs();
      const done = await app.request({ method: 'GET', url, headers: { cookie } });
      expect(done.body).not.toContain('http-equiv="refresh"');
      const href = /href="(\/portal\/exports\/[0-9a-f-]+\/download)"/.exec(done.body)![1]!;
      const zip = await app.request({ method: 'GET', url: href, headers: { cookie } });
      expect(zip.statusCode).toBe(200);
      expect(zip.headers['content-type']).toBe('application/zip');
      expect(zip.rawPayload.subarray(0, 2).toString()).toBe('PK');
      expect(zip.rawPayload.includes(Buffer.from('manifest.json'))).toBe(true);
      const sakuraAdmin = await webSignIn(app, 'portal', 'sakura-admin');
      expect((await app.request({ method: 'GET', url: href, headers: { cookie: sakuraAdmin } })).statusCode).toBe(404);
      // Kept for 24 hours, then removed from the store and no longer offered.
      app.clock.advance(25 * 3_600_000);
      expect(await removeExpiredExports(app.ctx.db, app.ctx.clock, app.ctx.files)).toBe(1);
      const expired = await app.request({ method: 'GET', url: href, headers: { cookie: await webSignIn(app, 'portal', 'midori-admin') } });
      expect(expired.statusCode).toBe(409);
      expect(expired.body).toContain('ダウンロード期限を過ぎました');
    });

    it('R10.5 an export cut off mid-run starts over and finishes; one whose job is gone is failed, and the customer can export again', async () => {
      const cookie = await webSignIn(app, 'portal', 'midori-admin');
      const idOf = (location: unknown) => /([0-9a-f-]{36})$/.exec(String(location))![1]!;
      // A run handed back by a shutdown leaves the row 'running' with its job queued again.
      const first = idOf((await postForm(app, cookie, '/portal/export', '/portal/export', {})).headers['location']);
      await app.ctx.db.updateTable('data_export_jobs').set({ state: 'running' }).where('id', '=', first).execute();
      await app.ctx.queue.runDueJobs();
      expect((await app.ctx.db.selectFrom('data_export_jobs').select('state').where('id', '=', first).executeTakeFirstOrThrow()).state).toBe('done');
      // A crash on the last attempt leaves the row 'running' and its job failed: the sweep settles it.
      const second = idOf((await postForm(app, cookie, '/portal/export', '/portal/export', {})).headers['location']);
      await app.ctx.db.updateTable('data_export_jobs').set({ state: 'running' }).where('id', '=', second).execute();
      await sql`update jobs set state = 'failed' where queue = ${EXPORT_JOB} and payload->>'exportId' = ${second}`.execute(app.ctx.db);
      expect(await failOrphanedExports(app.ctx.db, app.ctx.clock)).toBe(1);
      const row = await app.ctx.db.selectFrom('data_export_jobs').select(['state', 'error']).where('id', '=', second).executeTakeFirstOrThrow();
      expect(row).toEqual({ state: 'failed', error: 'the export was interrupted; please export again' });
      const third = idOf((await postForm(app, cookie, '/portal/export', '/portal/export', {})).headers['location']);
      expect(third).not.toBe(second);
      await app.ctx.queue.runDueJobs();
      expect((await app.ctx.db.selectFrom('data_export_jobs').select('state').where('id', '=', third).executeTakeFirstOrThrow()).state).toBe('done');
      expect(await failOrphanedExports(app.ctx.db, app.ctx.clock)).toBe(0);
    });

    it('R8.1 R20 an operator opens an incident from the console; a support role may not; validation errors name the field', async () => {
      const ope = await webSignIn(app, 'console', 'ope');
      const bad = await postForm(app, ope, '/console/incidents', '/console/incidents', { title: '', severity: 'critical', occurredAt: '2026-11-24T09:30' });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('id="open-incident-title-error">入力してください。');
      const ok = await postForm(app, ope, '/console/incidents', '/console/incidents', { title: 'ストレージ障害', severity: 'critical', occurredAt: '2026-11-24T09:30', entirelyUnusable: 'on' });
      expect(ok.statusCode).toBe(303);
      const list = await app.request({ method: 'GET', url: '/console/incidents', headers: { cookie: ope } });
      expect(list.body).toContain('ストレージ障害');
      // The first notice, posted from the console, makes it public; the change drops the cached status page at once.
      const incidentId = /href="\/console\/incidents\/([0-9a-f-]{36})">ストレージ障害/.exec(list.body)![1]!;
      const notices = `/console/incidents/${incidentId}/notices`;
      expect((await postForm(app, ope, notices, notices, { stage: 'first' })).statusCode).toBe(303);
      const status = await app.request({ method: 'GET', url: '/status' });
      expect(status.body).toContain('ストレージ障害');
      expect(status.body).toContain('サービスに障害が発生しています');
      const help = await webSignIn(app, 'console', 'helpdesk');
      const refused = await postForm(app, help, '/console/incidents', '/console/incidents', { title: 'x', severity: 'minor', occurredAt: '2026-11-24T09:30' });
      expect(refused.statusCode).toBe(403);
      // Customers are sent to sign in to the console, not shown it.
      const customer = await webSignIn(app, 'portal', 'sakura-admin');
      expect((await app.request({ method: 'GET', url: '/console/incidents', headers: { cookie: customer } })).statusCode).toBe(303);
    });

    it('R7.2 a planned stop with short notice needs the admin override reason', async () => {
      const ope = await webSignIn(app, 'console', 'ope');
      const short = await postForm(app, ope, '/console/stops', '/console/stops/planned', { reason: 'maintenance', description: 'ディスク交換', startsAt: '2026-11-26T01:00', endsAt: '2026-11-26T03:00' });
      expect(short.statusCode).toBe(400);
      expect(short.body).toContain('id="planned-startsAt-error"');
      const over = await postForm(app, ope, '/console/stops', '/console/stops/planned', { reason: 'maintenance', description: 'ディスク交換', startsAt: '2026-11-26T01:00', endsAt: '2026-11-26T03:00', overrideReason: '故障予兆のため前倒し' });
      expect(over.statusCode).toBe(303);
      const page = await app.request({ method: 'GET', url: '/console/stops', headers: { cookie: ope } });
      expect(page.body).toContain('故障予兆のため前倒し');
      const status = await app.request({ method: 'GET', url: '/status?lang=en' });
      expect(status.body).toContain('Upcoming planned stops');
      expect(status.body).not.toContain('ディスク交換');
    });

    it('R12.2 R4.1 R11.1 the console shows backups, gateway records as charts and tables, the audit log and the contract history (fee hidden from non-billing staff)', async () => {
      const ope = await webSignIn(app, 'console', 'ope');
      const gw = await app.request({ method: 'GET', url: '/console/gateway', headers: { cookie: ope } });
      expect(gw.statusCode).toBe(200);
      expect(gw.body).toContain('<svg class="chart"');
      expect(gw.body).toContain('海外からの利用の拒否');
      expect((await app.request({ method: 'GET', url: '/console/backups', headers: { cookie: ope } })).statusCode).toBe(200);
      const audit = await app.request({ method: 'GET', url: '/console/audit', headers: { cookie: ope } });
      expect(audit.body).toContain('incident.opened');
      const contract = await app.request({ method: 'GET', url: `/console/contracts/${sakura.contractId}`, headers: { cookie: ope } });
      expect(contract.body).toContain('termination_notice_filed');
      expect(contract.body).not.toContain('98,000');
    });
  });
}
