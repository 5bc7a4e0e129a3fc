import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener } from '../helpers/smtp.js';
import { TestTcpServer } from '../monitoring/servers.js';
import { statusSnapshot } from '../../src/notify/status-snapshot.js';

const S = 1000;

describe.each(databaseKinds)('R8.1 automatic first notice of a monitor-opened incident on %s', (kind) => {
  let app: TestApp;
  let smtp: TestSmtpListener;
  let service: TestTcpServer;
  let ops: string;
  let customerEmail: string;

  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_SMTP_URL: smtp.url, HOKAN_PUBLIC_URL: 'https://status.example.jp' });
    await addOperator(app, 'afn-ops', ['operator']);
    const { customer } = await addCustomerWithContract(app, 'kaede');
    customerEmail = customer.contactEmail;
    ops = await app.signIn('afn-ops');
    service = new TestTcpServer();
    await service.start();
  });
  afterAll(async () => {
    await service?.stop();
    await app?.close();
    await smtp?.stop();
  });

  it('R8.1 R8.3 the monitor opens the incident and the first notice (fact only) is on the status page and arrives by e-mail, once', async () => {
    const comp = await app.request({ method: 'POST', url: '/api/v1/status-components', cookie: ops, payload: { key: 'care-api', name: { ja: '介護記録API', en: 'Care records API' } } });
    expect(comp.statusCode).toBe(201);
    const created = await app.request({ method: 'POST', url: '/api/v1/monitors', cookie: ops, payload: { kind: 'tcp', name: 'care-api', host: '127.0.0.1', port: service.port, intervalSeconds: 30, retryIntervalSeconds: 10, retries: 1, timeoutMs: 1000, component: 'care-api', severity: 'major' } });
    expect(created.statusCode).toBe(201);
    const monitors = app.ctx.monitors!;
    await monitors.runDueChecks();
    await service.stop();
    app.clock.advance(30 * S);
    await monitors.runDueChecks();
    app.clock.advance(10 * S);
    const run = await monitors.runDueChecks();
    expect(run.opened).toHaveLength(1);
    const incidentId = run.opened[0]!;

    const notices = await app.request({ method: 'GET', url: `/api/v1/incidents/${incidentId}/notices`, cookie: ops });
    expect(notices.statusCode).toBe(200);
    const posts = notices.json().notices as Array<{ stage: string }>;
    expect(posts.map((p) => p.stage)).toEqual(['first']);

    const snap = await statusSnapshot(app.ctx.db, app.ctx.clock);
    const active = snap.activeIncidents.find((i) => i.id === incidentId);
    expect(active?.components).toEqual(['care-api']);
    expect(active?.posts.map((p) => p.label.ja)).toEqual(['第一報']);
    expect(snap.components.find((c) => c.key === 'care-api')?.status).not.toBe('operational');

    await app.ctx.queue.runDueJobs();
    await app.ctx.queue.runDueJobs();
    const toCustomer = smtp.received.filter((m) => m.to.includes(customerEmail));
    expect(toCustomer).toHaveLength(1);
    expect(toCustomer[0]!.subject).toContain('【重要】障害通知（第一報）');
    expect(toCustomer[0]!.text).toContain('介護記録API');

    // The operator's own first notice is refused now (it is posted), and the next run sends nothing again.
    const again = await app.request({ method: 'POST', url: `/api/v1/incidents/${incidentId}/notices`, cookie: ops, payload: { stage: 'first' } });
    expect(again.statusCode).toBe(409);
    app.clock.advance(60 * S);
    await app.ctx.queue.runDueJobs();
    expect(smtp.received.filter((m) => m.to.includes(customerEmail))).toHaveLength(1);
  });
});
