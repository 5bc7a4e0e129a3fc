import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestMigration } from '../../src/backup/migration.js';
import { issueBreachNotice } from '../../src/contracts/contracts.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { openConsultation } from '../../src/terms/consultations.js';
import { createNotice, publishNotice } from '../../src/terms/notices.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

type Ids = { userId: string; customerId: string; contractId: string; tokenId: string; noticeId: string; recordId: string; fileId: string; requestId: string; termsNoticeId: string; consultationId: string };

/** A body that passes validation for each write route, so the walk tests access, not input checks. */
const SAMPLE_BODIES: Record<string, unknown> = {
  'POST /api/v1/auth/login': { loginId: 'x', password: 'y' },
  'POST /api/v1/auth/logout': {},
  'POST /api/v1/operators': { loginId: 'walker', displayName: 'w', email: 'w@example.jp', roles: ['admin'], password: TEST_PASSWORD },
  'POST /api/v1/customers': { code: 'walk', name: 'w', contactEmail: 'w@example.jp' },
  'POST /api/v1/customers/{customerId}/users': { loginId: 'walker2', displayName: 'w', email: 'w@example.jp', role: 'member', password: TEST_PASSWORD },
  'POST /api/v1/customers/{customerId}/api-tokens': { name: 'w' },
  'POST /api/v1/customers/{customerId}/contracts': { contractNumber: 'W-1', termStart: '2026-12-01', termEnd: '2027-11-30', systemUseContractNumber: 'SU-W', supportContractNumber: 'SP-W' },
  'POST /api/v1/contracts/{contractId}/suspend': { reason: 'unpaid_fees', note: 'x' },
  'POST /api/v1/contracts/{contractId}/resume': { note: 'x' },
  'POST /api/v1/contracts/{contractId}/termination-notice': { note: 'x' },
  'POST /api/v1/contracts/{contractId}/breach-notices': { description: 'x', cureDeadline: '2027-01-01T00:00:00+09:00' },
  'POST /api/v1/contracts/{contractId}/breach-notices/{noticeId}/cure': { note: 'x' },
  'POST /api/v1/contracts/{contractId}/terminate': { kind: 'immediate', ground: 'gross_breach', note: 'x' },
  'PUT /api/v1/contracts/{contractId}/linked-contracts/{linked}': { endDate: '2027-01-31', note: 'x' },
  'PUT /api/v1/contracts/{contractId}/term': { termEnd: '2028-03-31', note: 'x' },
  'PUT /api/v1/contracts/{contractId}/fee': { monthlyFeeYen: 1, note: 'x' },
  'POST /api/v1/data/collections/{collection}/records': { id: 'alpha-created', data: { x: 1 } },
  'PUT /api/v1/data/collections/{collection}/records/{id}': { data: { x: 2 } },
  'POST /api/v1/data/files': { raw: 'bytes' },
  'POST /api/v1/backups': { customerId: '{customerId}' },
  'POST /api/v1/backups/{backupId}/verify': { target: 'primary' },
  'POST /api/v1/backups/{backupId}/restore': { from: 'primary', confirmCustomerId: '{customerId}' },
  'POST /api/v1/backups/{backupId}/restore-jobs': { from: 'primary', confirmCustomerId: '{customerId}' },
  'POST /api/v1/backups/drills': { customerId: '{customerId}', target: 'primary' },
  'POST /api/v1/customers/{customerId}/migration-requests': { note: 'x' },
  'POST /api/v1/migration-requests/{requestId}/package': {},
  'POST /api/v1/migration-requests/{requestId}/delivered': { note: 'x' },
  'PUT /api/v1/billable-items/{itemId}/amount': { amountYen: 1 },
  'POST /api/v1/gateway/emergency': { on: true, reason: 'x' },
  'POST /api/v1/incidents': { title: 'x', severity: 'minor', occurredAt: '2026-11-24T00:00:00Z' },
  'POST /api/v1/incidents/{incidentId}/milestones': { milestone: 'first_notice' },
  'PUT /api/v1/incidents/{incidentId}/assessment': { entirelyUnusable: true, providerFault: true, exclusion: null, note: 'x' },
  'POST /api/v1/incidents/{incidentId}/breach': { kinds: ['leak'], status: 'suspected', unauthorisedPurpose: false, customers: [{ customerId: '{customerId}' }] },
  'PATCH /api/v1/breaches/{breachId}': { cause: 'x' },
  'POST /api/v1/breaches/{breachId}/notices': { customerId: '{customerId}', stage: 'preliminary' },
  'POST /api/v1/monitors': { kind: 'tcp', name: 'walk', host: '127.0.0.1', port: 9, intervalSeconds: 60, component: 'walk' },
  'PUT /api/v1/monitors/{monitorId}': { kind: 'tcp', name: 'walk', host: '127.0.0.1', port: 9, intervalSeconds: 60, component: 'walk' },
  'POST /api/v1/monitors/{monitorId}/heartbeat-token': {},
  'POST /api/v1/monitors/{monitorId}/heartbeat': { token: 'hkhb_walk' },
  'POST /api/v1/me/totp/enroll': {},
  // A wrong current password: the walk must never change the caller's own password.
  'POST /api/v1/me/password': { currentPassword: 'not the password', newPassword: 'a walk passphrase 2026' },
  'POST /api/v1/customers/{customerId}/users/{userId}/disable': { reason: 'x' },
  'POST /api/v1/customers/{customerId}/users/{userId}/enable': { reason: 'x' },
  'POST /api/v1/customers/{customerId}/users/{userId}/password': { newPassword: 'a walk passphrase 2026' },
  'POST /api/v1/operators/{userId}/disable': { reason: 'x' },
  'POST /api/v1/operators/{userId}/enable': { reason: 'x' },
  'POST /api/v1/operators/{userId}/password': { newPassword: 'a walk passphrase 2026' },
  'POST /api/v1/me/totp/confirm': { secret: 'A'.repeat(32), code: '123456' },
  'POST /api/v1/stops/planned': { reason: 'maintenance', description: 'x', startsAt: '2027-01-10T01:00:00+09:00', endsAt: '2027-01-10T05:00:00+09:00', customerIds: ['{customerId}'] },
  'POST /api/v1/stops/emergency': { cause: 'other', description: 'x', customerIds: ['{customerId}'] },
  'POST /api/v1/stops/{stopId}/end': { note: 'x' },
  'POST /api/v1/stops/{stopId}/cancel': { note: 'x' },
  'POST /api/v1/terms/versions': { edition: 'walk', effectiveDate: '2027-01-01', text: '第1条（適用）\n1. x' },
  'POST /api/v1/terms/versions/{versionId}/publish': {},
  'POST /api/v1/terms/notices': { channel: 'support_site', topic: 'fees', titleJa: 'x', bodyJa: 'x', effectiveAt: '2027-01-01T00:00:00+09:00' },
  'PUT /api/v1/terms/notices/{termsNoticeId}': { channel: 'support_site', topic: 'fees', titleJa: 'x', bodyJa: 'x', effectiveAt: '2027-01-01T00:00:00+09:00' },
  'POST /api/v1/terms/notices/{termsNoticeId}/publish': {},
  'POST /api/v1/customers/{customerId}/consultations': { changeKind: 'terms_version', changeId: '8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f', message: 'x' },
  'POST /api/v1/consultations/{consultationId}/messages': { message: 'x' },
  'POST /api/v1/consultations/{consultationId}/close': { note: 'x' },
  'POST /api/v1/hardware/samples': { samples: [{ at: '2026-11-24T01:00:00Z', cpuPercent: 1, memory: { usedBytes: 1, totalBytes: 2 }, load: { one: 0, five: 0, fifteen: 0 }, disks: [], diskIo: [], temperatures: { maxC: null, cpuC: null } }] },
  'POST /api/v1/hardware/hosts': { name: 'walk-host' },
  'PUT /api/v1/hardware/hosts/{hostId}': { name: 'walk-host-2' },
  'POST /api/v1/hardware/hosts/{hostId}/token': {},
  'POST /api/v1/hardware/rules': { name: 'x', metric: 'cpu_percent', comparison: '>', threshold: 90, severity: 'minor' },
  'PUT /api/v1/hardware/rules/{ruleId}': { name: 'x', metric: 'cpu_percent', comparison: '>', threshold: 90, severity: 'minor' },
  'POST /api/v1/rounds/checklists': { name: 'x', items: [{ key: 'a', label: 'A' }] },
  'PUT /api/v1/rounds/checklists/{checklistId}': { name: 'x', items: [{ key: 'a', label: 'A' }] },
  'POST /api/v1/rounds': { checklistId: '8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f', results: [{ itemKey: 'a', status: 'ok' }] },
  'POST /api/v1/customers/{customerId}/notice-contacts': { email: 'walk@example.jp', lang: 'ja' },
  'PUT /api/v1/customers/{customerId}/notice-contacts/{contactId}': { email: 'walk@example.jp', lang: 'en' },
  'POST /api/v1/status-components': { key: 'walk', name: { ja: 'x', en: 'x' } },
  'PUT /api/v1/status-components/{componentKey}': { name: { ja: 'x', en: 'x' } },
  'PUT /api/v1/incidents/{incidentId}/components': { components: [] },
  'PUT /api/v1/stops/{stopId}/components': { components: [] },
  'POST /api/v1/incidents/{incidentId}/notices': { stage: 'first' },
  'POST /api/v1/incidents/{incidentId}/notices/preview': { stage: 'first' },
  'POST /api/v1/webhooks': { url: 'https://hooks.example.jp/walk' },
  'PUT /api/v1/webhooks/{webhookId}/active': { active: false },
};
const SAMPLE_HEADERS: Record<string, Record<string, string>> = {
  'PUT /api/v1/data/collections/{collection}/records/{id}': { 'if-match': '"v1"' },
  'DELETE /api/v1/data/collections/{collection}/records/{id}': { 'if-match': '"v1"' },
};

