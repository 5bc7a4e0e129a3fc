import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breachDeadlines, reportability } from '../../src/incidents/breach-clock.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener } from '../helpers/smtp.js';

describe('personal-data breach deadlines (施行規則 第7条・第8条, pure rules)', () => {
  it('counts Japan calendar days with the day of learning as day 1: preliminary by day 3 (latest 5), final by day 30, or 60 with unauthorised purpose', () => {
    // 25 Nov 00:30 JST: day 1 is 25 Nov.
    const d = breachDeadlines(new Date('2026-11-24T15:30:00Z'), false);
    expect(d.preliminary.targetAt.toISOString()).toBe('2026-11-27T15:00:00.000Z');
    expect(d.preliminary.latestAt.toISOString()).toBe('2026-11-29T15:00:00.000Z');
    expect(d.final).toMatchObject({ days: 30 });
    expect(d.final.dueAt.toISOString()).toBe('2026-12-24T15:00:00.000Z');
    expect(d.final.rule.ja).toContain('第8条第2項');
    const u = breachDeadlines(new Date('2026-11-24T15:30:00Z'), true);
    expect(u.final.days).toBe(60);
    expect(u.final.dueAt.toISOString()).toBe('2027-01-23T15:00:00.000Z');
    expect(u.final.rule.ja).toContain('第7条第3号');
    // 24 Nov 23:59 JST: day 1 is 24 Nov, one minute makes a day's difference.
    expect(breachDeadlines(new Date('2026-11-24T14:59:00Z'), false).preliminary.targetAt.toISOString()).toBe('2026-11-26T15:00:00.000Z');
  });

  it('shows which item of 第7条 applies, the exclusion for advanced measures, and undetermined while the count is unknown', () => {
    const base = { sensitive: false, financialRisk: false, peopleCount: 10, advancedMeasures: false };
    expect(reportability(base, false).reportable).toBe('no');
    expect(reportability({ ...base, peopleCount: 1000 }, false).reportable).toBe('no');
    expect(reportability({ ...base, peopleCount: 1001 }, false)).toMatchObject({ reportable: 'yes' });
    expect(reportability({ ...base, sensitive: true }, false).reason.ja).toContain('要配慮個人情報');
    expect(reportability({ ...base, financialRisk: true }, false).reportable).toBe('yes');
    expect(reportability(base, true).reason.ja).toContain('第7条第3号');
    expect(reportability({ ...base, peopleCount: null }, false).reportable).toBe('undetermined');
    expect(reportability({ ...base, sensitive: true, advancedMeasures: true }, true)).toMatchObject({ reportable: 'no', advancedMeasures: true });
  });
});

