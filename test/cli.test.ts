import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-cli-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const cli = runCli;

/** Starts `hokan serve` as a user would and reads what it prints. */
async function serve(dataDir: string) {
  const child = spawn(process.execPath, ['bin/hokan.js', 'serve'], { cwd: root, env: { ...process.env, DATABASE_URL: '', HOKAN_DATA_DIR: dataDir, PORT: '0', HOKAN_LOG_LEVEL: 'warn' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /hokan is running at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { address, output: () => out, stop: async () => (child.kill('SIGTERM'), exited) };
}

describe('hokan CLI', () => {
  it('npx hokan --help lists the commands', async () => {
    const { stdout } = await run('npx', ['hokan', '--help'], { cwd: root });
    for (const cmd of ['serve', 'migrate', 'operator', 'audit']) expect(stdout).toContain(cmd);
  });

  it('refuses a bad configuration value, naming the variable', async () => {
    const r = await cli(['migrate'], { PORT: 'eighty' });
    expect(r.code).toBe(1);
    expect(r.err).toContain('PORT');
  });

  it('operator create makes the first admin, who can then sign in; bad input is refused', async () => {
    const dataDir = tmp();
    const env = { HOKAN_DATA_DIR: dataDir, HOKAN_DEMO_SEED: 'false' };
    const bad = await cli(['operator', 'create', '--login-id', 'X', '--name', 'n', '--email', 'e@x.jp'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('--login-id');
    const badRole = await cli(['operator', 'create', '--login-id', 'boss', '--name', 'n', '--email', 'e@x.jp', '--roles', 'admin,king'], env);
    expect(badRole.code).not.toBe(0);
    expect(badRole.err).toContain('king');
    const ok = await cli(['operator', 'create', '--login-id', 'boss', '--name', '管理者', '--email', 'boss@provider.example.jp', '--roles', 'admin,billing', '--password-stdin'], env, 'a long enough passphrase\n');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('created operator boss (admin, billing)');
    const weak = await cli(['operator', 'create', '--login-id', 'weak', '--name', 'n', '--email', 'w@x.jp', '--password-stdin'], env, 'short\n');
    expect(weak.code).toBe(1);
    expect(weak.err).toMatch(/at least 12 characters/);

    const server = await serve(dataDir);
    try {
      const res = await fetch(`${server.address}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ loginId: 'boss', password: 'a long enough passphrase' }) });
      expect(res.status).toBe(200);
      expect(server.output()).not.toContain('seeded a demo');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('serve seeds the demo on an empty data directory, prints how to sign in, and the sign-in works', async () => {
    const dataDir = tmp();
    const server = await serve(dataDir);
    let adminPassword = '';
    try {
      expect(await (await fetch(`${server.address}/healthz`)).json()).toEqual({ status: 'ok' });
      const m = /^\s+admin\s+(\S+)\s/m.exec(server.output());
      expect(m, server.output()).not.toBeNull();
      adminPassword = m![1]!;
      const login = await fetch(`${server.address}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ loginId: 'admin', password: adminPassword }) });
      expect(login.status).toBe(200);
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      const contracts = await (await fetch(`${server.address}/api/v1/contracts`, { headers: { cookie } })).json();
      expect(contracts.contracts).toHaveLength(2);
      const credentials = fs.readFileSync(path.join(dataDir, 'demo-credentials.txt'), 'utf8');
      expect(credentials).toContain(adminPassword);
      expect(fs.statSync(path.join(dataDir, 'demo-credentials.txt')).mode & 0o777).toBe(0o600);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    // A second start keeps the data and does not seed again.
    const again = await serve(dataDir);
    try {
      expect(again.output()).not.toContain('seeded a demo');
      expect(again.output()).toContain('demo-credentials.txt');
      const login = await fetch(`${again.address}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ loginId: 'admin', password: adminPassword }) });
      expect(login.status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});
