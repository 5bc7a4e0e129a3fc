/**
 * `npm run bench -- status`: the public status page during an active incident, requests per
 * second against a static file (the stylesheet) served by the same server, in the same run,
 * A-B-A-B. Load comes from autocannon in its own process on 127.0.0.1.
 * Writes bench/results/status.json with status_rps, static_rps and ratio.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createApp } from '../src/app.js';
import { createContract } from '../src/contracts/contracts.js';
import { createCustomer } from '../src/contracts/customers.js';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { loadConfig } from '../src/core/config.js';
import { migrate, openDatabase } from '../src/core/db/database.js';
import { openIncident, recordMilestone } from '../src/incidents/incidents.js';
import { schedulePlannedStop } from '../src/incidents/stops.js';
import { statusSnapshot } from '../src/notify/status-snapshot.js';
import { median } from './lib/proc.js';
import { fixed, renderTable, round, verdict, writeResults } from './lib/report.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const autocannonBin = path.join(root, 'node_modules', '.bin', 'autocannon');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ROUNDS = 2;

interface LoadResult {
  rps: number;
  p99: number;
  ok2xx: number;
  non2xx: number;
  bytesPerRequest: number;
}

function load(url: string): Promise<LoadResult> {
  const args = ['-c', String(CONNECTIONS), '-d', String(SECONDS), '-j', '--timeout', '30', url];
  return new Promise((resolve, reject) => {
    const child = spawn(autocannonBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 60) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as { requests: { average: number; total: number }; latency: { p99: number }; throughput: { total: number }; '2xx': number; non2xx: number };
      resolve({ rps: r.requests.average, p99: r.latency.p99, ok2xx: r['2xx'], non2xx: r.non2xx, bytesPerRequest: r.requests.total ? Math.round(r.throughput.total / r.requests.total) : 0 });
    });
  });
}

const dir = makeTempDir('hokan-bench-status');
const database = process.env.BENCH_DATABASE_URL ? await openDatabase({ kind: 'postgres', url: process.env.BENCH_DATABASE_URL }) : await openDatabase({ kind: 'pglite', dataDir: dir });
await migrate(database.db);
const config = loadConfig({ HOKAN_LOG_LEVEL: 'silent', HOKAN_DATA_DIR: dir, HOKAN_FILES_URL: path.join(dir, 'files'), HOKAN_INSTANCE_ID: 'bench', HOKAN_JOBS: 'false' });
const app = await createApp(config, { database, logger: pino({ level: 'silent' }), env: { HOKAN_MASTER_KEY: 'ab'.repeat(32), HOKAN_SOURCE_RATE_LIMIT: '1000000' } });

// An incident in progress (first notice out), a resolved one in the history, a planned stop ahead.
const actor = systemActor('bench');
const now = systemClock.now();
const customer = await createCustomer(database.db, systemClock, actor, { code: 'bench', name: 'ベンチ介護株式会社', contactEmail: 'bench@example.jp' });
await createContract(database.db, systemClock, actor, { customerId: customer.id, contractNumber: 'B-1', termStart: '2026-01-01', termEnd: '2030-12-31', systemUseContractNumber: 'SU-B', supportContractNumber: 'SP-B' });
const past = await openIncident(database.db, systemClock, actor, { title: 'ファイルのアップロードが失敗する', severity: 'major', occurredAt: new Date(now.getTime() - 20 * 86_400_000) });
await recordMilestone(database.db, systemClock, actor, past.id, 'recovered', new Date(now.getTime() - 20 * 86_400_000 + 3 * 3_600_000));
const active = await openIncident(database.db, systemClock, actor, { title: 'データAPIに接続できない障害', severity: 'critical', occurredAt: new Date(now.getTime() - 30 * 60_000), entirelyUnusable: true });
await recordMilestone(database.db, systemClock, actor, active.id, 'first_notice');
await schedulePlannedStop(database.db, systemClock, actor, { reason: 'maintenance', description: 'bench', startsAt: new Date(now.getTime() + 20 * 86_400_000), endsAt: new Date(now.getTime() + 20 * 86_400_000 + 2 * 3_600_000) }, { minLeadDays: 14 });
const snapshot = await statusSnapshot(database.db, systemClock);
if (snapshot.activeIncidents.length !== 1) throw new Error('the benchmark needs one active incident');

const address = await app.server.listen({ host: '127.0.0.1', port: 0 });
const statusUrl = `${address}/status`;
const staticUrl = `${address}/assets/hokan.css`;
// Check both answer, then warm up.
for (const url of [statusUrl, staticUrl]) {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
}
const statusPage = await (await fetch(statusUrl)).text();
if (!statusPage.includes('データAPIに接続できない障害')) throw new Error('the status page does not show the active incident');
await load(statusUrl);

const statusRuns: LoadResult[] = [];
const staticRuns: LoadResult[] = [];
for (let i = 0; i < ROUNDS; i++) {
  statusRuns.push(await load(statusUrl));
  staticRuns.push(await load(staticUrl));
}
await app.close();
removeTree(dir);

const status_rps = median(statusRuns.map((r) => r.rps));
const static_rps = median(staticRuns.map((r) => r.rps));
const ratio = status_rps / static_rps;
const results = {
  status_rps: round(status_rps, 1),
  static_rps: round(static_rps, 1),
  ratio: round(ratio, 3),
  status_p99_ms: Math.max(...statusRuns.map((r) => r.p99)),
  static_p99_ms: Math.max(...staticRuns.map((r) => r.p99)),
  status_bytes: statusRuns[0]!.bytesPerRequest,
  static_bytes: staticRuns[0]!.bytesPerRequest,
  non2xx: [...statusRuns, ...staticRuns].reduce((s, r) => s + r.non2xx, 0),
  active_incidents: snapshot.activeIncidents.length,
  connections: CONNECTIONS,
  seconds: SECONDS,
  rounds: ROUNDS,
  database: database.kind,
};
const file = writeResults('status', results);
process.stdout.write(
  renderTable(
    'hokan status page benchmark (during an active incident; status page vs static stylesheet, same server, same run)',
    [
      { metric: 'status_rps', value: fixed(status_rps), target: '≥ 5000', verdict: verdict(status_rps >= 5000) },
      { metric: 'static_rps', value: fixed(static_rps) },
      { metric: 'ratio', value: fixed(ratio, 3), target: '≥ 0.5', verdict: verdict(ratio >= 0.5) },
      { metric: 'status p99 ms', value: String(results.status_p99_ms) },
      { metric: 'bytes (status / static)', value: `${results.status_bytes} / ${results.static_bytes}` },
      { metric: 'non-2xx', value: String(results.non2xx) },
    ],
    [`database ${database.kind}; ${CONNECTIONS} connections × ${SECONDS} s, ${ROUNDS} rounds A-B (median); autocannon in its own process on 127.0.0.1; results in ${path.relative(root, file)}`],
  ),
);
