/**
 * `npm run bench -- gateway` (R4.1, R12.2, R13.1): the data API read through the full ingress
 * chain against the same route with the chain off, in the same run (A-B-A-B); the IDS alone on
 * the labelled corpus; and a 10× overload with 5 % priority traffic. Load comes from autocannon in
 * separate processes on 127.0.0.1. Writes bench/results/gateway.json.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { createApiToken } from '../src/accounts/api-tokens.js';
import { createOperator } from '../src/accounts/users.js';
import { createApp, type App } from '../src/app.js';
import { createContract } from '../src/contracts/contracts.js';
import { createCustomer } from '../src/contracts/customers.js';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { loadConfig } from '../src/core/config.js';
import { migrate, openDatabase } from '../src/core/db/database.js';
import { evaluateCorpus, IdsEngine } from '../src/gateway/ids/index.js';
import { fixed, renderTable, round, verdict, writeResults } from './lib/report.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const autocannonBin = path.join(root, 'node_modules', '.bin', 'autocannon');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);

interface LoadResult {
  rps: number;
  p99: number;
  ok2xx: number;
  non2xx: number;
  total: number;
}

/** One autocannon run in its own process; its JSON report is parsed. */
function load(url: string, opts: { connections: number; seconds: number; headers: Record<string, string> }): Promise<LoadResult> {
  const args = ['-c', String(opts.connections), '-d', String(opts.seconds), '-j', '--timeout', '30'];
  for (const [k, v] of Object.entries(opts.headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn(autocannonBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (opts.seconds + 60) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as { requests: { average: number; total: number }; latency: { p99: number }; '2xx': number; non2xx: number };
      resolve({ rps: r.requests.average, p99: r.latency.p99, ok2xx: r['2xx'], non2xx: r.non2xx, total: r['2xx'] + r.non2xx });
    });
  });
}

const dir = makeTempDir('hokan-bench-gateway');
const logger = pino({ level: 'silent' });
const database = process.env.BENCH_DATABASE_URL ? await openDatabase({ kind: 'postgres', url: process.env.BENCH_DATABASE_URL }) : await openDatabase({ kind: 'pglite', dataDir: dir });
await migrate(database.db);
const config = loadConfig({ HOKAN_LOG_LEVEL: 'silent', HOKAN_DATA_DIR: dir, HOKAN_FILES_URL: path.join(dir, 'files'), HOKAN_INSTANCE_ID: 'bench', HOKAN_JOBS: 'false' });
// Requests come from loopback through a declared proxy, carrying a Japanese client address, so
// the chain really looks the address up (a private address would skip that).
const env = { HOKAN_MASTER_KEY: 'ab'.repeat(32), HOKAN_TRUSTED_PROXIES: '127.0.0.1', HOKAN_SOURCE_RATE_LIMIT: '1000000' };
const apps: App[] = [];
const start = async (extra: Record<string, string>, gateway: boolean) => {
  const app = await createApp(config, { database, logger, env: { ...env, ...extra }, gateway });
  apps.push(app);
  return app.server.listen({ host: '127.0.0.1', port: 0 });
};

const actor = systemActor('bench');
const customer = await createCustomer(database.db, systemClock, actor, { code: 'bench', name: 'ベンチ介護株式会社', contactEmail: 'bench@example.jp' });
await createContract(database.db, systemClock, actor, { customerId: customer.id, contractNumber: 'B-1', termStart: '2026-01-01', termEnd: '2030-12-31', systemUseContractNumber: 'SU-B', supportContractNumber: 'SP-B' });
const op = await createOperator(database.db, systemClock, actor, { loginId: 'bench-op', displayName: 'bench', email: 'op@example.jp', roles: ['admin'], password: 'bench bench bench' });
const { token } = await createApiToken(database.db, systemClock, { ...actor, id: op.id }, customer.id, 'bench');
const chainUrl = await start({}, true);
const bareUrl = await start({}, false);
// All the load comes from one address here, standing for many callers: no per-source share.
const overloadUrl = await start({ HOKAN_MAX_CONCURRENT: '8', HOKAN_MAX_CONCURRENT_PER_SOURCE: '100000' }, true);
const headers = { authorization: `Bearer ${token}`, 'x-forwarded-for': '133.11.0.1', 'content-type': 'application/json' };
for (const [collection, id] of [['residents', 'r1'], ['emergency', 'e1']] as const) {
  const res = await fetch(`${chainUrl}/api/v1/data/collections/${collection}/records`, { method: 'POST', headers, body: JSON.stringify({ id, data: { name: '山田 花子', room: '201', vitals: { bp: '120/80', pulse: 72 }, note: '夜間の見守り、異常なし。服薬確認済み。' } }) });
  if (res.status !== 201) throw new Error(`seeding failed: ${res.status} ${await res.text()}`);
}
const readPath = '/api/v1/data/collections/residents/records/r1';

