import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { deliveryKick } from '../../src/notify/jobs.js';
import { sendDueStopNotices } from '../../src/notify/notices.js';
import { createMailTransport, deliverDueEmails } from '../../src/notify/outbox.js';
import { statusSnapshot } from '../../src/notify/status-snapshot.js';
import { createWebhook, deliverDueWebhooks } from '../../src/notify/webhooks.js';
import { formatJapanPeriodApprox, formatJapanTimeApprox } from '../../src/core/japan-time.js';
import { kanjiNumber } from '../../src/notify/templates.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener, type ReceivedMail } from '../helpers/smtp.js';

const FROM = 'hokan <noreply@hokan.example.jp>';

describe('R8.1 Japanese notice formatting (pure)', () => {
  it('formats times as 2026年11月24日(火) 10:00頃 and periods as 10:00〜15:00頃; numbers as kanji', () => {
    expect(formatJapanTimeApprox(new Date('2026-11-24T01:00:00Z'))).toBe('2026年11月24日(火) 10:00頃');
    expect(formatJapanPeriodApprox(new Date('2026-11-24T01:00:00Z'), new Date('2026-11-24T06:00:00Z'))).toBe('2026年11月24日(火) 10:00〜15:00頃');
    expect(formatJapanPeriodApprox(new Date('2026-11-24T14:30:00Z'), new Date('2026-11-24T16:00:00Z'))).toBe('2026年11月24日(火) 23:30〜2026年11月25日(水) 01:00頃');
    expect([1, 2, 3, 10, 11, 20, 42].map(kanjiNumber)).toEqual(['一', '二', '三', '十', '十一', '二十', '四十二']);
  });
});

