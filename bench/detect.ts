/**
 * `npm run bench -- detect` (R8.1, R8.3, R12.3②): a monitored local HTTP service (in a child
 * process) stops; measures, on the wall clock, from the stop to the incident opened by the monitor
 * (`detect_s`) and to the first notice accepted by a real SMTP listener (`first_notice_s`).
 *
 * The monitor checks every 30 s, retries once after 10 s, as configured in production. The service
 * is stopped 1 s after a good check, the worst phase: the next check is almost a full interval away.
 * The first notice goes the production path: the scheduler's onIncidentOpened hook posts the
 * automatic first notice (autoFirstNotice, 第一報 from the templates: status post + one outbox e-mail
 * per contact, delivery enqueued in the same transaction); the job queue's worker sends it to the
 * SMTP listener. Writes bench/results/detect.json.
 *
 * Environment: BENCH_DETECT_INTERVAL_S (default 30), BENCH_DATABASE_URL (PostgreSQL; default PGlite), BENCH_TMPDIR.
 */
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';
import { createCustomer } from '../src/contracts/customers.js';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { JobQueue } from '../src/core/jobs/job-queue.js';
import { getIncident } from '../src/incidents/incidents.js';
import { autoFirstNotice } from '../src/notify/auto-first-notice.js';
import { createMonitor, getMonitor } from '../src/monitoring/monitors.js';
import { MonitorScheduler } from '../src/monitoring/monitors-scheduler.js';
import { registerNotifyJobs } from '../src/notify/jobs.js';
import { createMailTransport } from '../src/notify/outbox.js';
import { openBenchDatabase } from './lib/database.js';
import { fixed, renderTable, round, verdict, writeResults } from './lib/report.js';
import { HttpTargets } from './lib/targets-child.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const INTERVAL_S = Number(process.env.BENCH_DETECT_INTERVAL_S ?? 30);
const TARGET_FIRST_NOTICE_S = 90;
const TARGET_DETECT_S = 3600;

const dir = makeTempDir('hokan-bench-detect');
const database = await openBenchDatabase(dir, process.env.BENCH_DATABASE_URL);
const targets = await HttpTargets.start(1);
const logger = pino({ level: 'error' });

// A real SMTP listener: the time it accepts the first message is the first notice.
const accepted: Array<{ at: number }> = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onData(stream, _session, callback) {
    stream.resume();
    stream.on('end', () => {
      accepted.push({ at: Date.now() });
      callback();
    });
  },
});
await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
const smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;

const queue = new JobQueue({ db: database.db, clock: systemClock, instanceId: 'bench', logger });
registerNotifyJobs(queue, () => createMailTransport(smtpUrl, 'hokan <noreply@localhost>'), { providerName: 'hokan bench', publicUrl: 'http://127.0.0.1:8080', stopReminderHours: 24 });
let openedAt: number | null = null;
const firstNotice = autoFirstNotice({ db: database.db, clock: systemClock, queue, providerName: 'hokan bench', publicUrl: 'http://127.0.0.1:8080', logger });
const actor = systemActor('bench');
const customer = await createCustomer(database.db, systemClock, actor, { code: 'detect', name: 'ベンチ介護株式会社', contactEmail: 'contact@detect.example.jp' });
const scheduler = new MonitorScheduler({
  db: database.db,
  clock: systemClock,
  instanceId: 'bench',
  logger,
  async onIncidentOpened(incidentId, monitorId) {
    openedAt = Date.now();
    await firstNotice(incidentId, (await getMonitor(database.db, monitorId)).component);
  },
});
try {
  const port = targets.ports[0]!;
  const { monitor } = await createMonitor(database.db, systemClock, actor, { kind: 'http', name: 'care API', url: `http://127.0.0.1:${port}/health`, intervalSeconds: INTERVAL_S, retryIntervalSeconds: 10, retries: 1, timeoutMs: 5000, severity: 'critical', component: 'care-api', customerIds: [customer.id] });
  queue.start(200);
  scheduler.start(250);
  // Wait for a good check, then stop the service 1 s later.
  for (;;) {
    const m = await getMonitor(database.db, monitor.id);
    if (m.state === 'up' && m.lastCheck) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const lastGood = Date.parse((await getMonitor(database.db, monitor.id)).lastCheck!.at);
  await new Promise((r) => setTimeout(r, Math.max(0, lastGood + 1000 - Date.now())));
  process.stdout.write(`stopping the service; checks every ${INTERVAL_S} s, one retry after 10 s …\n`);
  const stoppedAt = await targets.stop(port);
  const deadline = stoppedAt + 300_000;
  while ((openedAt === null || accepted.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await scheduler.stop();
  await queue.stop();
  if (openedAt === null || accepted.length === 0) throw new Error('no incident or no notice within 5 minutes');
  const incidentId = (await getMonitor(database.db, monitor.id)).openIncidentId!;
  const incident = await getIncident(database.db, systemClock, incidentId);
  const detectS = (openedAt - stoppedAt) / 1000;
  const noticeS = (accepted[0]!.at - stoppedAt) / 1000;
  const occurredLagS = (Date.parse(incident.times.occurred) - stoppedAt) / 1000;
  const rows = [
    { metric: 'check interval / retry', value: `${INTERVAL_S} s / 10 s` },
    { metric: 'stop → first failing check (occurred)', value: `${fixed(occurredLagS, 1)} s` },
    { metric: 'stop → incident opened (detect_s)', value: `${fixed(detectS, 1)} s`, target: `≤ ${TARGET_DETECT_S}`, verdict: verdict(detectS <= TARGET_DETECT_S) },
    { metric: 'stop → first notice accepted by SMTP', value: `${fixed(noticeS, 1)} s`, target: `≤ ${TARGET_FIRST_NOTICE_S}`, verdict: verdict(noticeS <= TARGET_FIRST_NOTICE_S) },
    { metric: 'SLA detection (incident)', value: `${incident.sla.detection.minutes} min, ${incident.sla.detection.state}` },
  ];
  process.stdout.write(renderTable(`detect: a monitored HTTP service stops (${database.label})`, rows, [`${accepted.length} message(s) accepted by the SMTP listener`, 'worst phase: stopped 1 s after a good check']));
  const file = writeResults('detect', {
    database: database.label,
    interval_s: INTERVAL_S,
    retry_interval_s: 10,
    retries: 1,
    phase: 'stopped 1 s after a good check (worst case)',
    detect_s: round(detectS, 2),
    first_notice_s: round(noticeS, 2),
    occurred_after_stop_s: round(occurredLagS, 2),
    first_notice_path: 'onIncidentOpened → autoFirstNotice (第一報 template, status post, outbox) → notify.deliver job → SMTP listener',
    targets: { first_notice_s: TARGET_FIRST_NOTICE_S, detect_s: TARGET_DETECT_S },
    pass: noticeS <= TARGET_FIRST_NOTICE_S && detectS <= TARGET_DETECT_S,
  });
  process.stdout.write(`wrote ${file}\n`);
} finally {
  await scheduler.stop();
  await queue.stop();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await targets.close();
  await database.close();
  removeTree(dir);
}