// 1. The chain against the bare route, alternating, after a warm-up of each.
await load(`${bareUrl}${readPath}`, { connections: CONNECTIONS, seconds: 2, headers });
await load(`${chainUrl}${readPath}`, { connections: CONNECTIONS, seconds: 2, headers });
const bareRuns: LoadResult[] = [];
const chainRuns: LoadResult[] = [];
for (let i = 0; i < 2; i++) {
  bareRuns.push(await load(`${bareUrl}${readPath}`, { connections: CONNECTIONS, seconds: SECONDS, headers }));
  chainRuns.push(await load(`${chainUrl}${readPath}`, { connections: CONNECTIONS, seconds: SECONDS, headers }));
}
const avg = (xs: LoadResult[]) => xs.reduce((a, b) => a + b.rps, 0) / xs.length;
const bare_rps = avg(bareRuns);
const chain_rps = avg(chainRuns);
const errors = [...bareRuns, ...chainRuns].reduce((n, r) => n + r.non2xx, 0);

// 2. The IDS alone on the labelled corpus.
const corpus = evaluateCorpus(IdsEngine.fromFile());

// 3. 10× overload: 80 standard connections and 4 priority ones (≈5 %) against 8 slots.
const [standard, priority] = await Promise.all([
  load(`${overloadUrl}${readPath}`, { connections: 80, seconds: SECONDS, headers }),
  load(`${overloadUrl}/api/v1/data/collections/emergency/records/e1`, { connections: 4, seconds: SECONDS, headers }),
]);

const admissionStats = apps[2]!.ctx.gateway!.admission.stats();
for (const app of apps) {
  await app.server.close();
  await app.ctx.gateway?.stop();
}
await database.close();
removeTree(dir);

const results = {
  chain_rps: round(chain_rps, 1),
  bare_rps: round(bare_rps, 1),
  ratio: round(chain_rps / bare_rps),
  errors,
  ids_mb_s: round(corpus.mb_per_s, 1),
  ids_benign_mb_s: round(corpus.benign_mb_per_s, 1),
  detection_rate: round(corpus.detection_rate, 4),
  false_positive_rate: round(corpus.false_positive_rate, 4),
  ids_rules_version: corpus.rulesVersion,
  priority_success_rate: round(priority.ok2xx / Math.max(1, priority.total), 4),
  priority_p99_ms: priority.p99,
  priority_requests: priority.total,
  standard_requests: standard.total,
  standard_rejected: standard.non2xx,
  connections: CONNECTIONS,
  seconds: SECONDS,
  database: database.kind,
  admission: admissionStats,
};
const file = writeResults('gateway', results);
process.stdout.write(
  renderTable(
    'hokan gateway benchmark (data API read, full chain vs bare route, same run)',
    [
      { metric: 'chain_rps', value: fixed(chain_rps) },
      { metric: 'bare_rps', value: fixed(bare_rps) },
      { metric: 'ratio', value: fixed(results.ratio, 3), target: '≥ 0.85', verdict: verdict(results.ratio >= 0.85) },
      { metric: 'ids_mb_s (corpus)', value: fixed(results.ids_mb_s) },
      { metric: 'detection_rate', value: fixed(results.detection_rate, 4) },
      { metric: 'false_positive_rate', value: fixed(results.false_positive_rate, 4) },
      { metric: 'priority_success_rate', value: fixed(results.priority_success_rate, 4), target: '≥ 0.99', verdict: verdict(results.priority_success_rate >= 0.99) },
      { metric: 'priority_p99_ms', value: String(priority.p99) },
      { metric: 'standard rejected (503)', value: `${standard.non2xx} of ${standard.total}` },
    ],
    [
      `database ${database.kind}; ${CONNECTIONS} connections × ${SECONDS} s per run; load from autocannon processes on 127.0.0.1; results in ${path.relative(root, file)}`,
      ...(database.kind === 'pglite'
        ? ['PGlite is one database session (in its own process), so requests that query it are served one at a time and overload queues there:', 'set BENCH_DATABASE_URL to a PostgreSQL database to see priority admission at work.']
        : []),
    ],
  ),
);
