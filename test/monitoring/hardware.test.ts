import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMailTransport, deliverDueEmails } from '../../src/notify/outbox.js';
import type { HardwareSample } from '../../src/monitoring/hardware-metrics.js';
import { parseDiskstats } from '../../src/monitoring/hardware-metrics.js';
import { openPendingIncidents } from '../../src/monitoring/hardware-alerts.js';
import { HARDWARE_EVALUATE, HARDWARE_PRUNE } from '../../src/monitoring/hardware-jobs.js';
import { pruneSamples, sampleSelf } from '../../src/monitoring/hardware-samples.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener } from '../helpers/smtp.js';

const GB = 1024 ** 3;
const MIN = 60_000;

/** A sample as an agent would send it, at the app clock's now unless told otherwise. */
function sample(at: Date, over: { diskPct?: number; cpu?: number; tempC?: number | null } = {}): HardwareSample {
  const total = 100 * GB;
  return {
    at: at.toISOString(),
    cpuPercent: over.cpu ?? 12.5,
    memory: { usedBytes: 4 * GB, totalBytes: 16 * GB },
    load: { one: 0.5, five: 0.4, fifteen: 0.3 },
    disks: [
      { mount: '/', fs: '/dev/sda1', usedBytes: Math.round((total * (over.diskPct ?? 40)) / 100), totalBytes: total },
      { mount: '/boot', fs: '/dev/sda2', usedBytes: GB / 4, totalBytes: GB },
    ],
    diskIo: [{ device: 'sda', reads: 1000, writes: 2000, readBytes: 512_000, writeBytes: 1_024_000, ioErrors: 0 }],
    temperatures: { maxC: over.tempC === undefined ? 45 : over.tempC, cpuC: over.tempC === undefined ? 45 : over.tempC },
  };
}

describe('R12.3① disk counters from /proc/diskstats', () => {
  it('keeps whole disks (not partitions, loop or RAM devices) and converts sectors to bytes', () => {
    const text = [
      '   7       0 loop0 10 0 20 0 0 0 0 0 0 0 0',
      ' 253       0 vda 29832 100 1000 4808 39700 200 3000 24205 0 100 200',
      ' 253       1 vda1 29000 100 900 4800 39000 200 2900 24000 0 100 200',
      ' 259       0 nvme0n1 5 0 8 1 6 0 16 1 0 1 2',
      ' 259       1 nvme0n1p1 5 0 8 1 6 0 16 1 0 1 2',
    ].join('\n');
    expect(parseDiskstats(text)).toEqual([
      { device: 'vda', reads: 29832, writes: 39700, readBytes: 1000 * 512, writeBytes: 3000 * 512 },
      { device: 'nvme0n1', reads: 5, writes: 6, readBytes: 8 * 512, writeBytes: 16 * 512 },
    ]);
  });
});

