/**
 * `npm run bench -- monitors` (R12.3②): 5,000 HTTP monitors at 60 s intervals checked by one
 * instance's MonitorScheduler for 3 minutes, against local HTTP servers in a child process (their
 * CPU is not counted; the database's is, with PGlite: its own process's CPU is added). Measures this
 * process's CPU (process.cpuUsage) as a fraction of one core, and late checks: a check is late when its
 * probe starts more than 1 s after its slot. The same process idle (scheduler running, nothing due)
 * is measured first as the baseline. Writes bench/results/monitors.json.
 *
 *   npm run bench -- monitors                                   (3 minutes)
 *   BENCH_MONITORS_SECONDS=60 npm run bench -- monitors         (quicker)
 *
 * Environment: BENCH_MONITORS (default 5000), BENCH_MONITORS_SECONDS (default 180),
 * BENCH_MONITORS_INTERVAL_S (default 60), BENCH_DATABASE_URL (PostgreSQL server; default PGlite),
 * BENCH_TMPDIR.
 */
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pino from 'pino';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { createMonitor } from '../src/monitoring/monitors.js';
import { MonitorScheduler } from '../src/monitoring/monitors-scheduler.js';
import { openBenchDatabase } from './lib/database.js';
import { fixed, renderTable, round, verdict, writeResults } from './lib/report.js';
import { processCpuSeconds } from './lib/rss.js';
import { HttpTargets } from './lib/targets-child.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const MONITORS = Number(process.env.BENCH_MONITORS ?? 5000);
const SECONDS = Number(process.env.BENCH_MONITORS_SECONDS ?? 180);
const INTERVAL_S = Number(process.env.BENCH_MONITORS_INTERVAL_S ?? 60);
const IDLE_SECONDS = 5;
const LATE_MS = 1000;
const TARGET_CPU = 0.5;
const TARGET_LATE_PCT = 1;

