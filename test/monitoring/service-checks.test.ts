import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCustomer } from '../../src/contracts/customers.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { ManualClock } from '../../src/core/clock.js';
import { openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { getIncident } from '../../src/incidents/incidents.js';
import { createMonitor, getMonitor } from '../../src/monitoring/monitors.js';
import { MonitorScheduler, nextMonitorState, type MonitorState } from '../../src/monitoring/monitors-scheduler.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { selfSignedCertificate, startTlsServer, TestDnsServer, TestHttpServer, TestTcpServer } from './servers.js';

const actor = systemActor('test');
const S = 1000;

describe('R12.3② monitor state machine: retries and flap damping', () => {
  const base: MonitorState & { retries: number; recover_after: number } = { state: 'up', fail_streak: 0, ok_streak: 5, streak_started_at: null, retries: 2, recover_after: 2 };
  const t = (s: number) => new Date(Date.UTC(2026, 10, 24, 1, 0, s));

  it('goes down only after retries + 1 failures in a row, reporting the first failure as the start', () => {
    let m = { ...base, ...nextMonitorState(base, false, t(0)) };
    expect(m).toMatchObject({ state: 'up', fail_streak: 1, wentDownSince: null });
    m = { ...m, ...nextMonitorState(m, false, t(10)) };
    expect(m.state).toBe('up');
    m = { ...m, ...nextMonitorState(m, false, t(20)) };
    expect(m).toMatchObject({ state: 'down', fail_streak: 3, wentDownSince: t(0) });
    // Further failures change nothing: no second "went down".
    expect(nextMonitorState(m, false, t(30))).toMatchObject({ state: 'down', wentDownSince: null });
  });

  it('a good check in between resets the failure streak (a flapping service does not open incidents)', () => {
    let m = { ...base };
    for (let i = 0; i < 10; i++) {
      const r = nextMonitorState(m, i % 3 !== 2 ? false : true, t(i * 10));
      expect(r.wentDownSince).toBeNull();
      m = { ...m, ...r };
    }
  });

  it('comes back up after recover_after good checks; recovery time is the first good check', () => {
    const down = { ...base, state: 'down' as const, fail_streak: 4, ok_streak: 0, streak_started_at: t(0) };
    const a = { ...down, ...nextMonitorState(down, true, t(40)) };
    expect(a).toMatchObject({ state: 'down', ok_streak: 1, recoveredAt: null });
    const flap = { ...a, ...nextMonitorState(a, false, t(50)) };
    expect(flap).toMatchObject({ state: 'down', ok_streak: 0, wentDownSince: null });
    const b = { ...flap, ...nextMonitorState(flap, true, t(60)) };
    expect(nextMonitorState(b, true, t(70))).toMatchObject({ state: 'up', recoveredAt: t(60) });
  });
});

describe.each(databaseKinds)('R12.3② service checks against real local servers on %s', (kind) => {
  let database: TestDatabase;
  let clock: ManualClock;
  let scheduler: MonitorScheduler;
  const opened: string[] = [];
  beforeAll(async () => {
    database = await openTestDatabase(kind);
  });
  afterAll(async () => database?.close());
  beforeEach(async () => {
    // One database per kind; each test starts without monitors.
    await database.db.deleteFrom('monitors').execute();
    clock = new ManualClock('2026-11-24T01:00:00Z');
    opened.length = 0;
    scheduler = new MonitorScheduler({ db: database.db, clock, instanceId: 'a', onIncidentOpened: (id) => void opened.push(id) });
  });
  afterEach(async () => {
    await scheduler.stop();
  });
  const common = { intervalSeconds: 10, timeoutMs: 2000, component: 'care-api' };
  const step = async (seconds = 10) => {
    clock.advance(seconds * S);
    return scheduler.runDueChecks();
  };

  it('R8.3 HTTP: down after retries opens one incident (occurred = first failing check, affected customers), recovery is recorded', async () => {
    const server = new TestHttpServer();
    await server.start();
    const cust = await createCustomer(database.db, clock, actor, { code: 'sakura', name: 'さくら介護', contactEmail: 'ops@sakura.example.jp' });
    const { monitor } = await createMonitor(database.db, clock, actor, { kind: 'http', name: 'care API', url: server.url('/health'), keyword: 'ok', retries: 1, recoverAfter: 2, severity: 'critical', customerIds: [cust.id], ...common });
    expect((await scheduler.runDueChecks()).checked).toBe(1);
    expect((await getMonitor(database.db, monitor.id)).state).toBe('up');
    await server.stop();
    const firstFail = clock.advance(10 * S);
    const r1 = await scheduler.runDueChecks();
    expect(r1).toMatchObject({ checked: 1, failed: 1, opened: [] });
    const r2 = await step();
    expect(r2.opened).toHaveLength(1);
    expect(opened).toEqual(r2.opened);
    const inc = await getIncident(database.db, clock, r2.opened[0]!);
    expect(inc.times.occurred).toBe(firstFail.toISOString());
    expect(inc.times.detected).toBe(clock.now().toISOString());
    expect(inc).toMatchObject({ severity: 'critical', customerIds: [cust.id] });
    // Still down: no second incident for the same streak.
    expect((await step()).opened).toEqual([]);
    expect((await step()).opened).toEqual([]);
    await server.start();
    const firstGood = clock.advance(10 * S);
    expect((await scheduler.runDueChecks()).recovered).toEqual([]);
    expect((await getMonitor(database.db, monitor.id)).state).toBe('down');
    expect((await step()).recovered).toEqual([inc.id]);
    const after = await getIncident(database.db, clock, inc.id);
    expect(after.times.recovered).toBe(firstGood.toISOString());
    const m = await getMonitor(database.db, monitor.id);
    expect(m).toMatchObject({ state: 'up', openIncidentId: null });
    // A new outage is a new incident.
    await server.stop();
    await step();
    expect((await step()).opened).toHaveLength(1);
    expect(opened).toHaveLength(2);
    await server.stop();
  });

  it('HTTP: expected status, keyword and latency threshold decide; errors say why', async () => {
    const server = new TestHttpServer((req, res) => {
      if (req.url === '/500') return void res.writeHead(500).end('boom');
      if (req.url === '/slow') return void setTimeout(() => res.end('ok slow'), 150);
      res.end('hello');
    });
    await server.start();
    const mk = (extra: Record<string, unknown>) => createMonitor(database.db, clock, actor, { kind: 'http', name: JSON.stringify(extra), retries: 0, ...common, ...extra });
    const status = (await mk({ url: server.url('/500') })).monitor;
    const status2 = (await mk({ url: server.url('/500'), expectedStatus: [500] })).monitor;
    const keyword = (await mk({ url: server.url('/'), keyword: 'goodbye' })).monitor;
    const slow = (await mk({ url: server.url('/slow'), maxLatencyMs: 50 })).monitor;
    await scheduler.runDueChecks();
    expect((await getMonitor(database.db, status.id)).lastCheck).toMatchObject({ ok: false, error: 'HTTP 500, expected 200' });
    expect((await getMonitor(database.db, status2.id)).lastCheck?.ok).toBe(true);
    expect((await getMonitor(database.db, keyword.id)).lastCheck?.error).toContain('keyword "goodbye" not found');
    const s = (await getMonitor(database.db, slow.id)).lastCheck!;
    expect(s.ok).toBe(false);
    expect(s.latencyMs).toBeGreaterThanOrEqual(140);
    expect(s.error).toMatch(/^slow: \d+ ms > 50 ms$/);
    await server.stop();
  });

  it('TCP connect: up while listening, down when the port is closed', async () => {
    const server = new TestTcpServer();
    await server.start();
    const { monitor } = await createMonitor(database.db, clock, actor, { kind: 'tcp', name: 'smtp relay', host: '127.0.0.1', port: server.port, retries: 0, ...common });
    await scheduler.runDueChecks();
    expect((await getMonitor(database.db, monitor.id)).lastCheck?.ok).toBe(true);
    await server.stop();
    const r = await step();
    expect(r.opened).toHaveLength(1);
    expect((await getMonitor(database.db, monitor.id)).lastCheck?.error).toContain('ECONNREFUSED');
  });

  it('DNS through a configured resolver (a real UDP DNS server): resolves, expected address, NXDOMAIN', async () => {
    const dns = new TestDnsServer();
    dns.records.set('care.hokan.test', ['10.1.2.3']);
    await dns.start();
    const server = `127.0.0.1:${dns.port}`;
    const good = (await createMonitor(database.db, clock, actor, { kind: 'dns', name: 'dns ok', ...common, hostname: 'care.hokan.test', server, expectedAddress: '10.1.2.3' })).monitor;
    const wrong = (await createMonitor(database.db, clock, actor, { kind: 'dns', name: 'dns wrong', ...common, hostname: 'care.hokan.test', server, expectedAddress: '10.9.9.9' })).monitor;
    const missing = (await createMonitor(database.db, clock, actor, { kind: 'dns', name: 'dns missing', ...common, hostname: 'gone.hokan.test', server })).monitor;
    await scheduler.runDueChecks();
    expect(dns.queries).toBeGreaterThanOrEqual(3);
    expect((await getMonitor(database.db, good.id)).lastCheck).toMatchObject({ ok: true, error: null });
    expect((await getMonitor(database.db, wrong.id)).lastCheck).toMatchObject({ ok: false, error: 'care.hokan.test resolved to 10.1.2.3, expected 10.9.9.9' });
    expect((await getMonitor(database.db, missing.id)).lastCheck?.error).toContain('ENOTFOUND');
    await dns.stop();
  });

  it('TLS certificate expiry: days left against the threshold, and trust', async () => {
    const { key, cert, validTo } = selfSignedCertificate(30);
    const tlsServer = await startTlsServer(key, cert);
    // Ten days before the certificate runs out (by the injectable clock).
    clock.set(new Date(validTo.getTime() - 10 * 86_400_000 - 3_600_000));
    const mk = (name: string, extra: Record<string, unknown>) => createMonitor(database.db, clock, actor, { kind: 'tls', name, host: '127.0.0.1', port: tlsServer.port, servername: 'localhost', retries: 0, ...common, ...extra });
    const soon = (await mk('14 days', { minDaysLeft: 14, requireTrusted: false })).monitor;
    const fine = (await mk('7 days', { minDaysLeft: 7, requireTrusted: false })).monitor;
    const trusted = (await mk('trusted', { minDaysLeft: 7 })).monitor;
    await scheduler.runDueChecks();
    expect((await getMonitor(database.db, soon.id)).lastCheck?.error).toMatch(/^certificate expires in 10 days .*fewer than 14$/);
    expect((await getMonitor(database.db, fine.id)).lastCheck?.ok).toBe(true);
    expect((await getMonitor(database.db, trusted.id)).lastCheck?.error).toContain('certificate not trusted');
    await tlsServer.stop();
  });

  it("hokan's own parts: database reachable; backup freshness and remote-copy lag fail clearly when not configured", async () => {
    const db = (await createMonitor(database.db, clock, actor, { kind: 'database', name: 'db', ...common })).monitor;
    const fresh = (await createMonitor(database.db, clock, actor, { kind: 'backup_freshness', name: 'backups', retries: 0, ...common })).monitor;
    const lag = (await createMonitor(database.db, clock, actor, { kind: 'offsite_lag', name: 'offsite', retries: 0, ...common })).monitor;
    await scheduler.runDueChecks();
    expect((await getMonitor(database.db, db.id)).lastCheck?.ok).toBe(true);
    expect((await getMonitor(database.db, fresh.id)).lastCheck?.error).toContain('HOKAN_BACKUP_URL');
    expect((await getMonitor(database.db, lag.id)).lastCheck?.error).toContain('HOKAN_OFFSITE_URL');
  });

  it('intervals are kept on a fixed grid and a disabled monitor is not checked', async () => {
    const server = new TestHttpServer();
    await server.start();
    const { monitor } = await createMonitor(database.db, clock, actor, { kind: 'http', name: 'grid', url: server.url('/grid'), ...common, intervalSeconds: 30, timeoutMs: 1000 });
    await createMonitor(database.db, clock, actor, { kind: 'http', name: 'off', url: server.url('/off'), ...common, enabled: false });
    const t0 = clock.now().getTime();
    await scheduler.runDueChecks();
    expect((await step(20)).checked).toBe(0);
    expect((await step(15)).checked).toBe(1);
    expect((await getMonitor(database.db, monitor.id)).nextCheckAt).toBe(new Date(t0 + 60 * S).toISOString());
    expect(server.hits.get('/grid')).toBe(2);
    expect(server.hits.get('/off')).toBeUndefined();
    await server.stop();
  });
});

describe.each(databaseKinds)('R12.3② exactly once across two scheduler instances on %s', (kind) => {
  let database: TestDatabase;
  let second: DatabaseHandle;
  let server: TestHttpServer;
  beforeAll(async () => {
    database = await openTestDatabase(kind);
    // On PostgreSQL the second instance has its own connection pool, as a second process would.
    second = database.url ? await openDatabase({ kind: 'postgres', url: database.url }) : database;
    server = new TestHttpServer();
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
    if (second !== database) await second?.close();
    await database?.close();
  });

  it('each monitor is checked once per slot, however the two instances race', async () => {
    const clock = new ManualClock('2026-11-24T01:00:00Z');
    const n = 120;
    for (let i = 0; i < n; i++) await createMonitor(database.db, clock, actor, { kind: 'http', name: `m${i}`, url: server.url(`/m/${i}`), intervalSeconds: 10, timeoutMs: 2000, component: 'x' });
    const a = new MonitorScheduler({ db: database.db, clock, instanceId: 'a', batchSize: 25, concurrency: 16 });
    const b = new MonitorScheduler({ db: second.db, clock, instanceId: 'b', batchSize: 25, concurrency: 16 });
    const rounds = 4;
    for (let r = 0; r < rounds; r++) {
      const [ra, rb] = await Promise.all([a.runDueChecks(), b.runDueChecks()]);
      expect(ra.checked + rb.checked).toBe(n);
      clock.advance(10 * S);
    }
    expect(a.stats.checks + b.stats.checks).toBe(n * rounds);
    for (let i = 0; i < n; i++) expect(server.hits.get(`/m/${i}`), `monitor ${i}`).toBe(rounds);
    const rows = await database.db.selectFrom('monitor_results').select((eb) => ['monitor_id', eb.fn.countAll<string>().as('c')]).groupBy('monitor_id').execute();
    expect(rows).toHaveLength(n);
    expect(rows.every((r) => Number(r.c) === rounds)).toBe(true);
  });
});