describe.each(databaseKinds)('R12.3① hardware monitoring on %s', (kind) => {
  let app: TestApp;
  let smtp: TestSmtpListener;
  let ops: string;
  let member: string;
  let host: { id: string; token: string };

  const push = (token: string, samples: unknown[]) => app.request({ method: 'POST', url: '/api/v1/hardware/samples', token, payload: { samples } });
  const deliver = async () => deliverDueEmails(app.ctx.db, app.clock, createMailTransport(smtp.url, 'hokan <noreply@hokan.test>'));
  const signInAgain = async () => {
    ops = await app.signIn('hw-ops');
  };

  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_SMTP_URL: smtp.url });
    await addOperator(app, 'hw-ops', ['operator']);
    await addOperator(app, 'hw-admin', ['admin']);
    await addOperator(app, 'hw-billing', ['billing']);
    const { customer } = await addCustomerWithContract(app, 'hwcust');
    await addCustomerUser(app, customer.id, 'hwcust-admin', 'customer_admin');
    ops = await app.signIn('hw-ops');
    member = await app.signIn('hwcust-admin');
    const res = await app.request({ method: 'POST', url: '/api/v1/hardware/hosts', cookie: ops, payload: { name: 'rack-a-01' } });
    expect(res.statusCode).toBe(201);
    host = { id: res.json().host.id, token: res.json().token };
  });
  afterAll(async () => {
    await app?.close();
    await smtp?.stop();
  });

  it('R12.3① a host is registered with a push token shown once and kept only as a digest; operators only', async () => {
    expect(host.token).toMatch(/^hkh_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    const row = await app.ctx.db.selectFrom('hardware_hosts').selectAll().where('id', '=', host.id).executeTakeFirstOrThrow();
    expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(host.token).not.toContain(row.token_hash!);
    const list = await app.request({ method: 'GET', url: '/api/v1/hardware/hosts', cookie: ops });
    expect(JSON.stringify(list.json())).not.toContain(host.token.slice(40));
    expect((await app.request({ method: 'POST', url: '/api/v1/hardware/hosts', cookie: ops, payload: { name: 'rack-a-01' } })).statusCode).toBe(409);
    expect((await app.request({ method: 'POST', url: '/api/v1/hardware/hosts', cookie: ops, payload: { name: 'hokan:fake' } })).statusCode).toBe(400);
    // Customers and the provider's billing role do not see hardware.
    expect((await app.request({ method: 'GET', url: '/api/v1/hardware/hosts', cookie: member })).statusCode).toBe(403);
    expect((await app.request({ method: 'GET', url: '/api/v1/hardware/hosts', cookie: await app.signIn('hw-billing') })).statusCode).toBe(403);
    const audit = await app.ctx.db.selectFrom('audit_log').select('action').where('subject_id', '=', host.id).execute();
    expect(audit.map((a) => a.action)).toContain('hardware.host_registered');
  });

  it('R12.3① pushes: bad tokens 401, out-of-range values 400 naming the field, nothing half-stored, repeats ignored', async () => {
    const count = async () => Number((await app.ctx.db.selectFrom('hardware_samples').select((eb) => eb.fn.countAll<string>().as('n')).where('host_id', '=', host.id).executeTakeFirstOrThrow()).n);
    const now = app.clock.now();
    expect((await app.request({ method: 'POST', url: '/api/v1/hardware/samples', payload: { samples: [sample(now)] } })).statusCode).toBe(401);
    const wrongSecret = `${host.token.slice(0, -4)}AAAA`;
    expect((await push(wrongSecret, [sample(now)])).statusCode).toBe(401);
    expect((await push('hkh_nonsense', [sample(now)])).statusCode).toBe(401);
    // A bad token is refused before the body is even looked at.
    expect((await push(wrongSecret, [{ junk: true }])).statusCode).toBe(401);

    const bad = async (s: unknown, path: string) => {
      const res = await push(host.token, [sample(now), s]);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path);
    };
    await bad({ ...sample(now), cpuPercent: 150 }, 'body.samples.1.cpuPercent');
    await bad({ ...sample(now), memory: { usedBytes: 20 * GB, totalBytes: 16 * GB } }, 'body.samples.1.memory.usedBytes');
    await bad({ ...sample(now), temperatures: { maxC: 900, cpuC: null } }, 'body.samples.1.temperatures.maxC');
    await bad({ ...sample(now), disks: [{ mount: '/', fs: 'x', usedBytes: -1, totalBytes: 10 }] }, 'body.samples.1.disks.0.usedBytes');
    await bad({ ...sample(now), at: 'yesterday' }, 'body.samples.1.at');
    await bad({ ...sample(now), extra: 1 }, 'body.samples.1');
    const future = await push(host.token, [sample(now), sample(new Date(now.getTime() + 10 * MIN))]);
    expect(future.statusCode).toBe(400);
    expect(future.json().error.details[0].path).toBe('samples.1.at');
    const ancient = await push(host.token, [sample(new Date(now.getTime() - 91 * 86_400_000))]);
    expect(ancient.json().error.details[0].path).toBe('samples.0.at');
    const tooMany = await push(host.token, Array.from({ length: 501 }, (_, i) => sample(new Date(now.getTime() - i * 1000))));
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error.details[0].path).toBe('body.samples');
    expect(await count()).toBe(0);

    const ok = await push(host.token, [sample(now), sample(new Date(now.getTime() - 30_000))]);
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toEqual({ accepted: 2, duplicates: 0 });
    // A small clock skew is tolerated; an agent's retry of the same samples stores nothing twice.
    expect((await push(host.token, [sample(now), sample(new Date(now.getTime() + 60_000))])).json()).toEqual({ accepted: 1, duplicates: 1 });
    expect(await count()).toBe(3);
    const detail = await app.request({ method: 'GET', url: `/api/v1/hardware/hosts/${host.id}`, cookie: ops });
    expect(detail.json().host.lastSeenAt).toBe(now.toISOString());
    expect(detail.json().latestSample.cpuPercent).toBe(12.5);
  });

  it('R12.3① samples for charts: one metric over a validated, bounded range', async () => {
    const now = app.clock.now();
    const q = (qs: string) => app.request({ method: 'GET', url: `/api/v1/hardware/hosts/${host.id}/samples?${qs}`, cookie: ops });
    const from = new Date(now.getTime() - 10 * MIN).toISOString();
    const to = new Date(now.getTime() + 5 * MIN).toISOString();
    const res = await q(`from=${from}&to=${to}&metric=disk_percent`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().points.map((p: { value: number }) => p.value)).toEqual([40, 40, 40]);
    expect((await q(`from=${from}&to=${to}&metric=disk_percent&target=/boot`)).json().points[0].value).toBe(25);
    const tooLong = await q(`from=2026-09-01T00:00:00Z&to=2026-11-24T00:00:00Z&metric=cpu_percent`);
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().error.details[0].path).toBe('to');
    const backwards = await q(`from=${to}&to=${from}&metric=cpu_percent`);
    expect(backwards.json().error.details[0].path).toBe('to');
    const badMetric = await q(`from=${from}&to=${to}&metric=colour`);
    expect(badMetric.statusCode).toBe(400);
    expect(badMetric.json().error.details[0].path).toBe('querystring.metric');
    expect((await app.request({ method: 'GET', url: `/api/v1/hardware/hosts/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/samples?from=${from}&to=${to}&metric=cpu_percent`, cookie: ops })).statusCode).toBe(404);
  });

  it('R12.3① a rule breaching for its duration alerts the operators once by e-mail, opens one incident per episode, and recovers', async () => {
    await signInAgain();
    smtp.received.length = 0;
    const badRule = await app.request({ method: 'POST', url: '/api/v1/hardware/rules', cookie: ops, payload: { name: 'x', metric: 'disk_percent', comparison: '>', threshold: 190, durationSeconds: 300, severity: 'major' } });
    expect(badRule.statusCode).toBe(400);
    expect(badRule.json().error.details[0].path).toBe('threshold');
    const rule = await app.request({ method: 'POST', url: '/api/v1/hardware/rules', cookie: ops, payload: { name: 'ディスク逼迫', hostId: host.id, metric: 'disk_percent', comparison: '>', threshold: 90, durationSeconds: 300, severity: 'major' } });
    expect(rule.statusCode, rule.body).toBe(201);
    const ruleId = rule.json().rule.id as string;
    const incidents = async () => (await app.ctx.db.selectFrom('incidents').select(['id', 'title', 'severity', 'occurred_at']).where('title', 'like', '%rack-a-01%').execute());
    const alerts = async () => (await app.request({ method: 'GET', url: `/api/v1/hardware/alerts?hostId=${host.id}`, cookie: ops })).json().alerts as Array<{ ruleId: string; recoveredAt: string | null; incidentId: string | null; startedAt: string }>;

    // (The previous test pushed a sample a minute ahead: move past it.)
    app.clock.advance(2 * MIN);
    const t0 = app.clock.now();
    expect((await push(host.token, [sample(t0, { diskPct: 95 })])).statusCode).toBe(202);
    app.clock.advance(2 * MIN);
    await push(host.token, [sample(app.clock.now(), { diskPct: 96 })]);
    expect(await alerts()).toEqual([]);
    app.clock.advance(3 * MIN);
    await push(host.token, [sample(app.clock.now(), { diskPct: 97 })]);
    const raised = await alerts();
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ ruleId, recoveredAt: null, startedAt: t0.toISOString() });
    expect(raised[0]!.incidentId).not.toBeNull();
    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { diskPct: 98 })]);
    await app.ctx.queue.poll(); // the scheduled pass finds nothing more to open
    expect(await alerts()).toHaveLength(1);
    const opened = await incidents();
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ id: raised[0]!.incidentId, severity: 'major' });
    expect(opened[0]!.occurred_at.toISOString()).toBe(t0.toISOString());

    await deliver();
    await deliver();
    const alertMails = smtp.received.filter((m) => m.subject.includes('ハードウェア監視'));
    expect(alertMails.map((m) => m.to[0]).sort()).toEqual(['hw-admin@provider.example.jp', 'hw-ops@provider.example.jp']);
    expect(alertMails[0]!.subject).toContain('【重要】');
    expect(alertMails[0]!.text).toContain('ディスク使用率');

    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { diskPct: 50 })]);
    const recovered = await alerts();
    expect(recovered[0]!.recoveredAt).toBe(app.clock.now().toISOString());
    await deliver();
    expect(smtp.received.filter((m) => m.subject.includes('【復旧】'))).toHaveLength(2);

    // A new episode: a new alert and a new incident.
    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { diskPct: 99 })]);
    app.clock.advance(5 * MIN);
    await push(host.token, [sample(app.clock.now(), { diskPct: 99 })]);
    expect(await alerts()).toHaveLength(2);
    expect(await incidents()).toHaveLength(2);
    await deliver();
    expect(smtp.received.filter((m) => m.subject.startsWith('【重要】ハードウェア監視'))).toHaveLength(4);
    const actions = await app.ctx.db.selectFrom('audit_log').select('action').where('action', 'like', 'hardware.alert%').execute();
    expect(actions.map((a) => a.action).sort()).toEqual(['hardware.alert_raised', 'hardware.alert_raised', 'hardware.alert_recovered']);

    // Deleting the rule closes its open episode.
    await signInAgain();
    expect((await app.request({ method: 'DELETE', url: `/api/v1/hardware/rules/${ruleId}`, cookie: ops })).statusCode).toBe(204);
    expect((await alerts()).every((a) => a.recoveredAt !== null)).toBe(true);
  });

  it('R12.3① a minor rule (temperature) alerts without opening an incident; a sample without the metric changes nothing', async () => {
    await signInAgain();
    // The name goes into the alert's e-mail subject, where a line break would get the e-mail refused.
    const twoLines = await app.request({ method: 'POST', url: '/api/v1/hardware/rules', cookie: ops, payload: { name: '高温\r\nBcc: x@example.com', metric: 'temperature_c', comparison: '>', threshold: 80, severity: 'minor' } });
    expect(twoLines.statusCode).toBe(400);
    expect(twoLines.json().error.details[0].path).toBe('body.name');
    const rule = await app.request({ method: 'POST', url: '/api/v1/hardware/rules', cookie: ops, payload: { name: '高温', metric: 'temperature_c', comparison: '>', threshold: 80, severity: 'minor' } });
    expect(rule.statusCode).toBe(201);
    const before = (await app.ctx.db.selectFrom('incidents').select('id').execute()).length;
    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { tempC: 85 })]);
    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { tempC: null })]);
    const open = (await app.request({ method: 'GET', url: '/api/v1/hardware/alerts?open=true', cookie: ops })).json().alerts;
    expect(open.filter((a: { ruleId: string }) => a.ruleId === rule.json().rule.id)).toHaveLength(1);
    expect((await app.ctx.db.selectFrom('incidents').select('id').execute()).length).toBe(before);
    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { tempC: 60 })]);
    expect((await app.request({ method: 'GET', url: '/api/v1/hardware/alerts?open=true', cookie: ops })).json().alerts).toEqual([]);
    await app.request({ method: 'DELETE', url: `/api/v1/hardware/rules/${rule.json().rule.id}`, cookie: ops });
  });

  it('R12.3① a silent host raises its silence rule on the schedule (critical: an incident) and recovers when it reports', async () => {
    await signInAgain();
    const b = await app.request({ method: 'POST', url: '/api/v1/hardware/hosts', cookie: ops, payload: { name: 'rack-b-07' } });
    const hostB = { id: b.json().host.id as string, token: b.json().token as string };
    smtp.received.length = 0;
    const rule = await app.request({ method: 'POST', url: '/api/v1/hardware/rules', cookie: ops, payload: { name: '無応答', hostId: hostB.id, metric: 'silence_seconds', comparison: '>', threshold: 180, severity: 'critical' } });
    expect(rule.statusCode, rule.body).toBe(201);
    await push(hostB.token, [sample(app.clock.now())]);
    const lastSeen = app.clock.now();
    const alertsB = async () => (await app.request({ method: 'GET', url: `/api/v1/hardware/alerts?hostId=${hostB.id}`, cookie: ops })).json().alerts as Array<{ startedAt: string; recoveredAt: string | null; incidentId: string | null; severity: string }>;
    app.clock.advance(2 * MIN);
    await app.ctx.queue.poll();
    expect(await alertsB()).toEqual([]);
    app.clock.advance(2 * MIN);
    await app.ctx.queue.poll();
    const raised = await alertsB();
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ severity: 'critical', recoveredAt: null, startedAt: new Date(lastSeen.getTime() + 180_000).toISOString() });
    expect(raised[0]!.incidentId).not.toBeNull();
    app.clock.advance(MIN);
    await app.ctx.queue.poll();
    expect(await alertsB()).toHaveLength(1);
    expect((await app.ctx.db.selectFrom('incidents').select('id').where('title', 'like', '%rack-b-07%').execute())).toHaveLength(1);
    await deliver(); // (the scheduled polls may have sent them already)
    expect(smtp.received.filter((m) => m.subject.includes('rack-b-07'))).toHaveLength(2);
    await push(hostB.token, [sample(app.clock.now())]);
    expect((await alertsB())[0]!.recoveredAt).toBe(app.clock.now().toISOString());
    // A retired host's token stops working.
    expect((await app.request({ method: 'DELETE', url: `/api/v1/hardware/hosts/${hostB.id}`, cookie: ops })).statusCode).toBe(200);
    expect((await push(hostB.token, [sample(app.clock.now())])).statusCode).toBe(401);
  });

  it('R12.3① an incident whose opening was interrupted is opened by the schedule, once even when two passes race', async () => {
    await signInAgain();
    const rule = await app.request({ method: 'POST', url: '/api/v1/hardware/rules', cookie: ops, payload: { name: 'CPU張り付き', hostId: host.id, metric: 'cpu_percent', comparison: '>=', threshold: 99, severity: 'critical' } });
    app.clock.advance(MIN);
    await push(host.token, [sample(app.clock.now(), { cpu: 100 })]);
    const episode = await app.ctx.db.selectFrom('hardware_alerts').selectAll().where('rule_id', '=', rule.json().rule.id).executeTakeFirstOrThrow();
    expect(episode.incident_id).not.toBeNull();
    // As if the instance died after claiming the episode and before opening its incident.
    await app.ctx.db.updateTable('hardware_alerts').set({ incident_id: null, incident_claimed_at: app.clock.now() }).where('id', '=', episode.id).execute();
    expect(await openPendingIncidents(app.ctx.db, app.clock)).toEqual([]); // the claim is still leased
    app.clock.advance(6 * MIN);
    const [a, b] = await Promise.all([openPendingIncidents(app.ctx.db, app.clock), openPendingIncidents(app.ctx.db, app.clock)]);
    expect([...a!, ...b!]).toHaveLength(1);
    const after = await app.ctx.db.selectFrom('hardware_alerts').select('incident_id').where('id', '=', episode.id).executeTakeFirstOrThrow();
    expect(after.incident_id).toBe([...a!, ...b!][0]);
    await app.request({ method: 'DELETE', url: `/api/v1/hardware/rules/${rule.json().rule.id}`, cookie: ops });
  });

  it('R12.3① a new token replaces the old one at once', async () => {
    await signInAgain();
    const re = await app.request({ method: 'POST', url: `/api/v1/hardware/hosts/${host.id}/token`, cookie: ops, payload: {} });
    expect(re.statusCode).toBe(201);
    app.clock.advance(30_000);
    expect((await push(host.token, [sample(app.clock.now())])).statusCode).toBe(401);
    expect((await push(re.json().token, [sample(app.clock.now())])).statusCode).toBe(202);
    host.token = re.json().token;
  });

  it('R12.3① the server samples its own host with systeminformation; samples past the retention are pruned', async () => {
    const r = await sampleSelf(app.ctx.db, app.clock, 90);
    expect(r.accepted).toBe(1);
    const self = await app.ctx.db.selectFrom('hardware_hosts').selectAll().where('kind', '=', 'self').executeTakeFirstOrThrow();
    expect(self.name).toBe(`hokan:${os.hostname()}`);
    const s = (await app.request({ method: 'GET', url: `/api/v1/hardware/hosts/${self.id}`, cookie: ops })).json().latestSample as HardwareSample;
    expect(s.memory.totalBytes).toBe(os.totalmem());
    expect(s.disks.length).toBeGreaterThan(0);
    expect(s.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(s.load.one).toBeGreaterThanOrEqual(0);
    expect(app.ctx.queue.schedules.map((x) => x.name)).toEqual(expect.arrayContaining([HARDWARE_EVALUATE, HARDWARE_PRUNE]));
    const total = async () => Number((await app.ctx.db.selectFrom('hardware_samples').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const before = await total();
    expect(before).toBeGreaterThan(5);
    app.clock.advance(89 * 86_400_000);
    expect(await pruneSamples(app.ctx.db, app.clock, 90)).toBe(0);
    app.clock.advance(2 * 86_400_000);
    expect(await pruneSamples(app.ctx.db, app.clock, 90)).toBe(before);
    expect(await total()).toBe(0);
  });
});
