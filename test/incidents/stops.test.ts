import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit, verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { activeStopFor } from '../../src/incidents/stops.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

const DAY = 86_400_000;
const at = (base: string, days: number, hours = 0) => new Date(new Date(base).getTime() + days * DAY + hours * 3_600_000).toISOString();

describe.each(databaseKinds)('R7.2–R7.4 service stops on %s', (kind) => {
  let app: TestApp;
  let a: { customerId: string; token: string; admin: string };
  let b: { customerId: string; token: string; admin: string };
  let adminCookie: string;
  let operatorCookie: string;

  const customer = async (code: string) => {
    const { customer: c } = await addCustomerWithContract(app, code);
    await addCustomerUser(app, c.id, `${code}-admin`, 'customer_admin');
    const admin = await app.signIn(`${code}-admin`);
    const t = await app.request({ method: 'POST', url: `/api/v1/customers/${c.id}/api-tokens`, cookie: admin, payload: { name: 'care-software' } });
    return { customerId: c.id, token: t.json().token as string, admin };
  };

  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-24T01:00:00Z');
    a = await customer('stopa');
    b = await customer('stopb');
    await addOperator(app, 'stop-admin', ['admin']);
    await addOperator(app, 'stop-op', ['operator']);
    adminCookie = await app.signIn('stop-admin');
    operatorCookie = await app.signIn('stop-op');
  });
  afterAll(async () => app?.close());

  /** Moves the clock; sessions last hours, so everyone signs in again at the new time. */
  const setClock = async (t: string) => {
    app.clock.set(t);
    adminCookie = await app.signIn('stop-admin');
    operatorCookie = await app.signIn('stop-op');
    a.admin = await app.signIn('stopa-admin');
    b.admin = await app.signIn('stopb-admin');
  };

  const planned = (cookie: string, body: Record<string, unknown>) =>
    app.request({ method: 'POST', url: '/api/v1/stops/planned', cookie, payload: { reason: 'maintenance', description: 'サーバー機器の定期保守', ...body } });
  const data = (who: { token: string }) => app.request({ method: 'GET', url: '/api/v1/data/collections', token: who.token });

  it('R7.2 accepts 15 days of notice; 13 days only with an admin override whose reason is recorded', async () => {
    const base = '2027-01-01T00:00:00Z';
    await setClock(base);
    const ok = await planned(operatorCookie, { startsAt: at(base, 15), endsAt: at(base, 15, 4), customerIds: [a.customerId] });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json().stop).toMatchObject({ kind: 'planned', reason: 'maintenance', reasonLabel: { ja: '①保守', en: '① maintenance' }, state: 'scheduled', announcedAt: new Date(base).toISOString(), overrideReason: null, scope: { allCustomers: false, customerIds: [a.customerId] } });

    const short = { startsAt: at(base, 13), endsAt: at(base, 13, 4), customerIds: [a.customerId] };
    const refused = await planned(adminCookie, short);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('notice_too_short');
    expect(refused.json().error.message.ja).toContain('14日前までに通知が必要');

    const byOperator = await planned(operatorCookie, { ...short, override: { reason: '脆弱性対応のため' } });
    expect(byOperator.statusCode).toBe(403);

    const overridden = await planned(adminCookie, { ...short, override: { reason: '脆弱性対応のため' } });
    expect(overridden.statusCode, overridden.body).toBe(201);
    const stop = overridden.json().stop;
    expect(stop.overrideReason).toBe('脆弱性対応のため');
    const audit = await listAudit(app.ctx.db, { subjectType: 'service_stop', subjectId: stop.id });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'stop.planned_scheduled', actor: { kind: 'operator' }, reason: 'short notice override: 脆弱性対応のため', details: { override: true, minLeadDays: 14 } });
  });

  it('R7.2 refuses an end before the start, a start in the past, an overlap and unknown customers', async () => {
    const base = '2027-02-01T00:00:00Z';
    await setClock(base);
    const backwards = await planned(adminCookie, { startsAt: at(base, 20, 4), endsAt: at(base, 20) });
    expect(backwards.statusCode).toBe(400);
    expect(backwards.json().error).toMatchObject({ code: 'validation_failed', details: [{ path: 'endsAt' }] });

    const past = await planned(adminCookie, { startsAt: at(base, -1), endsAt: at(base, -1, 4), override: { reason: 'x' } });
    expect(past.statusCode).toBe(400);
    expect(past.json().error.code).toBe('deadline_in_past');

    const first = await planned(adminCookie, { startsAt: at(base, 20), endsAt: at(base, 20, 4), customerIds: [a.customerId] });
    expect(first.statusCode).toBe(201);
    const clash = await planned(adminCookie, { startsAt: at(base, 20, 3), endsAt: at(base, 20, 6) });
    expect(clash.statusCode).toBe(409);
    expect(clash.json().error.code).toBe('conflict');
    expect(clash.json().error.message.en).toContain(first.json().stop.id);
    // Another customer's scope does not overlap.
    const other = await planned(adminCookie, { startsAt: at(base, 20, 3), endsAt: at(base, 20, 6), customerIds: [b.customerId] });
    expect(other.statusCode).toBe(201);

    const unknown = await planned(adminCookie, { startsAt: at(base, 25), endsAt: at(base, 25, 4), customerIds: [a.customerId, '0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e'] });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error).toMatchObject({ code: 'validation_failed', details: [{ path: 'customerIds', message: 'unknown customer 0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e' }] });

    const asCustomer = await planned(a.admin, { startsAt: at(base, 26), endsAt: at(base, 26, 4) });
    expect(asCustomer.statusCode).toBe(403);
  });

  it('R7.4 during a planned stop the data API answers 503 with Retry-After and what the stop is; before and after, 200', async () => {
    const base = '2027-03-01T00:00:00Z';
    await setClock(base);
    // 2027-03-17 01:00–05:00 JST
    const res = await planned(adminCookie, { startsAt: '2027-03-16T16:00:00Z', endsAt: '2027-03-16T20:00:00Z', customerIds: [a.customerId] });
    expect(res.statusCode).toBe(201);
    const stopId = res.json().stop.id as string;

    await setClock('2027-03-16T15:59:59Z');
    expect((await data(a)).statusCode).toBe(200);

    await setClock('2027-03-16T17:00:00Z');
    const during = await data(a);
    expect(during.statusCode).toBe(503);
    expect(during.headers['retry-after']).toBe('10800');
    const err = during.json().error;
    expect(err.code).toBe('service_unavailable');
    expect(err.message.ja).toContain('計画停止中です（理由: ①保守）。2027年3月17日(水) 01:00 〜 05:00 JST');
    expect(err.message.ja).toContain('サーバー機器の定期保守');
    expect(err.message.en).toContain('planned work (reason: ① maintenance)');
    expect(err.details).toEqual([{ path: 'stop', message: stopId }]);
    expect((await activeStopFor(app.ctx.db, app.clock, a.customerId))?.id).toBe(stopId);

    // Scoped to customer a: customer b is not touched, and does not see it.
    expect((await data(b)).statusCode).toBe(200);
    const bList = await app.request({ method: 'GET', url: '/api/v1/stops', cookie: b.admin });
    expect(bList.json().stops.map((s: { id: string }) => s.id)).not.toContain(stopId);
    const aList = await app.request({ method: 'GET', url: '/api/v1/stops', cookie: a.admin });
    expect(aList.json().stops.find((s: { id: string }) => s.id === stopId)).toMatchObject({ state: 'in_progress', scope: { customerIds: [a.customerId] } });

    await setClock('2027-03-16T20:00:00Z');
    expect((await data(a)).statusCode).toBe(200);
    expect(await activeStopFor(app.ctx.db, app.clock, a.customerId)).toBeNull();
  });

  it('R7.3 an emergency stop is linked to the incident behind it; an unknown incident is refused, nothing written', async () => {
    await setClock('2027-05-01T00:00:00Z');
    const opened = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: operatorCookie, payload: { title: '電源設備の故障', severity: 'critical', occurredAt: '2027-05-01T08:50:00+09:00' } });
    expect(opened.statusCode, opened.body).toBe(201);
    const incidentId = opened.json().incident.id as string;
    const before = (await app.request({ method: 'GET', url: '/api/v1/stops', cookie: operatorCookie })).json().stops.length;
    const unknown = await app.request({ method: 'POST', url: '/api/v1/stops/emergency', cookie: operatorCookie, payload: { cause: 'disaster', description: '停電', incidentId: '0b6f6a3e-8c8d-4f0e-9a1b-2c3d4e5f6a7b' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.details[0].path).toBe('incidentId');
    expect((await app.request({ method: 'GET', url: '/api/v1/stops', cookie: operatorCookie })).json().stops.length).toBe(before);
    const res = await app.request({ method: 'POST', url: '/api/v1/stops/emergency', cookie: operatorCookie, payload: { cause: 'disaster', description: '停電のため停止しています', incidentId } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().stop).toMatchObject({ kind: 'emergency', incidentId });
    const end = await app.request({ method: 'POST', url: `/api/v1/stops/${res.json().stop.id}/end`, cookie: operatorCookie, payload: { note: '復旧' } });
    expect(end.json().stop.incidentId).toBe(incidentId);
  });

  it('R7.3 an emergency stop applies at once to every customer, and its end restores service', async () => {
    await setClock('2027-04-01T00:00:00Z');
    const res = await app.request({ method: 'POST', url: '/api/v1/stops/emergency', cookie: operatorCookie, payload: { cause: 'attack', description: '不正アクセスを検知したため停止しています' } });
    expect(res.statusCode, res.body).toBe(201);
    const stop = res.json().stop;
    expect(stop).toMatchObject({ kind: 'emergency', state: 'in_progress', endsAt: null, scope: { allCustomers: true } });
    for (const who of [a, b]) {
      const r = await data(who);
      expect(r.statusCode).toBe(503);
      expect(r.headers['retry-after']).toBe('600');
      expect(r.json().error.message.ja).toContain('緊急停止中です（原因: ③不正アクセス・攻撃・傍受）');
      expect(r.json().error.message.ja).toContain('不正アクセスを検知したため停止しています');
    }
    const cancel = await app.request({ method: 'POST', url: `/api/v1/stops/${stop.id}/cancel`, cookie: operatorCookie, payload: { note: 'x' } });
    expect(cancel.statusCode).toBe(409);

    app.clock.advance(3_600_000);
    const end = await app.request({ method: 'POST', url: `/api/v1/stops/${stop.id}/end`, cookie: operatorCookie, payload: { note: '復旧を確認' } });
    expect(end.statusCode, end.body).toBe(200);
    expect(end.json().stop).toMatchObject({ state: 'ended', endsAt: '2027-04-01T01:00:00.000Z' });
    expect((await data(a)).statusCode).toBe(200);
    expect((await data(b)).statusCode).toBe(200);
    const again = await app.request({ method: 'POST', url: `/api/v1/stops/${stop.id}/end`, cookie: operatorCookie, payload: { note: 'x' } });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('invalid_transition');
    const audit = await listAudit(app.ctx.db, { subjectType: 'service_stop', subjectId: stop.id });
    expect(audit.map((e) => e.action)).toEqual(['stop.emergency_started', 'stop.ended']);
    expect(audit[1]!.reason).toBe('復旧を確認');
  });

  it('a planned stop can be cancelled before it starts, not after; ending it early restores service', async () => {
    const base = '2027-05-01T00:00:00Z';
    await setClock(base);
    const first = (await planned(adminCookie, { startsAt: at(base, 20), endsAt: at(base, 20, 4), customerIds: [a.customerId] })).json().stop;
    const cancel = await app.request({ method: 'POST', url: `/api/v1/stops/${first.id}/cancel`, cookie: operatorCookie, payload: { note: '作業延期' } });
    expect(cancel.statusCode, cancel.body).toBe(200);
    expect(cancel.json().stop).toMatchObject({ state: 'cancelled' });
    const early = await app.request({ method: 'POST', url: `/api/v1/stops/${first.id}/end`, cookie: operatorCookie, payload: { note: 'x' } });
    expect(early.statusCode).toBe(409);

    // The cancelled stop no longer blocks its period, nor the data API.
    const second = (await planned(adminCookie, { startsAt: at(base, 20, 1), endsAt: at(base, 20, 3), customerIds: [a.customerId] })).json().stop;
    await setClock(at(base, 20, 0.5));
    expect((await data(a)).statusCode).toBe(200);
    await setClock(at(base, 20, 2));
    expect((await data(a)).statusCode).toBe(503);
    const late = await app.request({ method: 'POST', url: `/api/v1/stops/${second.id}/cancel`, cookie: operatorCookie, payload: { note: 'x' } });
    expect(late.statusCode).toBe(409);
    expect(late.json().error.code).toBe('invalid_transition');
    const end = await app.request({ method: 'POST', url: `/api/v1/stops/${second.id}/end`, cookie: operatorCookie, payload: { note: '作業完了' } });
    expect(end.statusCode).toBe(200);
    expect((await data(a)).statusCode).toBe(200);

    const missing = await app.request({ method: 'POST', url: '/api/v1/stops/0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e/cancel', cookie: operatorCookie, payload: { note: 'x' } });
    expect(missing.statusCode).toBe(404);
    const asCustomer = await app.request({ method: 'POST', url: `/api/v1/stops/${second.id}/end`, cookie: a.admin, payload: { note: 'x' } });
    expect(asCustomer.statusCode).toBe(403);
  });

  it('every change is in the audit log, and the chain holds', async () => {
    const audit = await listAudit(app.ctx.db, { subjectType: 'service_stop', limit: 1000 });
    const count = (action: string) => audit.filter((e) => e.action === action).length;
    // Scheduled: 2 (lead time) + 2 (refusals) + 1 (R7.4) + 2 (cancel); refused requests left nothing.
    expect(count('stop.planned_scheduled')).toBe(7);
    expect(count('stop.emergency_started')).toBe(2);
    expect(count('stop.ended')).toBe(3);
    expect(count('stop.cancelled')).toBe(1);
    const stops = (await app.request({ method: 'GET', url: '/api/v1/stops', cookie: operatorCookie })).json().stops as Array<{ id: string }>;
    expect(stops).toHaveLength(9);
    for (const s of stops) expect(audit.some((e) => e.subjectId === s.id)).toBe(true);
    expect((await verifyAuditChain(app.ctx.db)).ok).toBe(true);
  });
});
