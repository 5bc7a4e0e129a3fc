import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liability, slaStatus } from '../../src/incidents/incidents.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

const H = 3_600_000;
const at = (h: number) => new Date(Date.parse('2026-11-24T00:00:00Z') + h * H);

describe('R8.3 SLA clocks and R20 liability (pure rules)', () => {
  it('detection within 1 h and restoration within 24 h of occurrence, with alerts at 12 h and 20 h', () => {
    expect(slaStatus({ occurred_at: at(0), detected_at: at(0.5), recovered_at: null }, at(13))).toMatchObject({ detection: { state: 'met', minutes: 30 }, restoration: { state: 'running', alertsDue: [12] } });
    expect(slaStatus({ occurred_at: at(0), detected_at: at(1.5), recovered_at: null }, at(21)).restoration.alertsDue).toEqual([12, 20]);
    expect(slaStatus({ occurred_at: at(0), detected_at: at(1.5), recovered_at: at(23) }, at(30))).toMatchObject({ detection: { state: 'breached' }, restoration: { state: 'met', alertsDue: [] } });
    expect(slaStatus({ occurred_at: at(0), detected_at: at(0), recovered_at: null }, at(25)).restoration.state).toBe('breached');
  });

  it('liable only if entirely unusable through the provider\'s fault for 24 h from when it learned, with no exclusion; reasons shown', () => {
    const base = { detected_at: at(2), recovered_at: at(27), entirely_unusable: true, provider_fault: true, exclusion: null };
    expect(liability(base, at(30)).liable).toBe(true);
    // 25 h after occurrence but only 23 h after the provider learned of it.
    expect(liability({ ...base, detected_at: at(4) }, at(30)).liable).toBe(false);
    expect(liability({ ...base, entirely_unusable: false }, at(30)).liable).toBe(false);
    expect(liability({ ...base, provider_fault: false }, at(30)).liable).toBe(false);
    const excluded = liability({ ...base, exclusion: 'third_party_attack' }, at(30));
    expect(excluded.liable).toBe(false);
    expect(excluded.reasons.map((r) => r.ja).join()).toContain('⑦');
    expect(liability({ ...base, recovered_at: null }, at(10)).liable).toBe('pending');
  });
});

