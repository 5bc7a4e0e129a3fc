/**
 * `npm run bench -- load` (issue 7): mixed data-API traffic from many customers while backups run,
 * against one and then two hokan instances (`hokan serve` child processes on different ports, one
 * PostgreSQL database). The load generator is another process (bench/lib/load-generator.ts,
 * autocannon) that spreads its connections across the instances. Writes bench/results/load.json.
 *
 *   BENCH_DATABASE_URL   PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test); a fresh database is created and dropped
 *   BENCH_SECONDS        seconds of load per phase (default 20)
 *   BENCH_CONNECTIONS    concurrent connections of the generator (default 32)
 *   BENCH_CUSTOMERS      customers, each with its own API token (default 40)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiToken } from '../src/accounts/api-tokens.js';
import { createOperator } from '../src/accounts/users.js';
import { createContract } from '../src/contracts/contracts.js';
import { createCustomer } from '../src/contracts/customers.js';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { JobQueue } from '../src/core/jobs/job-queue.js';
import { openBenchDatabase } from './lib/database.js';
import type { LoadReport } from './lib/load-generator.js';
import { fixed, renderTable, writeResults } from './lib/report.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SERVER = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 40);
const MASTER_KEY = '5a'.repeat(32);

const tmp = makeTempDir('hokan-bench-load');
const database = await openBenchDatabase(tmp, SERVER);
const dbUrl = database.url!;
const children = new Set<ChildProcess>();
const cleanup = () => children.forEach((c) => c.kill('SIGKILL'));
process.on('exit', cleanup);

function startInstance(name: string): Promise<{ url: string; child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['bin/hokan.js', 'serve'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: dbUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      HOKAN_INSTANCE_ID: name,
      HOKAN_LOG_LEVEL: 'warn',
      HOKAN_DEMO_SEED: 'false',
      HOKAN_DATA_DIR: path.join(tmp, name),
      HOKAN_FILES_URL: path.join(tmp, 'files'),
      HOKAN_BACKUP_URL: path.join(tmp, 'backup'),
      HOKAN_BACKUP_SAME_DEVICE_OK: 'true',
      HOKAN_MASTER_KEY: MASTER_KEY,
      HOKAN_JOB_POLL_MS: '500',
    },
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => (children.delete(child), resolve(code))));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${out.slice(-2000)}`)), 120_000);
    child.stdout!.on('data', () => {
      const m = /hokan is running at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child, exited });
      }
    });
    child.on('exit', (code) => reject(new Error(`${name} exited ${code}: ${out.slice(-2000)}`)));
  });
}

function generate(targets: string[], tokens: string[]): Promise<LoadReport> {
  const config = { targets, tokens, connections: CONNECTIONS, seconds: SECONDS };
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/lib/load-generator.ts', JSON.stringify(config)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 120) * 1000);
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code !== 0) return reject(new Error(`load generator exited ${code}: ${err.slice(-2000)}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadReport);
    }),
  );
}

// Customers, contracts and one API token each.
const seed = systemActor('bench load');
const op = await createOperator(database.db, systemClock, seed, { loginId: 'bench-admin', displayName: 'bench', email: 'bench@provider.example.jp', roles: ['admin'], password: 'correct horse battery staple' });
const customerIds: string[] = [];
const tokens: string[] = [];
for (let i = 0; i < CUSTOMERS; i++) {
  const code = `load${String(i).padStart(3, '0')}`;
  const c = await createCustomer(database.db, systemClock, seed, { code, name: `${code} 介護株式会社`, contactEmail: `${code}@example.jp` });
  await createContract(database.db, systemClock, seed, { customerId: c.id, contractNumber: `C-${code}`, termStart: '2026-04-01', termEnd: '2027-03-31', monthlyFeeYen: 100_000, systemUseContractNumber: `SU-${code}`, supportContractNumber: `SP-${code}`, supportContractEnd: null });
  tokens.push((await createApiToken(database.db, systemClock, { kind: 'operator', id: op.id, label: 'bench' }, c.id, 'load')).token);
  customerIds.push(c.id);
}

const producer = new JobQueue({ db: database.db, clock: systemClock, instanceId: 'bench-producer' });
async function triggerBackups(): Promise<void> {
  for (const customerId of customerIds) await producer.enqueue(database.db, 'backup.customer', { customerId, generation: 'manual' });
}
async function goodBackups(): Promise<number> {
  const r = await database.db.selectFrom('backups').select((eb) => eb.fn.countAll<string>().as('n')).where('state', '=', 'good').executeTakeFirstOrThrow();
  return Number(r.n);
}

interface Phase {
  instances: number;
  load: LoadReport;
  backups_completed: number;
  load_average_before: number[];
  load_average_after: number[];
}

async function phase(targets: string[]): Promise<Phase> {
  const before = os.loadavg().map((x) => Number(x.toFixed(2)));
  const backupsBefore = await goodBackups();
  // Backups of every customer are triggered as the load starts: they run while it runs.
  const [load] = await Promise.all([generate(targets, tokens), triggerBackups()]);
  return { instances: targets.length, load, backups_completed: (await goodBackups()) - backupsBefore, load_average_before: before, load_average_after: os.loadavg().map((x) => Number(x.toFixed(2))) };
}

let results: { one: Phase; two: Phase };
try {
  const a = await startInstance('load-a');
  const one = await phase([a.url]);
  const b = await startInstance('load-b');
  const two = await phase([a.url, b.url]);
  results = { one, two };
  for (const i of [a, b]) i.child.kill('SIGTERM');
  await Promise.all([a.exited, b.exited]);
} finally {
  cleanup();
  await database.close();
  removeTree(tmp);
}

const errorsOf = (p: Phase) => p.load.non2xx + p.load.socket_errors + p.load.timeouts;
const file = writeResults('load', {
  database: 'PostgreSQL (fresh database, dropped after)',
  seconds_per_phase: SECONDS,
  connections: CONNECTIONS,
  customers: CUSTOMERS,
  mix: 'per connection, cycling: create record, read it, update it (If-Match), list 20, upload 1 KiB file, download it',
  rps_1: Number(results.one.load.rps.toFixed(1)),
  p99_ms_1: results.one.load.p99_ms,
  rps_2: Number(results.two.load.rps.toFixed(1)),
  p99_ms_2: results.two.load.p99_ms,
  errors: errorsOf(results.one) + errorsOf(results.two),
  details: { one_instance: results.one, two_instances: results.two },
  note: `${os.cpus().length} CPU cores shared by the load generator, both instances, PostgreSQL and other work on the machine: see load_average_*`,
});

process.stdout.write(
  renderTable(
    'hokan load: mixed data API traffic while backups run',
    [
      { metric: 'requests/s, 1 instance', value: fixed(results.one.load.rps) },
      { metric: 'p99 latency ms, 1 instance', value: String(results.one.load.p99_ms) },
      { metric: 'requests/s, 2 instances', value: fixed(results.two.load.rps) },
      { metric: 'p99 latency ms, 2 instances', value: String(results.two.load.p99_ms) },
      { metric: 'errors (non-2xx, socket, timeouts)', value: String(errorsOf(results.one) + errorsOf(results.two)) },
      { metric: 'backups completed during phase 1 / 2', value: `${results.one.backups_completed} / ${results.two.backups_completed}` },
      { metric: 'load average 1 min, after phase 1 / 2', value: `${results.one.load_average_after[0]} / ${results.two.load_average_after[0]}` },
    ],
    [`${CUSTOMERS} customers, ${CONNECTIONS} connections × ${SECONDS} s per phase, ${os.cpus().length} cores; results in ${path.relative(root, file)}`],
  ),
);
process.exit(0);