describe.each(databaseKinds)('cross-customer isolation on %s', (kind) => {
  let app: TestApp;
  let own: Ids;
  let other: Ids;
  let routes: Array<{ method: string; path: string }>;
  const callers: Record<string, { cookie?: string; token?: string }> = {};

  beforeAll(async () => {
    app = await startTestApp(kind);
    const make = async (code: string): Promise<Ids> => {
      const { customer, contractId } = await addCustomerWithContract(app, code);
      const op = await addOperator(app, `${code}-op`, ['operator']);
      const { breachNotice } = await issueBreachNotice(app.ctx.db, app.clock, { ...systemActor('t'), id: op.id }, contractId, { description: 'x', cureDeadline: new Date('2027-01-01T00:00:00Z') });
      await addCustomerUser(app, customer.id, `${code}-admin`, 'customer_admin');
      const staff = await addCustomerUser(app, customer.id, `${code}-staff`, 'member');
      const cookie = await app.signIn(`${code}-admin`);
      const t = await app.request({ method: 'POST', url: `/api/v1/customers/${customer.id}/api-tokens`, cookie, payload: { name: 'soft' } });
      const token = t.json().token as string;
      const recordId = `${code}-rec-1`;
      await app.request({ method: 'POST', url: '/api/v1/data/collections/walk/records', token, payload: { id: recordId, data: { owner: code } } });
      const f = await app.request({ method: 'POST', url: `/api/v1/data/files?name=${code}.txt`, token, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from(`${code} file`) });
      const migration = await requestMigration(app.ctx.db, app.clock, systemActor('t'), customer.id, 'walk');
      // A notice addressed to this customer alone, and the consultation its admin opened about it.
      const notice = await createNotice(app.ctx.db, app.clock, systemActor('t'), { channel: 'support_site', topic: 'fees', titleJa: `${code} notice`, bodyJa: 'x', effectiveAt: app.clock.now(), customerIds: [customer.id] });
      await publishNotice(app.ctx.db, app.clock, systemActor('t'), notice.id);
      const admin = (await app.ctx.db.selectFrom('users').select(['id', 'login_id']).where('login_id', '=', `${code}-admin`).executeTakeFirstOrThrow());
      const consultation = await openConsultation(app.ctx.db, app.clock, { kind: 'customer_user', id: admin.id, label: admin.login_id }, { customerId: customer.id, changeKind: 'notice', changeId: notice.id, message: 'x' });
      return { userId: staff.id, customerId: customer.id, contractId, tokenId: t.json().apiToken.id, noticeId: breachNotice.id, recordId, fileId: f.json().file.id, requestId: migration.id, termsNoticeId: notice.id, consultationId: consultation.id };
    };
    own = await make('alpha');
    other = await make('bravo');
    callers['customer admin'] = { cookie: await app.signIn('alpha-admin') };
    callers['member'] = { cookie: await app.signIn('alpha-staff') };
    const token = await app.request({ method: 'POST', url: `/api/v1/customers/${own.customerId}/api-tokens`, cookie: callers['customer admin']!.cookie, payload: { name: 'walker' } });
    callers['API token'] = { token: token.json().token };
    const doc = (await app.request({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })));
  });
  afterAll(async () => app?.close());

  const fill = (path: string, ids: Ids) =>
    path
      .replace('{customerId}', ids.customerId)
      .replace('{userId}', ids.userId)
      .replace('{contractId}', ids.contractId)
      .replace('{tokenId}', ids.tokenId)
      .replace('{noticeId}', ids.noticeId)
      .replace('{linked}', 'support')
      .replace('{collection}', 'walk')
      .replace('{id}', ids.recordId)
      .replace('{fileId}', ids.fileId)
      .replace('{requestId}', ids.requestId)
      .replace('{backupId}', '5f2b7a52-3c1e-4d6f-9a8b-1c2d3e4f5a6b')
      .replace('{restoreJobId}', '6e3c8b63-4d2f-4e7a-8b9c-2d3e4f5a6b7c')
      .replace('{itemId}', '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d')
      .replace('{stopId}', '7b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e')
      .replace('{format}', 'json')
      .replace('{incidentId}', '7b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e')
      .replace('{breachId}', '8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f')
      .replace('{month}', '2026-11')
      .replace('{versionId}', '9d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a')
      .replace('{termsNoticeId}', ids.termsNoticeId)
      .replace('{consultationId}', ids.consultationId)
      .replace('{hostId}', '9d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a')
      .replace('{ruleId}', '0e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b')
      .replace('{checklistId}', '8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f')
      .replace('{monitorId}', '8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f')
      .replace('{contactId}', '8c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f')
      .replace('{componentKey}', 'walk')
      .replace('{webhookId}', '9d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a');

  it('the walk covers every route with a sample body for every write', () => {
    expect(routes.length).toBeGreaterThan(20);
    for (const r of routes) {
      if (r.method !== 'GET' && r.method !== 'DELETE') expect(SAMPLE_BODIES, `${r.method} ${r.path}`).toHaveProperty(`${r.method} ${r.path}`);
    }
  });

  it('a customer\'s own ids are readable (the walk is not vacuous)', async () => {
    for (const r of routes.filter((x) => x.method === 'GET' && x.path.includes('{contractId}'))) {
      const res = await app.request({ method: 'GET', url: fill(r.path, own), ...callers['customer admin'] });
      expect(res.statusCode, `${r.path}`).toBe(200);
    }
  });

  it.each(['customer admin', 'member', 'API token'])('every route refuses another customer\'s ids to a %s and leaks nothing of it', async (who) => {
    const leaks = [other.userId, other.customerId, other.contractId, other.tokenId, other.noticeId, other.fileId, other.requestId, other.termsNoticeId, other.consultationId, 'bravo'];
    for (const r of routes) {
      const url = fill(r.path, other);
      const sample = SAMPLE_BODIES[`${r.method} ${r.path}`];
      const body = sample === undefined ? undefined : JSON.parse(JSON.stringify(sample).replaceAll('{customerId}', other.customerId));
      const headers = SAMPLE_HEADERS[`${r.method} ${r.path}`] ?? {};
      const res = await app.request({ method: r.method as 'GET', url, headers, ...callers[who], ...(body !== undefined ? { payload: body as object } : {}) });
      const label = `${who}: ${r.method} ${r.path} → ${res.statusCode} ${res.body.slice(0, 200)}`;
      // A collection name alone is not another customer's id: those routes act in the caller's own space.
      if (r.path.replace('{collection}', '').includes('{')) {
        expect([401, 403, 404], label).toContain(res.statusCode);
        if (res.statusCode === 404) expect(res.json().error.code, label).toBe('not_found');
      } else {
        expect(res.statusCode, label).toBeLessThan(500);
      }
      const text = res.statusCode < 400 ? res.body : JSON.stringify(res.json().error.details);
      for (const s of leaks) expect(text.includes(s), `${label} leaks ${s}`).toBe(false);
    }
    // Nothing about the other customer changed.
    const b = await app.request({ method: 'GET', url: `/api/v1/contracts/${other.contractId}`, cookie: await app.signIn('bravo-admin') });
    expect(b.json().contract).toMatchObject({ status: 'active', scheduledEnd: null, version: 2 });
    const bravoToken = await app.request({ method: 'POST', url: `/api/v1/customers/${other.customerId}/api-tokens`, cookie: await app.signIn('bravo-admin'), payload: { name: 'check' } });
    const rec = await app.request({ method: 'GET', url: `/api/v1/data/collections/walk/records/${other.recordId}`, token: bravoToken.json().token });
    expect(rec.json().record).toMatchObject({ version: 1, data: { owner: 'bravo' } });
    const file = await app.request({ method: 'GET', url: `/api/v1/data/files/${other.fileId}/content`, token: bravoToken.json().token });
    expect(file.body).toBe('bravo file');
  });
});
