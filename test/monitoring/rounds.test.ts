import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailTransport, deliverDueEmails } from '../../src/notify/outbox.js';
import { ROUNDS_OVERDUE } from '../../src/monitoring/rounds-jobs.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener } from '../helpers/smtp.js';

const H = 3_600_000;

describe.each(databaseKinds)('R12.3③ visual rounds on %s', (kind) => {
  let app: TestApp;
  let smtp: TestSmtpListener;
  let ops: string;
  let checklistId: string;

  const deliver = async () => deliverDueEmails(app.ctx.db, app.clock, createMailTransport(smtp.url, 'hokan <noreply@hokan.test>'));
  const fresh = async () => {
    ops = await app.signIn('round-ops');
  };
  const post = (payload: object) => app.request({ method: 'POST', url: '/api/v1/rounds', cookie: ops, payload });
  const allOk = () => ['power', 'fans', 'cables'].map((itemKey) => ({ itemKey, status: 'ok' }));

  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T00:00:00Z', { HOKAN_SMTP_URL: smtp.url, HOKAN_ROUND_INTERVAL_HOURS: '24' });
    await addOperator(app, 'round-ops', ['operator']);
    await addOperator(app, 'round-support', ['support']);
    const { customer } = await addCustomerWithContract(app, 'rdcust');
    await addCustomerUser(app, customer.id, 'rdcust-admin', 'customer_admin');
    ops = await app.signIn('round-ops');
  });
  afterAll(async () => {
    await app?.close();
    await smtp?.stop();
  });

  it('R12.3③ a checklist is created and edited into versions with history; bad items refused', async () => {
    const dup = await app.request({ method: 'POST', url: '/api/v1/rounds/checklists', cookie: ops, payload: { name: 'x', items: [{ key: 'a', label: 'A' }, { key: 'a', label: 'B' }] } });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().error.details[0].path).toBe('items.1.key');
    const badKey = await app.request({ method: 'POST', url: '/api/v1/rounds/checklists', cookie: ops, payload: { name: 'x', items: [{ key: 'Bad Key', label: 'A' }] } });
    expect(badKey.json().error.details[0].path).toBe('body.items.0.key');
    // Names and labels go into e-mail subjects: one line each.
    const twoLines = await app.request({ method: 'POST', url: '/api/v1/rounds/checklists', cookie: ops, payload: { name: 'サーバ室\n日次', items: [{ key: 'a', label: 'A' }] } });
    expect(twoLines.statusCode).toBe(400);
    expect(twoLines.json().error.details[0].path).toBe('body.name');
    const created = await app.request({
      method: 'POST',
      url: '/api/v1/rounds/checklists',
      cookie: ops,
      payload: { name: 'サーバ室A 日次巡回', items: [{ key: 'power', label: '電源ランプ' }, { key: 'fans', label: 'ファン異音' }] },
    });
    expect(created.statusCode, created.body).toBe(201);
    checklistId = created.json().checklist.id;
    const edited = await app.request({
      method: 'PUT',
      url: `/api/v1/rounds/checklists/${checklistId}`,
      cookie: ops,
      payload: { name: 'サーバ室A 日次巡回', items: [{ key: 'power', label: '電源ランプ' }, { key: 'fans', label: 'ファン異音' }, { key: 'cables', label: 'ケーブル抜け・損傷', description: '背面を確認' }], note: 'ケーブル点検を追加' },
    });
    expect(edited.json().checklist).toMatchObject({ version: 2, intervalHours: null });
    const got = (await app.request({ method: 'GET', url: `/api/v1/rounds/checklists/${checklistId}`, cookie: ops })).json().checklist;
    expect(got.versions.map((v: { version: number; items: unknown[] }) => [v.version, v.items.length])).toEqual([[2, 3], [1, 2]]);
    expect(got.versions[0].note).toBe('ケーブル点検を追加');
    const audit = await app.ctx.db.selectFrom('audit_log').select('action').where('subject_id', '=', checklistId).execute();
    expect(audit.map((a) => a.action)).toEqual(['round.checklist_created', 'round.checklist_updated']);
    // Customers see nothing of it; support may read but not write.
    expect((await app.request({ method: 'GET', url: '/api/v1/rounds/checklists', cookie: await app.signIn('rdcust-admin') })).statusCode).toBe(403);
    const support = await app.signIn('round-support');
    expect((await app.request({ method: 'GET', url: '/api/v1/rounds/checklists', cookie: support })).statusCode).toBe(200);
    expect((await app.request({ method: 'POST', url: '/api/v1/rounds', cookie: support, payload: { checklistId, results: allOk() } })).statusCode).toBe(403);
  });

  it('R12.3③ a round must answer every item once, a finding needs a note; nothing is stored on refusal', async () => {
    const expectField = async (payload: object, path: string) => {
      const res = await post(payload);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.details[0].path).toBe(path);
    };
    await expectField({ checklistId, results: allOk().slice(0, 2) }, 'results');
    await expectField({ checklistId, results: [...allOk(), { itemKey: 'doors', status: 'ok' }] }, 'results.3.itemKey');
    await expectField({ checklistId, results: [...allOk(), { itemKey: 'fans', status: 'ok' }] }, 'results.3.itemKey');
    await expectField({ checklistId, results: [allOk()[0], { itemKey: 'fans', status: 'finding' }, allOk()[2]] }, 'results.1.note');
    await expectField({ checklistId, results: [{ ...allOk()[0], incident: { severity: 'minor' } }, ...allOk().slice(1)] }, 'results.0.incident');
    await expectField({ checklistId, results: [{ itemKey: 'power', status: 'broken' }, ...allOk().slice(1)] }, 'body.results.0.status');
    await expectField({ checklistId, performedAt: '2026-11-25T00:00:00Z', results: allOk() }, 'performedAt');
    await expectField({ checklistId, performedAt: '2026-11-01T00:00:00Z', results: allOk() }, 'performedAt');
    expect((await post({ checklistId: '5f2b7a52-3c1e-4d6f-9a8b-1c2d3e4f5a6b', results: allOk() })).statusCode).toBe(404);
    expect(await app.ctx.db.selectFrom('rounds').select('id').execute()).toEqual([]);
  });

  it('R12.3③ a finding opens an incident, linked from the round', async () => {
    app.clock.set('2026-11-24T09:00:00Z');
    await fresh();
    const res = await post({
      checklistId,
      results: [
        { itemKey: 'power', status: 'ok' },
        { itemKey: 'fans', status: 'finding', note: 'ラック3のファンから異音', incident: { severity: 'major' } },
        { itemKey: 'cables', status: 'finding', note: '結束バンドが緩い（軽微）' },
      ],
    });
    expect(res.statusCode, res.body).toBe(201);
    const round = res.json().round;
    expect(round).toMatchObject({ checklistVersion: 2, findings: 2, performedAt: '2026-11-24T09:00:00.000Z' });
    const fans = round.results.find((r: { itemKey: string }) => r.itemKey === 'fans');
    const cables = round.results.find((r: { itemKey: string }) => r.itemKey === 'cables');
    expect(cables.incidentId).toBeNull();
    const incident = (await app.request({ method: 'GET', url: `/api/v1/incidents/${fans.incidentId}`, cookie: ops })).json().incident;
    expect(incident).toMatchObject({ severity: 'major', times: { occurred: '2026-11-24T09:00:00.000Z', detected: '2026-11-24T09:00:00.000Z' } });
    expect(incident.title).toContain('ファン異音');
    expect(await app.ctx.db.selectFrom('incidents').select('id').execute()).toHaveLength(1);
    const listed = (await app.request({ method: 'GET', url: `/api/v1/rounds?checklistId=${checklistId}`, cookie: ops })).json().rounds;
    expect(listed).toHaveLength(1);
    expect(listed[0].results.find((r: { itemKey: string }) => r.itemKey === 'fans').incidentId).toBe(fans.incidentId);
  });

  it('R12.3③ an overdue round e-mails the operators once per overdue period; recording a round clears it', async () => {
    smtp.received.length = 0;
    const due = async () => (await app.request({ method: 'GET', url: '/api/v1/rounds/due', cookie: ops })).json().rounds.find((r: { checklistId: string }) => r.checklistId === checklistId);
    expect(await due()).toMatchObject({ overdue: false, dueAt: '2026-11-25T09:00:00.000Z', intervalHours: 24 });
    expect(app.ctx.queue.schedules.map((s) => s.name)).toContain(ROUNDS_OVERDUE);
    app.clock.set('2026-11-25T08:59:00Z');
    await app.ctx.queue.poll();
    await deliver();
    const overdueMails = () => smtp.received.filter((m) => m.subject.includes('目視巡回が期限切れ'));
    expect(overdueMails()).toEqual([]);
    app.clock.set('2026-11-25T09:05:00Z');
    await fresh();
    expect(await due()).toMatchObject({ overdue: true, overduePeriod: 1 });
    await app.ctx.queue.poll();
    app.clock.set('2026-11-25T09:10:00Z');
    await app.ctx.queue.poll();
    app.clock.set('2026-11-25T15:00:00Z');
    await app.ctx.queue.poll();
    await deliver();
    expect(overdueMails().map((m) => m.to[0])).toEqual(['round-ops@provider.example.jp']);
    expect(overdueMails()[0]!.text).toContain('2026年11月25日');
    // Still not done a whole interval later: one reminder for the next period.
    app.clock.set('2026-11-26T09:06:00Z');
    await app.ctx.queue.poll();
    app.clock.set('2026-11-26T12:00:00Z');
    await app.ctx.queue.poll();
    await deliver();
    expect(overdueMails()).toHaveLength(2);
    await fresh();
    expect((await post({ checklistId, results: allOk() })).statusCode).toBe(201);
    expect(await due()).toMatchObject({ overdue: false, dueAt: '2026-11-27T12:00:00.000Z', lastRoundAt: '2026-11-26T12:00:00.000Z' });
    app.clock.set('2026-11-27T11:00:00Z');
    await app.ctx.queue.poll();
    await deliver();
    expect(overdueMails()).toHaveLength(2);
    // A checklist may set its own interval.
    await fresh();
    await app.request({ method: 'PUT', url: `/api/v1/rounds/checklists/${checklistId}`, cookie: ops, payload: { name: 'サーバ室A 巡回', intervalHours: 8, items: [{ key: 'power', label: '電源ランプ' }, { key: 'fans', label: 'ファン異音' }, { key: 'cables', label: 'ケーブル' }], note: '8時間ごとに変更' } });
    expect(await due()).toMatchObject({ overdue: true, intervalHours: 8, dueAt: '2026-11-26T20:00:00.000Z' });
  });
});
