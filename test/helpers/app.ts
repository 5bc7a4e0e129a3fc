import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { createCustomerUser, createOperator } from '../../src/accounts/users.js';
import { createApp, type App } from '../../src/app.js';
import { createContract } from '../../src/contracts/contracts.js';
import { createCustomer, type CustomerView } from '../../src/contracts/customers.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import type { CustomerRole, OperatorRole } from '../../src/core/auth/principal.js';
import { ManualClock } from '../../src/core/clock.js';
import { loadConfig } from '../../src/core/config.js';
import { openTestDatabase, type DatabaseKind } from './databases.js';

export const TEST_PASSWORD = 'correct horse battery staple';

export interface TestApp extends App {
  clock: ManualClock;
  /** Signs in through the real login route and returns the session cookie header. */
  signIn(loginId: string, password?: string): Promise<string>;
  request(opts: InjectOptions & { cookie?: string; token?: string }): Promise<LightMyRequestResponse>;
}

export async function startTestApp(kind: DatabaseKind, start = '2026-11-24T01:00:00Z', env: Record<string, string> = {}): Promise<TestApp & { filesDir: string }> {
  const clock = new ManualClock(start);
  const database = await openTestDatabase(kind);
  const filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-files-'));
  const config = loadConfig({ HOKAN_LOG_LEVEL: 'silent', HOKAN_DATA_DIR: '.tmp/unused', HOKAN_INSTANCE_ID: 'test', HOKAN_FILES_URL: filesDir, ...env });
  const app = await createApp(config, { clock, database, logger: pino({ level: 'silent' }), env: { HOKAN_MASTER_KEY: 'cd'.repeat(32), ...env } });
  const close = app.close;
  app.close = async () => {
    await close();
    fs.rmSync(filesDir, { recursive: true, force: true });
  };
  const request: TestApp['request'] = async ({ cookie, token, headers, ...rest }) =>
    app.server.inject({
      ...rest,
      headers: {
        ...(headers ?? {}),
        ...(cookie ? { cookie } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    });
  return {
    ...app,
    filesDir,
    clock,
    request,
    async signIn(loginId, password = TEST_PASSWORD) {
      const res = await request({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId, password } });
      if (res.statusCode !== 200) throw new Error(`sign-in of ${loginId} failed: ${res.statusCode} ${res.body}`);
      const c = res.cookies.find((x) => x.name === 'hokan_session');
      if (!c) throw new Error('no session cookie');
      return `hokan_session=${c.value}`;
    },
  };
}

const seed = systemActor('test');

export async function addOperator(app: App, loginId: string, roles: OperatorRole[]) {
  return createOperator(app.ctx.db, app.ctx.clock, seed, { loginId, displayName: loginId, email: `${loginId}@provider.example.jp`, roles, password: TEST_PASSWORD });
}

export async function addCustomerUser(app: App, customerId: string, loginId: string, role: CustomerRole) {
  return createCustomerUser(app.ctx.db, app.ctx.clock, seed, { customerId, loginId, displayName: loginId, email: `${loginId}@customer.example.jp`, role, password: TEST_PASSWORD });
}

export async function addCustomerWithContract(
  app: App,
  code: string,
  contract: { termStart?: string; termEnd?: string; fee?: number; supportEnd?: string | null } = {},
): Promise<{ customer: CustomerView; contractId: string }> {
  const customer = await createCustomer(app.ctx.db, app.ctx.clock, seed, { code, name: `${code} 株式会社`, contactEmail: `${code}@example.jp` });
  const row = await createContract(app.ctx.db, app.ctx.clock, seed, {
    customerId: customer.id,
    contractNumber: `C-${code}`,
    termStart: contract.termStart ?? '2026-04-01',
    termEnd: contract.termEnd ?? '2027-03-31',
    monthlyFeeYen: contract.fee ?? 120_000,
    systemUseContractNumber: `SU-${code}`,
    supportContractNumber: `SP-${code}`,
    supportContractEnd: contract.supportEnd ?? null,
  });
  return { customer, contractId: row.id };
}