describe.each(databaseKinds)('personal-data breach clock over HTTP on %s', (kind) => {
  let app: TestApp;
  const smtp = new TestSmtpListener();
  let a: string;
  let b: string;
  let c: string;
  let incidentId: string;
  let breachId: string;
  const cookies: Record<string, string> = {};
  const signInAll = async () => {
    for (const u of ['br-ops', 'br-admin', 'kiku-admin', 'nashi-admin']) cookies[u] = await app.signIn(u);
  };

  beforeAll(async () => {
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T17:00:00Z', { HOKAN_SMTP_URL: smtp.url });
    a = (await addCustomerWithContract(app, 'kiku')).customer.id;
    b = (await addCustomerWithContract(app, 'momo')).customer.id;
    c = (await addCustomerWithContract(app, 'nashi')).customer.id;
    await addCustomerUser(app, a, 'kiku-admin', 'customer_admin');
    await addCustomerUser(app, c, 'nashi-admin', 'customer_admin');
    await addOperator(app, 'br-ops', ['operator']);
    await addOperator(app, 'br-admin', ['admin']);
    await addOperator(app, 'br-bill', ['billing']);
    await signInAll();
    const inc = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: cookies['br-ops'], payload: { title: '不正アクセスによる漏えいの疑い', severity: 'critical', cause: 'attack', occurredAt: '2026-11-24T00:00:00Z', detectedAt: '2026-11-24T00:30:00Z', customerIds: [a, b] } });
    incidentId = inc.json().incident.id;
  });
  afterAll(async () => {
    await app?.close();
    await smtp.stop();
  });

  const mark = (payload: Record<string, unknown>, cookie = cookies['br-ops']) => app.request({ method: 'POST', url: `/api/v1/incidents/${incidentId}/breach`, cookie, payload });
  const notice = (payload: Record<string, unknown>) => app.request({ method: 'POST', url: `/api/v1/breaches/${breachId}/notices`, cookie: cookies['br-ops'], payload });
  const validFor = () => ({ kinds: ['leak'], status: 'suspected', unauthorisedPurpose: true, customers: [{ customerId: a, peopleCount: null }, { customerId: b, learnedAt: '2026-11-24T16:00:00Z' }] });

  it('marks an incident as a possible leak with per-customer deadlines, refusing bad input with the field named and nothing written', async () => {
    const valid = validFor();
    const refusals: Array<[Record<string, unknown>, number, string]> = [
      [{ ...valid, customers: [{ customerId: c }] }, 400, 'customers.0.customerId'],
      [{ ...valid, learnedAt: '2026-11-23T00:00:00Z' }, 400, 'learnedAt'],
      [{ ...valid, learnedAt: '2026-11-25T00:00:00Z' }, 400, 'learnedAt'],
      [{ ...valid, customers: [] }, 400, 'body.customers'],
      [{ ...valid, kinds: ['leak', 'leak'] }, 400, 'kinds'],
      [{ ...valid, kinds: ['theft'] }, 400, 'body.kinds.0'],
      [{ ...valid, customers: [{ customerId: a }, { customerId: a }] }, 400, 'customers'],
      [{ ...valid, beganAt: '2026-11-24T01:00:00Z' }, 400, 'beganAt'],
      [{ ...valid, customers: [{ customerId: b, learnedAt: '2026-11-24T00:10:00Z' }] }, 400, 'customers.0.learnedAt'],
    ];
    for (const [payload, status, path] of refusals) {
      const res = await mark(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(status);
      expect(res.json().error.details.map((d: { path: string }) => d.path), JSON.stringify(payload)).toContain(path);
    }
    expect((await mark(valid, cookies['kiku-admin'])).statusCode).toBe(403);
    expect(await app.ctx.db.selectFrom('personal_data_breaches').selectAll().execute()).toEqual([]);

    const res = await mark(valid);
    expect(res.statusCode, res.body).toBe(201);
    const breach = res.json().breach;
    breachId = breach.id;
    expect(breach).toMatchObject({ incidentId, status: 'suspected', learnedAt: '2026-11-24T00:30:00.000Z', kinds: [{ code: 'leak', label: { ja: '漏えい' } }] });
    const ca = breach.customers.find((x: { customerId: string }) => x.customerId === a);
    const cb = breach.customers.find((x: { customerId: string }) => x.customerId === b);
    // A: learned 24 Nov 09:30 JST → day 3 ends 26 Nov 24:00 JST; 60 days (unauthorised purpose) → 22 Jan.
    expect(ca.deadlines.preliminary).toMatchObject({ targetAt: '2026-11-26T15:00:00.000Z', latestAt: '2026-11-28T15:00:00.000Z', state: 'open' });
    expect(ca.deadlines.final).toMatchObject({ dueAt: '2027-01-22T15:00:00.000Z', days: 60 });
    // B: learned later, 25 Nov 01:00 JST → its own clock.
    expect(cb.deadlines.preliminary.targetAt).toBe('2026-11-27T15:00:00.000Z');
    expect(ca.reportability.reportable).toBe('yes');
    expect(ca.missing).toEqual(['dataItems', 'peopleCount', 'cause', 'countermeasures', 'contact', 'secondaryDamage', 'timeline']);
    expect((await mark(valid)).statusCode).toBe(409);
  });

  it('operators fill in what the report needs; each customer sees only its own part; others get 404', async () => {
    const patch = (payload: Record<string, unknown>, cookie = cookies['br-ops']) => app.request({ method: 'PATCH', url: `/api/v1/breaches/${breachId}`, cookie, payload });
    expect((await patch({ timeline: [{ at: '2026-11-30T00:00:00Z', event: '未来' }] })).statusCode).toBe(400);
    expect((await patch({ beganAt: '2026-11-24T00:40:00Z' })).statusCode).toBe(400);
    expect((await patch({ cause: 'x' }, cookies['kiku-admin'])).statusCode).toBe(403);
    const res = await patch({
      status: 'confirmed',
      beganAt: '2026-11-23T22:00:00Z',
      cause: '管理画面の脆弱性を突いた不正アクセス',
      secondaryDamage: '現時点で二次被害の報告なし',
      countermeasures: '脆弱性の修正、全パスワードの再設定',
      contact: 'security@provider.example.jp',
      timeline: [{ at: '2026-11-24T00:30:00Z', event: '検知' }, { at: '2026-11-23T22:00:00Z', event: '侵入' }],
      customers: [{ customerId: a, dataItems: ['氏名', 'メールアドレス'], peopleCount: 1500, peopleEstimated: true, advancedMeasures: false, protectionNote: '暗号化なし' }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const after = res.json().breach;
    expect(after.timeline.map((t: { event: string }) => t.event)).toEqual(['侵入', '検知']);
    const ca = after.customers.find((x: { customerId: string }) => x.customerId === a);
    expect(ca).toMatchObject({ dataItems: ['氏名', 'メールアドレス'], people: { count: 1500, estimated: true }, missing: [] });
    expect(ca.reportability.items.filter((i: { applies: boolean }) => i.applies === true).map((i: { item: string }) => i.item)).toEqual(['7-3', '7-4']);

    const own = await app.request({ method: 'GET', url: `/api/v1/breaches/${breachId}`, cookie: cookies['kiku-admin'] });
    expect(own.statusCode).toBe(200);
    expect(own.json().breach.customers.map((x: { customerId: string }) => x.customerId)).toEqual([a]);
    expect(own.body).not.toContain(b);
    expect((await app.request({ method: 'GET', url: '/api/v1/breaches', cookie: cookies['kiku-admin'] })).json().breaches).toHaveLength(1);
    expect((await app.request({ method: 'GET', url: `/api/v1/breaches/${breachId}`, cookie: cookies['nashi-admin'] })).statusCode).toBe(404);
    expect((await app.request({ method: 'GET', url: '/api/v1/breaches', cookie: cookies['nashi-admin'] })).json().breaches).toEqual([]);
    const all = await app.request({ method: 'GET', url: '/api/v1/breaches', cookie: cookies['br-admin'] });
    expect(all.json().breaches[0].customers).toHaveLength(2);
  });

  it('records the preliminary and final notices in order, by whom and when', async () => {
    const final = await notice({ customerId: a, stage: 'final' });
    expect(final.statusCode).toBe(409);
    expect(final.json().error.code).toBe('invalid_transition');
    expect((await notice({ customerId: a, stage: 'preliminary', at: '2026-11-24T00:20:00Z' })).statusCode).toBe(400);
    expect((await notice({ customerId: a, stage: 'preliminary', at: '2026-11-25T00:00:00Z' })).statusCode).toBe(400);
    expect((await notice({ customerId: c, stage: 'preliminary' })).statusCode).toBe(400);
    const ok = await notice({ customerId: a, stage: 'preliminary', at: '2026-11-24T00:50:00Z' });
    expect(ok.statusCode, ok.body).toBe(200);
    const ca = ok.json().breach.customers.find((x: { customerId: string }) => x.customerId === a);
    expect(ca.notices.preliminary).toEqual({ at: '2026-11-24T00:50:00.000Z', by: 'br-ops (operator)' });
    expect(ca.deadlines.preliminary.state).toBe('done');
    expect((await notice({ customerId: a, stage: 'preliminary' })).statusCode).toBe(409);
    expect((await notice({ customerId: a, stage: 'final', at: '2026-11-24T00:40:00Z' })).statusCode).toBe(400);
    const audit = await app.ctx.db.selectFrom('audit_log').select(['action']).where('subject_id', '=', breachId).orderBy('seq').execute();
    expect(audit.map((x) => x.action)).toEqual(['breach.marked', 'breach.updated', 'breach.preliminary_notice']);
  });

  it('reminds admins and operators by e-mail once before each deadline not yet met, through a real SMTP listener', async () => {
    const breachMails = () => smtp.received.filter((m) => m.subject.includes('個人データ漏えい等'));
    // One pass queues the reminders; a minute later the next delivery tick sends them.
    const tick = async () => {
      await app.ctx.queue.poll();
      app.clock.advance(61_000);
      await app.ctx.queue.poll();
    };
    await tick();
    expect(breachMails()).toEqual([]);
    // B's preliminary is due at the end of 27 Nov JST; the reminder comes 24 h before. A's is done.
    app.clock.set('2026-11-26T14:58:00Z');
    await tick();
    expect(breachMails()).toEqual([]);
    app.clock.set('2026-11-26T15:01:00Z');
    await tick();
    expect(breachMails().map((m) => m.to[0]).sort()).toEqual(['br-admin@provider.example.jp', 'br-ops@provider.example.jp']);
    const mail = breachMails()[0]!;
    expect(mail.subject).toContain('速報');
    expect(mail.text).toContain('momo 株式会社');
    expect(mail.text).toContain('2026年11月28日(土) 00:00 JST');
    app.clock.advance(5 * 60_000);
    await tick();
    app.clock.set('2026-11-28T00:00:00Z');
    await tick();
    expect(breachMails()).toHaveLength(2);
    await signInAll();
    const overdue = await app.request({ method: 'GET', url: `/api/v1/breaches/${breachId}`, cookie: cookies['br-ops'] });
    expect(overdue.json().breach.customers.find((x: { customerId: string }) => x.customerId === b).deadlines.preliminary.state).toBe('overdue');
    expect((await notice({ customerId: b, stage: 'preliminary' })).statusCode).toBe(200);
    // A's final (60 days) is due at the end of 22 Jan JST; the reminder comes 7 days before. B's a day later.
    app.clock.set('2027-01-15T15:01:00Z');
    await tick();
    const finals = () => breachMails().filter((m) => m.subject.includes('確報'));
    expect(finals()).toHaveLength(2);
    expect(finals()[0]!.text).toContain('kiku 株式会社');
    app.clock.set('2027-01-16T15:01:00Z');
    await tick();
    expect(finals()).toHaveLength(4);
    await signInAll();
    expect((await notice({ customerId: a, stage: 'final' })).statusCode).toBe(200);
    expect((await notice({ customerId: b, stage: 'final' })).statusCode).toBe(200);
    app.clock.set('2027-01-25T00:00:00Z');
    await tick();
    expect(breachMails()).toHaveLength(6);
    const keys = await app.ctx.db.selectFrom('outbound_emails').select(['dedupe_key', 'state']).where('dedupe_key', 'like', 'breach:%').execute();
    expect(keys).toHaveLength(6);
    expect(keys.every((k) => k.state === 'sent')).toBe(true);
  });
});