describe.each(databaseKinds)('incidents over HTTP on %s', (kind) => {
  let app: TestApp;
  let ops: string;
  let admin: string;
  let a: string;
  let bCookie: string;
  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-24T10:00:00Z');
    await addOperator(app, 'inc-ops', ['operator']);
    await addOperator(app, 'inc-admin', ['admin']);
    const ca = await addCustomerWithContract(app, 'kiri');
    const cb = await addCustomerWithContract(app, 'yuzu');
    a = ca.customer.id;
    await addCustomerUser(app, cb.customer.id, 'yuzu-admin', 'customer_admin');
    ops = await app.signIn('inc-ops');
    admin = await app.signIn('inc-admin');
    bCookie = await app.signIn('yuzu-admin');
  });
  afterAll(async () => app?.close());

  it('opens an incident, records milestones in order, refuses bad times, and shows SLA and liability', async () => {
    const bad = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: ops, payload: { title: 'x', severity: 'major', occurredAt: '2026-11-24T09:00:00Z', detectedAt: '2026-11-24T08:00:00Z' } });
    expect(bad.statusCode).toBe(400);
    const opened = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: ops, payload: { title: 'ストレージ障害', severity: 'critical', cause: 'environment_failure', occurredAt: '2026-11-24T09:20:00Z', customerIds: [a], entirelyUnusable: true } });
    expect(opened.statusCode).toBe(201);
    const inc = opened.json().incident;
    expect(inc.sla.detection).toEqual({ targetMinutes: 60, minutes: 40, state: 'met' });
    const early = await app.request({ method: 'POST', url: `/api/v1/incidents/${inc.id}/milestones`, cookie: ops, payload: { milestone: 'recovery_notice' } });
    expect(early.statusCode).toBe(409);
    expect((await app.request({ method: 'POST', url: `/api/v1/incidents/${inc.id}/milestones`, cookie: ops, payload: { milestone: 'first_notice' } })).statusCode).toBe(200);
    expect((await app.request({ method: 'POST', url: `/api/v1/incidents/${inc.id}/milestones`, cookie: ops, payload: { milestone: 'first_notice' } })).statusCode).toBe(409);
    app.clock.advance(26 * H);
    // Sessions last 12 h: sign in again after the clock moved on.
    ops = await app.signIn('inc-ops');
    admin = await app.signIn('inc-admin');
    bCookie = await app.signIn('yuzu-admin');
    const now = await app.request({ method: 'GET', url: `/api/v1/incidents/${inc.id}`, cookie: ops });
    expect(now.json().incident.sla.restoration).toMatchObject({ state: 'breached', alertsDue: [12, 20] });
    const rec = await app.request({ method: 'POST', url: `/api/v1/incidents/${inc.id}/milestones`, cookie: ops, payload: { milestone: 'recovered' } });
    expect(rec.json().incident.liability.liable).toBe(true);
    const assessed = await app.request({ method: 'PUT', url: `/api/v1/incidents/${inc.id}/assessment`, cookie: admin, payload: { entirelyUnusable: true, providerFault: true, exclusion: 'force_majeure', note: '地震による' } });
    expect(assessed.json().incident.liability.liable).toBe(false);
    expect((await app.request({ method: 'PUT', url: `/api/v1/incidents/${inc.id}/assessment`, cookie: ops, payload: { entirelyUnusable: true, providerFault: true, exclusion: null, note: 'x' } })).statusCode).toBe(403);
    // Another customer does not see an incident that did not touch it.
    expect((await app.request({ method: 'GET', url: `/api/v1/incidents/${inc.id}`, cookie: bCookie })).statusCode).toBe(404);
    expect((await app.request({ method: 'GET', url: '/api/v1/incidents', cookie: bCookie })).json().incidents).toEqual([]);
  });
});

describe.each(databaseKinds)('R8.3 operators are alerted at 12 h and 20 h on %s', (kind) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-24T00:00:00Z');
    await addOperator(app, 'alert-ops', ['operator']);
    await addOperator(app, 'alert-bill', ['billing']);
  });
  afterAll(async () => app?.close());

  it('queues one alert e-mail per operator per threshold while the incident is unresolved, none after recovery', async () => {
    const cookie = await app.signIn('alert-ops');
    const inc = (await app.request({ method: 'POST', url: '/api/v1/incidents', cookie, payload: { title: 'DB障害', severity: 'critical', occurredAt: '2026-11-24T00:00:00Z' } })).json().incident;
    const alerts = () => app.ctx.db.selectFrom('outbound_emails').select(['to_address', 'subject']).where('subject', 'like', '%障害発生から%').execute();
    app.clock.set('2026-11-24T11:59:00Z');
    await app.ctx.queue.poll();
    expect(await alerts()).toEqual([]);
    app.clock.set('2026-11-24T12:00:30Z');
    await app.ctx.queue.poll();
    await app.ctx.queue.poll();
    const first = await alerts();
    expect(first.map((a) => a.to_address)).toEqual(['alert-ops@provider.example.jp']);
    expect(first[0]!.subject).toContain('12時間');
    app.clock.set('2026-11-24T20:00:30Z');
    await app.ctx.queue.poll();
    expect((await alerts()).map((a) => a.subject.slice(0, 20)).sort()).toHaveLength(2);
    const again = await app.signIn('alert-ops');
    await app.request({ method: 'POST', url: `/api/v1/incidents/${inc.id}/milestones`, cookie: again, payload: { milestone: 'recovered' } });
    app.clock.set('2026-11-24T23:00:00Z');
    await app.ctx.queue.poll();
    expect(await alerts()).toHaveLength(2);
  });
});