describe.each(databaseKinds)('notices on %s', (kind) => {
  let app: TestApp;
  let smtp: TestSmtpListener;
  let ops: string;
  let customerId: string;
  let otherCustomerId: string;
  let adminCookie: string;

  const deliver = () => app.ctx.queue.runDueJobs();
  const mailsTo = (addr: string) => smtp.received.filter((m) => m.to.includes(addr));
  const openIncident = async (title: string, occurredAt: string, customerIds?: string[]) => {
    const res = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: ops, payload: { title, severity: 'major', occurredAt, ...(customerIds ? { customerIds } : {}) } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().incident.id as string;
  };
  const post = (incidentId: string, payload: Record<string, unknown>) => app.request({ method: 'POST', url: `/api/v1/incidents/${incidentId}/notices`, cookie: ops, payload });

  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T01:20:00Z', { HOKAN_SMTP_URL: smtp.url, HOKAN_MAIL_FROM: FROM, HOKAN_PUBLIC_URL: 'https://status.example.jp', HOKAN_PROVIDER_NAME: '保管データセンター株式会社' });
    await addOperator(app, 'n-ops', ['operator']);
    ops = await app.signIn('n-ops');
    const a = await addCustomerWithContract(app, 'hana');
    const b = await addCustomerWithContract(app, 'mori');
    customerId = a.customer.id;
    otherCustomerId = b.customer.id;
    await addCustomerUser(app, customerId, 'hana-admin', 'customer_admin');
    await addCustomerUser(app, customerId, 'hana-member', 'member');
    adminCookie = await app.signIn('hana-admin');
    for (const [key, ja, en, position] of [['api', 'データAPI', 'Data API', 1], ['portal', 'ポータル', 'Portal', 2]] as const) {
      const c = await app.request({ method: 'POST', url: '/api/v1/status-components', cookie: ops, payload: { key, name: { ja, en }, position } });
      expect(c.statusCode, c.body).toBe(201);
    }
  });
  afterAll(async () => {
    await app?.close();
    await smtp?.stop();
  });
  beforeEach(() => {
    smtp.received.length = 0;
  });

  it('R8.1 contacts: the customer admin registers addresses with a language; invalid addresses and other roles are refused', async () => {
    const bad = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/notice-contacts`, cookie: adminCookie, payload: { email: 'not an address', lang: 'ja' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details[0].path).toBe('email');
    expect(bad.json().error.message.ja).toContain('メールアドレス「not an address」は正しくありません');
    const ja = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/notice-contacts`, cookie: adminCookie, payload: { email: 'joho@hana.example.jp', name: '情報システム部', lang: 'ja' } });
    expect(ja.statusCode, ja.body).toBe(201);
    const en = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/notice-contacts`, cookie: ops, payload: { email: 'it@hana.example.com', lang: 'en' } });
    expect(en.statusCode).toBe(201);
    const dup = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/notice-contacts`, cookie: adminCookie, payload: { email: 'JOHO@hana.example.jp', lang: 'en' } });
    expect(dup.statusCode).toBe(409);
    const member = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/notice-contacts`, cookie: await app.signIn('hana-member'), payload: { email: 'x@hana.example.jp', lang: 'ja' } });
    expect(member.statusCode).toBe(403);
    const other = await app.request({ method: 'GET', url: `/api/v1/customers/${otherCustomerId}/notice-contacts`, cookie: adminCookie });
    expect(other.statusCode).toBe(404);
    const list = await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/notice-contacts`, cookie: adminCookie });
    expect(list.json().contacts.map((c: { email: string; lang: string }) => `${c.email}:${c.lang}`)).toEqual(['it@hana.example.com:en', 'joho@hana.example.jp:ja']);
  });

  it('R8.1 unknown components are refused and nothing is written', async () => {
    const id = await openIncident('コンポーネント確認', '2026-11-24T01:00:00Z', [customerId]);
    const res = await app.request({ method: 'PUT', url: `/api/v1/incidents/${id}/components`, cookie: ops, payload: { components: ['api', 'nope'] } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message.en).toContain('unknown components: nope');
    const snap = await statusSnapshot(app.ctx.db, app.clock);
    expect(snap.components.map((c) => c.key)).toEqual(['api', 'portal']);
    const badKey = await app.request({ method: 'POST', url: '/api/v1/status-components', cookie: ops, payload: { key: 'Bad Key', name: { ja: 'x', en: 'x' } } });
    expect(badKey.statusCode).toBe(400);
  });

  it('R8.1 R8.2 first notice arrives with the right subject and Japanese time; 第二報; 最終報; report needs its fields', async () => {
    const id = await openIncident('データAPIに接続できない <障害> & 遅延', '2026-11-24T01:00:00Z', [customerId]);
    expect((await app.request({ method: 'PUT', url: `/api/v1/incidents/${id}/components`, cookie: ops, payload: { components: ['api'] } })).statusCode).toBe(200);
    const preview = await app.request({ method: 'POST', url: `/api/v1/incidents/${id}/notices/preview`, cookie: ops, payload: { stage: 'first' } });
    expect(preview.json().preview.subject.ja).toBe('【重要】障害通知（第一報）');
    expect(await app.ctx.db.selectFrom('notice_posts').select('id').where('incident_id', '=', id).execute()).toHaveLength(0);

    const early = await post(id, { stage: 'update' });
    expect(early.statusCode).toBe(409);
    const first = await post(id, { stage: 'first', details: { ja: '原因を調査しています。', en: 'We are investigating the cause.' }, nextUpdateAt: '2026-11-24T02:30:00Z' });
    expect(first.statusCode, first.body).toBe(201);
    // contact (ja), contact (en), the customer's contact e-mail, the customer admin
    expect(first.json()).toMatchObject({ recipients: 4, emails: 4 });
    expect((await post(id, { stage: 'first' })).statusCode).toBe(409);
    await deliver();
    expect(smtp.received).toHaveLength(4);
    const ja = mailsTo('joho@hana.example.jp')[0]!;
    expect(ja.subject).toBe('【重要】障害通知（第一報）');
    expect(ja.text).toContain('■ 発生日時: 2026年11月24日(火) 10:00頃');
    expect(ja.text).toContain('■ 影響範囲: データAPI');
    expect(ja.text).toContain('■ 次回のご報告: 2026年11月24日(火) 11:30頃（予定）');
    expect(ja.text.indexOf('お客様各位')).toBeLessThan(ja.text.indexOf('Dear customer'));
    const en = mailsTo('it@hana.example.com')[0]!;
    expect(en.subject).toBe('[Important] Incident notice (1st report)');
    expect(en.text.indexOf('Dear customer')).toBeLessThan(en.text.indexOf('お客様各位'));
    expect(mailsTo('hana@example.jp')).toHaveLength(1);
    expect(mailsTo('hana-admin@customer.example.jp')).toHaveLength(1);
    const incident = (await app.request({ method: 'GET', url: `/api/v1/incidents/${id}`, cookie: ops })).json().incident;
    expect(incident.times.firstNotice).toBe('2026-11-24T01:20:00.000Z');

    app.clock.advance(30 * 60_000);
    for (const n of ['二', '三']) {
      smtp.received.length = 0;
      const u = await post(id, { stage: 'update', details: { ja: '復旧作業中です。', en: 'Restoration in progress.' } });
      expect(u.statusCode, u.body).toBe(201);
      await deliver();
      expect(mailsTo('joho@hana.example.jp').map((m) => m.subject)).toEqual([`【重要】障害通知（第${n}報）`]);
    }
    expect((await post(id, { stage: 'recovery' })).statusCode).toBe(400); // no recovery time yet
    smtp.received.length = 0;
    const rec = await post(id, { stage: 'recovery', recoveredAt: '2026-11-24T01:50:00Z', cause: { ja: 'ストレージ装置の故障', en: 'A storage unit failed' } });
    expect(rec.statusCode, rec.body).toBe(201);
    await deliver();
    const recMail = mailsTo('joho@hana.example.jp')[0]!;
    expect(recMail.subject).toBe('【重要】障害復旧通知（最終報）');
    expect(recMail.text).toContain('■ 障害期間: 2026年11月24日(火) 10:00〜10:50頃');
    expect((await post(id, { stage: 'update' })).statusCode).toBe(409);

    const missing = await post(id, { stage: 'report', cause: { ja: '故障', en: 'failure' } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.details.map((d: { path: string }) => d.path).sort()).toEqual(['countermeasures', 'impact', 'timeline']);
    smtp.received.length = 0;
    const report = await post(id, {
      stage: 'report',
      cause: { ja: 'ストレージ装置のコントローラ故障', en: 'A storage controller failed' },
      impact: { ja: 'データAPIが50分間利用できませんでした。', en: 'The data API was unavailable for 50 minutes.' },
      timeline: [
        { at: '2026-11-24T01:00:00Z', ja: '障害発生', en: 'Failure began' },
        { at: '2026-11-24T01:50:00Z', ja: '復旧', en: 'Service resumed' },
      ],
      countermeasures: { ja: 'コントローラを二重化します。', en: 'We will duplicate the controller.' },
    });
    expect(report.statusCode, report.body).toBe(201);
    await deliver();
    const repMail = mailsTo('joho@hana.example.jp')[0]!;
    expect(repMail.subject).toBe('【重要】障害報告書');
    expect(repMail.text).toContain('・2026年11月24日(火) 10:50頃　復旧');
    expect(repMail.text).toContain('■ 4. 再発防止策');
    const times = (await app.request({ method: 'GET', url: `/api/v1/incidents/${id}`, cookie: ops })).json().incident.times;
    expect(times.recovered).toBe('2026-11-24T01:50:00.000Z');
    expect(times.recoveryNotice).not.toBeNull();
    expect(times.report).not.toBeNull();

    // The operator's list with per-recipient delivery; the customer's own view.
    const list = (await app.request({ method: 'GET', url: `/api/v1/incidents/${id}/notices`, cookie: ops })).json().notices;
    expect(list.map((n: { label: { ja: string } }) => n.label.ja)).toEqual(['第一報', '第二報', '第三報', '最終報（復旧報）', '障害報告']);
    for (const n of list) expect(n.delivery).toEqual({ recipients: 4, queued: 0, sent: 4, failed: 0 });
    const mine = (await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/notices`, cookie: adminCookie })).json().notices;
    expect(mine.filter((n: { incidentId: string }) => n.incidentId === id)).toHaveLength(5);
    expect(mine[0].recipients.every((r: { state: string; messageId: string | null }) => r.state === 'sent' && r.messageId)).toBe(true);
    const theirs = (await app.request({ method: 'GET', url: `/api/v1/customers/${otherCustomerId}/notices`, cookie: ops })).json().notices;
    expect(theirs.filter((n: { incidentId: string }) => n.incidentId === id)).toHaveLength(0);

    // R8.1: the posts on the status page and in the Atom feed.
    const snap = await statusSnapshot(app.ctx.db, app.clock);
    const hist = snap.history.find((i) => i.id === id)!;
    expect(hist.posts.map((p) => p.label.ja)).toEqual(['第一報', '第二報', '第三報', '最終報（復旧報）', '障害報告']);
    expect(hist.components).toEqual(['api']);
    const api = snap.components.find((c) => c.key === 'api')!;
    expect(api.days).toHaveLength(90);
    expect(api.days[89]).toMatchObject({ date: '2026-11-24', worst: 'major' });
    // 50 minutes down in the 10 h 50 min of the Japan day so far.
    expect(api.days[89]!.availabilityPct).toBeCloseTo(100 * (1 - 50 / 650), 2);
    expect(api.days[0]!.availabilityPct).toBeNull();
    expect(snap.components.find((c) => c.key === 'portal')!.days[89]).toMatchObject({ availabilityPct: 100, worst: 'none' });
    expect(JSON.stringify(snap)).not.toContain(customerId);
    expect(JSON.stringify(snap)).not.toContain('hana');

    const feed = await app.request({ method: 'GET', url: '/status/feed.atom' });
    expect(feed.statusCode).toBe(200);
    expect(feed.headers['content-type']).toContain('application/atom+xml');
    expect(feed.body).toMatch(/^<\?xml version="1.0" encoding="utf-8"\?>\n<feed xmlns="http:\/\/www.w3.org\/2005\/Atom"/);
    expect(feed.body).toContain('<title>【重要】障害通知（第一報） / [Important] Incident notice (1st report)</title>');
    expect(feed.body).toContain('データAPIに接続できない &lt;障害&gt; &amp; 遅延');
    expect(feed.body).not.toContain('<障害>');
    expect(feed.body).toContain('2026年11月24日(火) 10:00頃');
    expect(feed.body).toMatch(/<updated>2026-11-24T\d\d:\d\d:\d\d\.\d{3}Z<\/updated>/);
    expect((feed.body.match(/<entry>/g) ?? []).length).toBeGreaterThanOrEqual(5);
  });

  it('R8.1 SMTP stopped then started: the notice waits and each recipient gets it exactly once', async () => {
    const id = await openIncident('SMTP停止中の障害', '2026-11-24T01:00:00Z', [customerId]);
    await smtp.stop();
    try {
      expect((await post(id, { stage: 'first' })).statusCode).toBe(201);
      await deliver();
      const rows = await app.ctx.db.selectFrom('outbound_emails').select(['state', 'attempts']).where('dedupe_key', 'like', 'notice:%').where('state', '=', 'queued').execute();
      expect(rows.length).toBe(4);
      expect(rows.every((r) => r.attempts === 1)).toBe(true);
    } finally {
      await smtp.start();
    }
    expect(smtp.received).toHaveLength(0);
    app.clock.advance(2 * 60_000);
    const transport = createMailTransport(smtp.url, FROM);
    await deliverDueEmails(app.ctx.db, app.clock, transport);
    await deliverDueEmails(app.ctx.db, app.clock, transport);
    transport.close();
    await deliver();
    const subjects = smtp.received.map((m) => `${m.to[0]} ${m.subject}`);
    expect(subjects).toHaveLength(4);
    expect(new Set(subjects).size).toBe(4);
  });

  it('R8.1 signed webhooks: delivered with a valid signature, retried after the receiver was down', async () => {
    const received: Array<{ headers: http.IncomingHttpHeaders; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    // Over HTTP the IDS refuses loopback URLs in a body (SSRF rule ENV-005), so the route is tried
    // with a public URL and the local receiver is registered through the domain function.
    const created = await app.request({ method: 'POST', url: '/api/v1/webhooks', cookie: ops, payload: { url: 'https://hooks.example.jp/hokan', description: 'public' } });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().secret).toMatch(/^whsec_/);
    const listed = await app.request({ method: 'GET', url: '/api/v1/webhooks', cookie: ops });
    expect(listed.json().webhooks).toHaveLength(1);
    expect(listed.body).not.toContain(created.json().secret);
    await app.request({ method: 'DELETE', url: `/api/v1/webhooks/${created.json().webhook.id}`, cookie: ops });
    const { webhook, secret } = await createWebhook(app.ctx.db, app.clock, systemActor('test'), { url: `http://127.0.0.1:${port}/hook` });
    expect((await app.request({ method: 'POST', url: '/api/v1/webhooks', cookie: ops, payload: { url: 'ftp://example.jp/x' } })).statusCode).toBe(400);
    try {
      const id = await openIncident('Webhook確認', '2026-11-24T01:00:00Z', [customerId]);
      expect((await post(id, { stage: 'first' })).statusCode).toBe(201);
      expect(await deliverDueWebhooks(app.ctx.db, app.clock)).toMatchObject({ delivered: 0, retried: 1 });
      let deliveries = (await app.request({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}/deliveries`, cookie: ops })).json().deliveries;
      expect(deliveries[0]).toMatchObject({ state: 'queued', attempts: 1 });
      expect(deliveries[0].lastError).toBeTruthy();
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
      expect(await deliverDueWebhooks(app.ctx.db, app.clock)).toEqual({ delivered: 0, retried: 0, failed: 0 }); // not due yet
      app.clock.advance(31_000);
      // Two workers at once: the row is claimed by one of them only.
      const both = await Promise.all([deliverDueWebhooks(app.ctx.db, app.clock), deliverDueWebhooks(app.ctx.db, app.clock)]);
      expect(both.reduce((n, r) => n + r.delivered, 0)).toBe(1);
      expect(both.reduce((n, r) => n + r.retried + r.failed, 0)).toBe(0);
      app.clock.advance(3_600_000);
      expect(await deliverDueWebhooks(app.ctx.db, app.clock)).toEqual({ delivered: 0, retried: 0, failed: 0 });
      expect(received).toHaveLength(1);
      const got = received[0]!;
      const ts = String(got.headers['x-hokan-timestamp']);
      const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${got.body}`).digest('hex')}`;
      expect(got.headers['x-hokan-signature']).toBe(expected);
      const payload = JSON.parse(got.body);
      expect(payload).toMatchObject({ type: 'status.post', post: { incidentId: id, stage: 'first', subject: { ja: '【重要】障害通知（第一報）' } } });
      deliveries = (await app.request({ method: 'GET', url: `/api/v1/webhooks/${webhook.id}/deliveries`, cookie: ops })).json().deliveries;
      expect(deliveries[0]).toMatchObject({ state: 'delivered', attempts: 2, lastStatus: 204 });
    } finally {
      await app.request({ method: 'DELETE', url: `/api/v1/webhooks/${webhook.id}`, cookie: ops });
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('R8.1 public e-mail subscription with double opt-in and unsubscribe', async () => {
    const form = (body: string) => app.request({ method: 'POST', url: '/status/subscribe', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: body });
    const bad = await form('email=nope%40&lang=ja');
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toContain('text/html');
    expect(bad.body).toContain('メールアドレスとして受け付けられません');
    const badEn = await form('email=x%20y%40example.jp&lang=en');
    expect(badEn.body).toContain('is not an e-mail address we can accept');
    const ok = await form('email=fan%40example.org&lang=en');
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('Check your inbox');
    expect((await form('email=fan%40example.org&lang=en')).statusCode).toBe(200); // no second mail within the hour
    await deliver();
    expect(mailsTo('fan@example.org')).toHaveLength(1);
    const link = /https:\/\/status\.example\.jp\/status\/subscribe\/confirm\?token=([A-Za-z0-9_-]+)/.exec(mailsTo('fan@example.org')[0]!.text)!;
    expect(link).not.toBeNull();

    // Not yet confirmed: no posts.
    smtp.received.length = 0;
    const id1 = await openIncident('購読確認前', '2026-11-24T01:00:00Z', [customerId]);
    await post(id1, { stage: 'first' });
    await deliver();
    expect(mailsTo('fan@example.org')).toHaveLength(0);

    const confirmed = await app.request({ method: 'GET', url: `/status/subscribe/confirm?token=${link[1]}` });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.body).toContain('Subscription confirmed');
    expect((await app.request({ method: 'GET', url: '/status/subscribe/confirm?token=forged' })).statusCode).toBe(404);

    const id2 = await openIncident('購読確認後', '2026-11-24T01:00:00Z', [otherCustomerId]);
    await post(id2, { stage: 'first' });
    await deliver();
    const got = mailsTo('fan@example.org');
    expect(got).toHaveLength(1);
    expect(got[0]!.subject).toBe('[Important] Incident notice (1st report)');
    const unsub = /https:\/\/status\.example\.jp\/status\/unsubscribe\?token=([A-Za-z0-9_-]+)/.exec(got[0]!.text)!;
    expect((await app.request({ method: 'GET', url: `/status/unsubscribe?token=${unsub[1]}` })).body).toContain('Unsubscribed');

    smtp.received.length = 0;
    await post(id2, { stage: 'update' });
    await deliver();
    expect(mailsTo('fan@example.org')).toHaveLength(0);
    expect(smtp.received.length).toBeGreaterThan(0);
  });

  // Two sessions are needed to interleave two requests; PGlite runs one transaction at a time.
  it.skipIf(kind !== 'postgres')('R8.1 two subscription requests for a new address at once (a double click): both get the normal answer', async () => {
    const form = () => app.request({ method: 'POST', url: '/status/subscribe', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'email=twice%40example.org&lang=ja' });
    // The first request's row is written and not yet committed when the second looks for it: the
    // second finds nothing to lock, and its insert waits on the unique index until the first commits.
    let second: ReturnType<typeof form> | undefined;
    await app.ctx.db.transaction().execute(async (trx) => {
      await sql`insert into status_subscribers (id, email, lang, confirm_token_hash, unsubscribe_token, created_at, confirmation_sent_at)
        values (gen_random_uuid(), 'Twice@example.org', 'ja', 'x', 'twice-unsubscribe', now(), now())`.execute(trx);
      second = form();
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock' and query like 'insert into "status_subscribers"%'`.execute(app.ctx.db);
        if (r.rows[0]!.n === 1) break;
        if (Date.now() > deadline) throw new Error('the second request never waited on the first one\'s row');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    const res = await second!;
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain('メール');
    expect(await app.ctx.db.selectFrom('status_subscribers').select('id').where(sql<boolean>`lower(email) = 'twice@example.org'`).execute()).toHaveLength(1);
  });

  it('R7.2 R7.3 planned-stop notice and reminder go out exactly once, with proof of notice; emergency stops are announced', async () => {
    const start = new Date(app.clock.now().getTime() + 20 * 86_400_000);
    const created = await app.request({
      method: 'POST',
      url: '/api/v1/stops/planned',
      cookie: ops,
      payload: { reason: 'maintenance', description: 'ストレージの定期保守', startsAt: start.toISOString(), endsAt: new Date(start.getTime() + 4 * 3_600_000).toISOString(), customerIds: [customerId] },
    });
    expect(created.statusCode, created.body).toBe(201);
    const stopId = created.json().stop.id as string;
    expect((await app.request({ method: 'PUT', url: `/api/v1/stops/${stopId}/components`, cookie: ops, payload: { components: ['api', 'zzz'] } })).statusCode).toBe(400);
    expect((await app.request({ method: 'PUT', url: `/api/v1/stops/${stopId}/components`, cookie: ops, payload: { components: ['api'] } })).statusCode).toBe(200);
    const ctx = { providerName: 'P', publicUrl: 'https://status.example.jp', kick: deliveryKick(app.ctx.queue), reminderLeadMs: 24 * 3_600_000 };
    const sweep = () => sendDueStopNotices(app.ctx.db, app.clock, ctx);
    const [a, b] = await Promise.all([sweep(), sweep()]);
    expect([...a, ...b].map((p) => p.stage)).toEqual(['stop_planned']);
    expect(await sweep()).toEqual([]);
    await deliver();
    expect(mailsTo('joho@hana.example.jp').map((m) => m.subject)).toEqual(['【重要】計画停止のお知らせ']);
    expect(mailsTo('joho@hana.example.jp')[0]!.text).toContain('■ 影響範囲: データAPI');
    expect(smtp.received.some((m) => m.to.includes('mori@example.jp'))).toBe(false);

    app.clock.set(new Date(start.getTime() - 25 * 3_600_000));
    expect(await sweep()).toEqual([]);
    app.clock.set(new Date(start.getTime() - 23 * 3_600_000));
    const [c, d] = await Promise.all([sweep(), sweep()]);
    expect([...c, ...d].map((p) => p.stage)).toEqual(['stop_reminder']);
    expect(await sweep()).toEqual([]);
    await deliver();
    expect(mailsTo('joho@hana.example.jp').map((m) => m.subject)).toEqual(['【重要】計画停止のお知らせ', '【重要】【再送】計画停止のお知らせ（開始前のご案内）']);

    const proof = await app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/stops/${stopId}/notice-proof`, cookie: await app.signIn('hana-admin') });
    expect(proof.statusCode).toBe(200);
    const notices = proof.json().proof.notices;
    expect(notices.map((n: { stage: string }) => n.stage)).toEqual(['stop_planned', 'stop_reminder']);
    for (const n of notices) {
      expect(n.recipients).toHaveLength(4);
      for (const r of n.recipients) expect(r).toMatchObject({ state: 'sent', acceptedAt: expect.any(String), messageId: expect.stringMatching(/^<.+@hokan\.outbox>$/), queuedAt: expect.any(String) });
    }
    const mail = mailsTo('joho@hana.example.jp')[0] as ReceivedMail;
    expect(notices[0].recipients.find((r: { address: string }) => r.address === 'joho@hana.example.jp').messageId).toBe(mail.messageId);
    ops = await app.signIn('n-ops');
    expect((await app.request({ method: 'GET', url: `/api/v1/customers/${otherCustomerId}/stops/${stopId}/notice-proof`, cookie: ops })).statusCode).toBe(404);

    // The stop shows on the status page as upcoming, then as maintenance while in force.
    expect((await statusSnapshot(app.ctx.db, app.clock)).upcomingStops.map((s) => s.id)).toContain(stopId);
    app.clock.set(new Date(start.getTime() + 3_600_000));
    ops = await app.signIn('n-ops');
    // Earlier tests left incidents open; once they are recovered, only the stop shapes the status.
    for (const i of (await app.request({ method: 'GET', url: '/api/v1/incidents', cookie: ops })).json().incidents) {
      if (!i.times.recovered) expect((await app.request({ method: 'POST', url: `/api/v1/incidents/${i.id}/milestones`, cookie: ops, payload: { milestone: 'recovered' } })).statusCode).toBe(200);
    }
    const during = await statusSnapshot(app.ctx.db, app.clock);
    expect(during.activeStops.map((s) => s.id)).toContain(stopId);
    expect(during.components.find((x) => x.key === 'api')!.status).toBe('maintenance');
    app.clock.set(new Date(start.getTime() + 5 * 3_600_000));

    smtp.received.length = 0;
    const em = await app.request({ method: 'POST', url: '/api/v1/stops/emergency', cookie: ops, payload: { cause: 'attack', description: '不正アクセスの防止のため', customerIds: [customerId] } });
    expect(em.statusCode).toBe(201);
    expect((await sweep()).map((p) => p.stage)).toEqual(['stop_emergency']);
    expect(await sweep()).toEqual([]);
    await deliver();
    expect(mailsTo('joho@hana.example.jp').map((m) => m.subject)).toEqual(['【緊急】サービス緊急停止のお知らせ']);
    // The status page: a stop of one customer degrades the components, and does not say whose.
    const scoped = await statusSnapshot(app.ctx.db, app.clock);
    expect(scoped.overall).toBe('degraded');
    expect(scoped.components.map((c) => c.status)).toEqual(['degraded', 'degraded']);
    expect(scoped.components.find((x) => x.key === 'api')!.days.at(-1)!.worst).not.toBe('critical');
    expect(JSON.stringify(scoped)).not.toContain(customerId);
    await app.request({ method: 'POST', url: `/api/v1/stops/${em.json().stop.id}/end`, cookie: ops, payload: { note: 'x' } });
    expect((await statusSnapshot(app.ctx.db, app.clock)).overall).toBe('operational');

    // An emergency stop of every customer, linked to no component (as the console makes it), is an
    // outage of every component on the status page, and its time counts against the day.
    const whole = await app.request({ method: 'POST', url: '/api/v1/stops/emergency', cookie: ops, payload: { cause: 'environment_failure', description: '設備故障のため' } });
    expect(whole.statusCode).toBe(201);
    const stoppedAt = app.clock.now().getTime();
    app.clock.set(new Date(stoppedAt + 30 * 60_000));
    const down = await statusSnapshot(app.ctx.db, app.clock);
    expect(down.overall).toBe('outage');
    expect(down.components.map((c) => c.status)).toEqual(['outage', 'outage']);
    for (const c of down.components) {
      const day = c.days[c.days.length - 1]!;
      expect(day.worst).toBe('critical');
      expect(day.availabilityPct!).toBeLessThan(100);
    }
    expect((await app.request({ method: 'POST', url: `/api/v1/stops/${whole.json().stop.id}/end`, cookie: ops, payload: { note: 'x' } })).statusCode).toBe(200);
    const after = await statusSnapshot(app.ctx.db, app.clock);
    expect(after.overall).toBe('operational');
    expect(after.components.find((x) => x.key === 'api')!.days.at(-1)!.worst).toBe('critical');
  });

  it('R7.2 a planned stop that started before any sweep ran (short notice by override) still gets its notice, late rather than never', async () => {
    await addOperator(app, 'n-admin', ['admin']);
    const admin = await app.signIn('n-admin');
    const start = new Date(app.clock.now().getTime() + 30_000);
    const created = await app.request({
      method: 'POST',
      url: '/api/v1/stops/planned',
      cookie: admin,
      payload: { reason: 'software_upgrade', description: '緊急性の高い修正の適用', startsAt: start.toISOString(), endsAt: new Date(start.getTime() + 3_600_000).toISOString(), customerIds: [customerId], override: { reason: '脆弱性対応のため' } },
    });
    expect(created.statusCode, created.body).toBe(201);
    const stopId = created.json().stop.id as string;
    app.clock.set(new Date(start.getTime() + 60_000));
    const ctx = { providerName: 'P', publicUrl: 'https://status.example.jp', kick: deliveryKick(app.ctx.queue), reminderLeadMs: 24 * 3_600_000 };
    const posted = await sendDueStopNotices(app.ctx.db, app.clock, ctx);
    expect(posted.filter((p) => p.stopId === stopId).map((p) => p.stage)).toEqual(['stop_planned']);
    expect((await sendDueStopNotices(app.ctx.db, app.clock, ctx)).filter((p) => p.stopId === stopId)).toEqual([]);
    await deliver();
    expect(mailsTo('joho@hana.example.jp').map((m) => m.subject)).toContain('【重要】計画停止のお知らせ');
    // Once it has ended, a notice would tell nobody anything.
    const ended = await app.request({
      method: 'POST',
      url: '/api/v1/stops/planned',
      cookie: admin,
      payload: { reason: 'software_upgrade', description: '再起動', startsAt: new Date(app.clock.now().getTime() + 30_000).toISOString(), endsAt: new Date(app.clock.now().getTime() + 90_000).toISOString(), customerIds: [otherCustomerId], override: { reason: '脆弱性対応のため' } },
    });
    expect(ended.statusCode, ended.body).toBe(201);
    app.clock.set(new Date(app.clock.now().getTime() + 3 * 3_600_000));
    expect((await sendDueStopNotices(app.ctx.db, app.clock, ctx)).filter((p) => p.stopId === ended.json().stop.id)).toEqual([]);
  });
});
