import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createApiToken } from '../../src/accounts/api-tokens.js';
import { createOperator } from '../../src/accounts/users.js';
import { createContract } from '../../src/contracts/contracts.js';
import { createCustomer } from '../../src/contracts/customers.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import type { Clock } from '../../src/core/clock.js';
import type { Db } from '../../src/core/db/database.js';

const root = path.resolve(import.meta.dirname, '../..');

/** Every instance started by a test, so afterAll can always stop them. */
export const runningInstances = new Set<ChildProcess>();

export interface Instance {
  child: ChildProcess;
  /** Everything written to stdout (pino JSON lines and the fixture's plain lines). */
  out(): string;
  err(): string;
  /** Resolves with the match once stdout matches; rejects if the process exits first or the time runs out. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  address: string;
  send(line: string): void;
  /** Pino log lines of this instance with the given msg. */
  logs(msg: string | RegExp): Array<Record<string, unknown>>;
}

/** Starts test/fixtures/instance.ts (createApp + runInstance, as `hokan serve`) and waits until it listens. */
export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/instance.ts'], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', HOKAN_LOG_LEVEL: 'info', HOKAN_DEMO_SEED: 'false', HOKAN_JOB_POLL_MS: '100', HOKAN_MASTER_KEY: 'ef'.repeat(32), ...env },
  });
  runningInstances.add(child);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      runningInstances.delete(child);
      resolve({ code, signal });
      waiters.forEach((w) => w());
    }),
  );
  const waitFor = (re: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(out);
        if (m) {
          finish();
          resolve(m);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`instance exited (${child.exitCode ?? child.signalCode}) without printing ${re}; stdout: ${out.slice(-3000)} stderr: ${err.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${re}; stdout: ${out.slice(-3000)} stderr: ${err.slice(-3000)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  const logs = (msg: string | RegExp) =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
  const m = await waitFor(/^listening (\S+)$/m, 120_000);
  return { child, out: () => out, err: () => err, waitFor, exited, address: m[1]!, send: (line) => child.stdin!.write(`${line}\n`), logs };
}

export function stopAllInstances(): void {
  for (const c of runningInstances) c.kill('SIGKILL');
}

const seed = systemActor('test seed');

/** A customer with an active contract and an API token for the data API (seeded in the parent, straight in the database). */
export async function seedCustomerWithToken(db: Db, clock: Clock, code: string): Promise<{ customerId: string; contractId: string; token: string }> {
  const customer = await createCustomer(db, clock, seed, { code, name: `${code} 株式会社`, contactEmail: `${code}@example.jp` });
  const contract = await createContract(db, clock, seed, {
    customerId: customer.id,
    contractNumber: `C-${code}`,
    termStart: '2026-04-01',
    termEnd: '2027-03-31',
    monthlyFeeYen: 100_000,
    systemUseContractNumber: `SU-${code}`,
    supportContractNumber: `SP-${code}`,
    supportContractEnd: null,
  });
  const op = await createOperator(db, clock, seed, { loginId: `op-${code}`.slice(0, 30), displayName: 'op', email: `op-${code}@provider.example.jp`, roles: ['admin'], password: 'correct horse battery staple' });
  const { token } = await createApiToken(db, clock, { kind: 'operator', id: op.id, label: 'seed' }, customer.id, 'test');
  return { customerId: customer.id, contractId: contract.id, token };
}
