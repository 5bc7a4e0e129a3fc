import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';
import { TestSmtpListener } from '../helpers/smtp.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { listAudit } from '../../src/core/audit/audit-log.js';
import { getIncident, listIncidents, openIncident } from '../../src/incidents/incidents.js';
import { createChecklist, listRounds } from '../../src/monitoring/rounds.js';
import { listMonitors } from '../../src/monitoring/monitors.js';
import { ingestSamples } from '../../src/monitoring/hardware-samples.js';
import { sampleSchema } from '../../src/monitoring/hardware-metrics.js';
import { listIncidentNotices } from '../../src/notify/notices.js';
import { postForm, webSignIn } from './helpers.js';

/*
 * The console pages of monitoring and notices over HTTP (the real server, a real SMTP listener):
 * forms with the page's CSRF token, the API's validation next to the fields, the domain functions.
 */
for (const kind of databaseKinds) {
  describe(`console: monitoring and notices (${kind})`, () => {
    let app: TestApp;
    let smtp: TestSmtpListener;
    let cookie: string;
    let support: string;
    let sakuraId: string;
    beforeAll(async () => {
      smtp = new TestSmtpListener();
      await smtp.start();
      app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_SMTP_URL: smtp.url, HOKAN_PUBLIC_URL: 'https://status.example.jp' });
      await addOperator(app, 'ope', ['admin', 'operator']);
      await addOperator(app, 'helpdesk', ['support']);
      sakuraId = (await addCustomerWithContract(app, 'sakura')).customer.id;
      cookie = await webSignIn(app, 'console', 'ope');
      support = await webSignIn(app, 'console', 'helpdesk');
    });
    afterAll(async () => {
      await app?.close();
      await smtp?.stop();
    });
    const get = (url: string, c = cookie) => app.request({ method: 'GET', url, headers: { cookie: c } });

    it('R12.3② a monitor created through the form is listed; bad input is refused next to its field, in Japanese and English', async () => {
      const bad = await postForm(app, cookie, '/console/monitors', '/console/monitors', { kind: 'http', name: '', url: 'ftp://example.jp', intervalSeconds: '60', component: 'service', enabled: 'on' });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/id="monitor-new-name-error">入力してください。</);
      expect(bad.body).toMatch(/id="monitor-new-url-error">[^<]*must be an http:\/\/ or https:\/\/ URL/);
      expect(bad.body).toContain('aria-invalid="true"');
      // The domain's own rule (timeout shorter than the interval) lands next to its field too.
      const slow = await postForm(app, cookie, '/console/monitors?lang=en', '/console/monitors?lang=en', { kind: 'tcp', name: 'DB port', host: '127.0.0.1', port: '5432', intervalSeconds: '10', timeoutMs: '20000', component: 'service', enabled: 'on' });
      expect(slow.statusCode).toBe(400);
      expect(slow.body).toMatch(/id="monitor-new-timeoutMs-error">must be shorter than the check interval</);
      expect(await listMonitors(app.ctx.db)).toHaveLength(0);

      const ok = await postForm(app, cookie, '/console/monitors', '/console/monitors', { kind: 'http', name: 'データAPI', url: 'https://api.example.jp/healthz', intervalSeconds: '60', timeoutMs: '5000', component: 'data-api', severity: 'critical', enabled: 'on' });
      expect(ok.statusCode).toBe(303);
      const list = await get('/console/monitors');
      expect(list.body).toContain('データAPI');
      expect(list.body).toContain('未確認');
      const [m] = await listMonitors(app.ctx.db);
      expect(m).toMatchObject({ name: 'データAPI', kind: 'http', severity: 'critical', component: 'data-api' });
      expect((await listAudit(app.ctx.db, { subjectType: 'monitor', subjectId: m!.id })).map((e) => e.action)).toEqual(['monitor.created']);
      const detail = await get(`/console/monitors/${m!.id}?lang=en`);
      expect(detail.body).toContain('Latency (last 24 hours)');
      expect(detail.body).toContain('<svg class="chart"');
      // A support operator reads but gets no forms; a heartbeat monitor's token is shown once.
      expect((await get('/console/monitors', support)).body).not.toContain('id="monitor-new"');
      const hb = await postForm(app, cookie, '/console/monitors', '/console/monitors', { kind: 'heartbeat', name: '夜間バッチ', intervalSeconds: '3600', component: 'service', enabled: 'on' });
      expect(hb.statusCode).toBe(201);
      expect(hb.body).toMatch(/<code>hkhb_[A-Za-z0-9_-]+<\/code>/);
      // Edit and delete through the forms.
      const edit = await postForm(app, cookie, `/console/monitors/${m!.id}`, `/console/monitors/${m!.id}`, { name: 'データAPI（本番）', url: 'https://api.example.jp/healthz', intervalSeconds: '120', component: 'data-api', enabled: 'on' });
      expect(edit.statusCode).toBe(303);
      expect((await listMonitors(app.ctx.db)).find((x) => x.id === m!.id)?.intervalSeconds).toBe(120);
      const del = await postForm(app, cookie, `/console/monitors/${m!.id}`, `/console/monitors/${m!.id}/delete`, { reason: 'テスト' });
      expect(del.statusCode).toBe(303);
      expect((await listMonitors(app.ctx.db)).some((x) => x.id === m!.id)).toBe(false);
    });

    it('R12.3① a host is registered with its push token shown once; its page charts the samples', async () => {
      const res = await postForm(app, cookie, '/console/hardware', '/console/hardware', { name: 'rack-a-01' });
      expect(res.statusCode).toBe(201);
      const token = /<code>(hkh_[^<]+)<\/code>/.exec(res.body)?.[1];
      expect(token).toBeDefined();
      const hosts = await get('/console/hardware');
      expect(hosts.body).toContain('rack-a-01');
      expect(hosts.body).not.toContain(token!);
      const id = /href="\/console\/hardware\/([0-9a-f-]{36})">rack-a-01/.exec(hosts.body)![1]!;
      const at = new Date(app.clock.now().getTime() - 60_000).toISOString();
      await ingestSamples(app.ctx.db, app.ctx.clock, id, [sampleSchema.parse({ at, cpuPercent: 42, memory: { usedBytes: 4e9, totalBytes: 8e9 }, load: { one: 1, five: 1, fifteen: 1 }, disks: [{ mount: '/', fs: 'ext4', usedBytes: 50, totalBytes: 100 }], diskIo: [], temperatures: { maxC: 55, cpuC: 50 } })], 30);
      const page = await get(`/console/hardware/${id}`);
      expect(page.body).toContain('CPU使用率の推移');
      expect(page.body.match(/<svg class="chart"/g)?.length).toBe(4);
      expect(page.body).toContain('最新 42.0%');
      const rule = await postForm(app, cookie, `/console/hardware/${id}`, `/console/hardware/${id}/rules`, { name: '', metric: 'cpu_percent', comparison: '>', threshold: '90', durationSeconds: '300', severity: 'major' });
      expect(rule.statusCode).toBe(400);
      expect(rule.body).toMatch(/id="rule-new-name-error">入力してください。</);
      const rule2 = await postForm(app, cookie, `/console/hardware/${id}`, `/console/hardware/${id}/rules`, { name: 'CPU高負荷', metric: 'cpu_percent', comparison: '>', threshold: '90', durationSeconds: '300', severity: 'major' });
      expect(rule2.statusCode).toBe(303);
      expect((await get(`/console/hardware/${id}`)).body).toContain('CPU高負荷');
    });

    it('R12.3③ a round is recorded with a finding that opens an incident; a finding without a note is refused next to it', async () => {
      const c = await createChecklist(app.ctx.db, app.ctx.clock, systemActor('test'), { name: 'サーバー室の目視点検', intervalHours: 24, items: [{ key: 'rack', label: 'ラックのランプ', description: null }, { key: 'ups', label: 'UPSの表示', description: null }] });
      const page = await get('/console/rounds');
      expect(page.body).toContain('サーバー室の目視点検');
      const bad = await postForm(app, cookie, '/console/rounds', `/console/rounds/${c.id}`, { _key: ['rack', 'ups'], 'status-rack': 'ok', 'status-ups': 'finding' });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(new RegExp(`id="round-${c.id}-note-ups-error">所見には内容の記載が必要です。<`));
      const before = (await listIncidents(app.ctx.db, app.ctx.clock)).length;
      const ok = await postForm(app, cookie, '/console/rounds', `/console/rounds/${c.id}`, { _key: ['rack', 'ups'], 'status-rack': 'ok', 'status-ups': 'finding', 'note-ups': 'UPSがバッテリー運転の表示', 'incident-ups': 'on', 'severity-ups': 'major' });
      expect(ok.statusCode).toBe(303);
      const [round] = await listRounds(app.ctx.db);
      expect(round).toMatchObject({ findings: 1 });
      const incidentId = round!.results.find((r) => r.itemKey === 'ups')!.incidentId!;
      expect((await getIncident(app.ctx.db, app.ctx.clock, incidentId)).title).toContain('UPSの表示');
      expect((await listIncidents(app.ctx.db, app.ctx.clock)).length).toBe(before + 1);
      const after = await get('/console/rounds');
      expect(after.body).toContain(`href="/console/incidents/${incidentId}"`);
      expect(after.body).toContain('期限内');
    });

    it('R8.1 R8.2 a first notice posted from the console form shows on /status and arrives at the SMTP listener as 【重要】障害通知（第一報）', async () => {
      const comp = await postForm(app, cookie, '/console/components', '/console/components', { key: 'data-api', nameJa: 'データAPI', nameEn: 'Data API', position: '1' });
      expect(comp.statusCode).toBe(303);
      const badComp = await postForm(app, cookie, '/console/components', '/console/components', { key: 'Bad Key', nameJa: '', nameEn: 'x' });
      expect(badComp.statusCode).toBe(400);
      expect(badComp.body).toContain('id="component-new-key-error"');
      expect(badComp.body).toContain('id="component-new-nameJa-error"');
      const incident = await openIncident(app.ctx.db, app.ctx.clock, systemActor('test'), { title: 'データAPIに接続できない', severity: 'critical', occurredAt: new Date(app.clock.now().getTime() - 300_000), customerIds: [sakuraId] });
      const url = `/console/incidents/${incident.id}/notices`;
      expect((await get(`/console/incidents/${incident.id}`)).body).toContain(`href="${url}"`);
      expect((await postForm(app, cookie, url, `/console/incidents/${incident.id}/components`, { components: 'data-api' })).statusCode).toBe(303);
      // An update before the first notice is refused next to the stage.
      const early = await postForm(app, cookie, url, url, { stage: 'update' });
      expect(early.statusCode).toBe(409);
      expect(early.body).toMatch(/id="notice-stage-error">先に第一報を掲載してください。</);
      const fields = { stage: 'first', detailsJa: 'データAPIへの接続がタイムアウトしています。', detailsEn: 'Connections to the data API time out.', nextUpdateAt: '2026-11-24T11:00' };
      const preview = await postForm(app, cookie, url, `${url}/preview`, fields);
      expect(preview.statusCode).toBe(200);
      expect(preview.body).toContain('data-testid="preview"');
      expect(preview.body).toContain('【重要】障害通知（第一報）');
      expect(preview.body).toContain('データAPIへの接続がタイムアウトしています。');
      expect(await listIncidentNotices(app.ctx.db, app.ctx.clock, incident.id)).toHaveLength(0);
      const posted = await postForm(app, cookie, url, url, fields);
      expect(posted.statusCode).toBe(303);
      expect(posted.headers['location']).toBe(`${url}?done=posted`);

      const status = await app.request({ method: 'GET', url: '/status' });
      expect(status.body).toContain('データAPIに接続できない');
      expect(status.body).toContain('<span class="post-label">第一報</span>');
      expect(status.body).toContain('【重要】障害通知（第一報）');

      await app.ctx.queue.runDueJobs();
      const mail = smtp.received.find((m) => m.to.includes('sakura@example.jp'));
      expect(mail?.subject).toBe('【重要】障害通知（第一報）');
      expect(mail?.text).toContain('データAPI');
      const list = await get(url);
      expect(list.body).toMatch(/data-testid="delivery">配信: 宛先 1 · 送信済み 1 · 送信待ち 0 · 失敗 0</);

      // Recovery, then a report without its required fields: each is named next to its box.
      expect((await postForm(app, cookie, url, url, { stage: 'recovery', recoveredAt: '2026-11-24T09:58' })).statusCode).toBe(303);
      const report = await postForm(app, cookie, `${url}?lang=en`, url, { stage: 'report' });
      expect(report.statusCode).toBe(400);
      for (const f of ['causeJa', 'impactJa', 'timeline', 'countermeasuresJa']) expect(report.body).toContain(`id="notice-${f}-error"`);
      const full = await postForm(app, cookie, url, url, { stage: 'report', causeJa: '設定の誤り', causeEn: 'A configuration error', impactJa: '接続不可', impactEn: 'No connections', countermeasuresJa: '手順の見直し', countermeasuresEn: 'Revised procedure', timeline: '2026-11-24 09:55 | 発生 | Occurred\n2026-11-24 09:58 | 復旧 | Recovered' });
      expect(full.statusCode).toBe(303);
      expect((await listIncidentNotices(app.ctx.db, app.ctx.clock, incident.id)).map((n) => n.stage)).toEqual(['first', 'recovery', 'report']);
    });

    it('webhooks: the signing secret is shown once; a bad URL is refused next to the field', async () => {
      const bad = await postForm(app, cookie, '/console/webhooks', '/console/webhooks', { url: 'ftp://example.jp/hook' });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/id="webhook-new-url-error">http:\/\/ または https:\/\/ のURLにしてください。</);
      const ok = await postForm(app, cookie, '/console/webhooks', '/console/webhooks', { url: 'https://hooks.example.jp/hokan', description: '社内チャット' });
      expect(ok.statusCode).toBe(201);
      const secret = /<code>(whsec_[^<]+)<\/code>/.exec(ok.body)?.[1];
      expect(secret).toBeDefined();
      const list = await get('/console/webhooks');
      expect(list.body).toContain('https://hooks.example.jp/hokan');
      expect(list.body).not.toContain(secret!);
      // Support operators do not manage webhooks.
      expect((await get('/console/webhooks', support)).statusCode).toBe(403);
    });

    it('R12.3③ a checklist whose round is late shows as overdue', async () => {
      app.clock.advance(25 * 3_600_000);
      const fresh = await webSignIn(app, 'console', 'ope');
      const page = await get('/console/rounds', fresh);
      expect(page.body).toMatch(/data-testid="round-due">サーバー室の目視点検[^<]*<strong class="field-error">期限切れ<\/strong>/);
      const en = await get('/console/rounds?lang=en', fresh);
      expect(en.body).toContain('>overdue</strong>');
    });
  });
}