const dir = makeTempDir('hokan-bench-monitors');
const database = await openBenchDatabase(dir, process.env.BENCH_DATABASE_URL);
const targets = await HttpTargets.start(8);
const logger = pino({ level: 'warn' });
try {
  process.stdout.write(`creating ${MONITORS} HTTP monitors (${database.label}) …\n`);
  const actor = systemActor('bench');
  const t0 = performance.now();
  // The first monitors go through createMonitor (validation, audit); the rest are copies of the
  // first one's row made in SQL, each with its own URL, to keep the set-up short.
  const created: string[] = [];
  for (let i = 0; i < targets.ports.length; i++) {
    const { monitor } = await createMonitor(database.db, systemClock, actor, { kind: 'http', name: `bench-${String(i).padStart(5, '0')}`, url: `http://127.0.0.1:${targets.ports[i]}/m/${i}`, intervalSeconds: INTERVAL_S, timeoutMs: 5000, component: 'bench' });
    created.push(monitor.id);
  }
  const ports = sql.join(targets.ports.map((p) => sql`${p}::integer`));
  await sql`insert into monitors (id, name, kind, target, interval_s, retry_interval_s, timeout_ms, retries, recover_after, severity, component, all_customers, enabled, heartbeat_token_hash, state, fail_streak, ok_streak, next_check_at, created_at, updated_at)
            select gen_random_uuid(), 'bench-' || lpad(g::text, 5, '0'), m.kind,
                   jsonb_set(m.target, '{url}', to_jsonb('http://127.0.0.1:' || (array[${ports}])[1 + g % ${targets.ports.length}] || '/m/' || g)),
                   m.interval_s, m.retry_interval_s, m.timeout_ms, m.retries, m.recover_after, m.severity, m.component, m.all_customers, m.enabled, null, 'unknown', 0, 0, m.next_check_at, m.created_at, m.updated_at
              from monitors m, generate_series(${targets.ports.length}::integer, ${MONITORS - 1}::integer) g
             where m.id = ${created[0]!}::uuid`.execute(database.db);
  process.stdout.write(`created in ${fixed((performance.now() - t0) / 1000)} s\n`);
  // Monitors made over time fall due at different moments: spread the first checks over one interval.
  const startAt = Date.now() + (IDLE_SECONDS + 2) * 1000;
  await sql`update monitors m set next_check_at = ${new Date(startAt)}::timestamptz + make_interval(secs => (r.n - 1) * ${INTERVAL_S}::double precision / ${MONITORS})
            from (select id, row_number() over (order by name) as n from monitors) r where m.id = r.id`.execute(database.db);

  const scheduler = new MonitorScheduler({ db: database.db, clock: systemClock, instanceId: 'bench', logger, lateThresholdMs: LATE_MS });
  scheduler.start(250);
  // Baseline: the same process with the scheduler polling and nothing due.
  // With PGlite, the database's own process (decision 0029) is counted too, as it was when it ran here.
  const dbCpu = () => processCpuSeconds(database.databasePid?.()) ?? 0;
  const idle0 = process.cpuUsage();
  const idleDb0 = dbCpu();
  const idleT0 = performance.now();
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const idleCpu = process.cpuUsage(idle0);
  const idleFraction = ((idleCpu.user + idleCpu.system) / 1e6 + dbCpu() - idleDb0) / ((performance.now() - idleT0) / 1000);
  await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));

  process.stdout.write(`running ${SECONDS} s …\n`);
  const checks0 = scheduler.stats.checks;
  const late0 = scheduler.stats.late;
  const cpu0 = process.cpuUsage();
  const db0 = dbCpu();
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const cpu = process.cpuUsage(cpu0);
  const dbSeconds = dbCpu() - db0;
  const wall = (performance.now() - w0) / 1000;
  const checks = scheduler.stats.checks - checks0;
  const late = scheduler.stats.late - late0;
  await scheduler.stop();
  const failed = Number((await database.db.selectFrom('monitor_results').select((eb) => eb.fn.countAll<string>().as('c')).where('ok', '=', false).executeTakeFirstOrThrow()).c);
  const stored = Number((await database.db.selectFrom('monitor_results').select((eb) => eb.fn.countAll<string>().as('c')).executeTakeFirstOrThrow()).c);

  const cpuFraction = ((cpu.user + cpu.system) / 1e6 + dbSeconds) / wall;
  const latePct = checks ? (late / checks) * 100 : 100;
  const expected = (MONITORS / INTERVAL_S) * wall;
  const rows = [
    { metric: 'monitors', value: String(MONITORS) },
    { metric: 'interval', value: `${INTERVAL_S} s` },
    { metric: 'checks', value: `${checks} (expected ≈ ${Math.round(expected)})` },
    { metric: 'checks per second', value: fixed(checks / wall, 1) },
    { metric: 'failed checks (all stored)', value: `${failed} of ${stored}` },
    { metric: 'CPU, fraction of one core', value: fixed(cpuFraction, 3), target: `≤ ${TARGET_CPU}`, verdict: verdict(cpuFraction <= TARGET_CPU) },
    { metric: 'baseline: idle scheduler CPU', value: fixed(idleFraction, 3) },
    { metric: `late checks (> ${LATE_MS} ms after slot)`, value: `${fixed(latePct, 2)} %`, target: `≤ ${TARGET_LATE_PCT} %`, verdict: verdict(latePct <= TARGET_LATE_PCT) },
    { metric: 'max lateness', value: `${scheduler.stats.maxLateMs} ms` },
  ];
  process.stdout.write(renderTable(`monitors: ${MONITORS} HTTP monitors for ${fixed(wall, 0)} s, ${database.label}`, rows, ['CPU is this whole process (scheduler, probes, database client) plus, when embedded, PGlite\'s own process; target servers run in a child process.']));
  const file = writeResults('monitors', {
    database: database.label,
    monitors: MONITORS,
    interval_s: INTERVAL_S,
    seconds: round(wall, 1),
    checks,
    expected_checks: Math.round(expected),
    checks_per_s: round(checks / wall, 2),
    failed_checks: failed,
    cpu_fraction_of_one_core: round(cpuFraction, 4),
    baseline_idle_cpu_fraction: round(idleFraction, 4),
    cpu_ratio_to_idle: round(cpuFraction / Math.max(idleFraction, 1e-6), 1),
    late_checks_pct: round(latePct, 3),
    late_threshold_ms: LATE_MS,
    max_late_ms: scheduler.stats.maxLateMs,
    targets: { cpu_fraction_of_one_core: TARGET_CPU, late_checks_pct: TARGET_LATE_PCT },
    pass: cpuFraction <= TARGET_CPU && latePct <= TARGET_LATE_PCT,
  });
  process.stdout.write(`wrote ${file}\n`);
} finally {
  await targets.close();
  await database.close();
  removeTree(dir);
}
