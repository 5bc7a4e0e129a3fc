import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffMs, BACKOFF_MAX_MS } from '../../src/monitoring/agent.js';
import { readTokenFile } from '../../src/monitoring/agent-command.js';
import { databaseKinds } from '../helpers/databases.js';
import { addOperator, startTestApp, type TestApp } from '../helpers/app.js';

const root = path.resolve(import.meta.dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-agent-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Agent {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startAgent(args: string[]): Agent {
  const child = spawn(process.execPath, ['bin/hokan.js', 'agent', ...args], { cwd: root, env: { ...process.env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function tokenFile(name: string, token: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

describe('R12.3① hokan agent options', () => {
  it('backs off 2 s, 4 s, 8 s … up to 5 min, with jitter', () => {
    expect([1, 2, 3].map((n) => backoffMs(n, () => 0.5))).toEqual([2000, 4000, 8000]);
    expect(backoffMs(30, () => 0.5)).toBe(BACKOFF_MAX_MS);
    expect(backoffMs(1, () => 0)).toBe(1600);
    expect(backoffMs(1, () => 1)).toBe(2400);
  });

  it('R12.3① refuses bad options with errors naming the option', async () => {
    const good = tokenFile('good', `hkh_${'a'.repeat(32)}_${'B'.repeat(43)}`);
    // The token file is checked in-process; the command line through the real CLI (one at a time: each loads it whole).
    const warnings: string[] = [];
    expect(readTokenFile(good, (l) => warnings.push(l))).toMatch(/^hkh_/);
    expect(warnings).toEqual([]);
    expect(() => readTokenFile(tokenFile('bad', 'password123'), () => undefined)).toThrow(/--token-file .*does not hold a host push token/);
    expect(() => readTokenFile(path.join(tmp, 'missing'), () => undefined)).toThrow(/--token-file .*no such file/);
    const loose = tokenFile('loose', `hkh_${'a'.repeat(32)}_${'B'.repeat(43)}`);
    fs.chmodSync(loose, 0o644);
    readTokenFile(loose, (l) => warnings.push(l));
    expect(warnings.join()).toContain('chmod 600');
    const cases: Array<[string[], string]> = [
      [['--server', 'ftp://example.jp', '--token-file', good], "option '--server <url>' argument 'ftp://example.jp' is invalid"],
      [['--server', 'http://127.0.0.1:1', '--token-file', good, '--interval', '0'], "option '--interval <seconds>' argument '0' is invalid"],
      [['--server', 'http://127.0.0.1:1', '--token-file', path.join(tmp, 'missing')], '--token-file'],
    ];
    for (const [args, message] of cases) {
      const a = startAgent(args);
      const code = await a.exited;
      expect(code, `${args.join(' ')}: ${a.output()}`).not.toBe(0);
      expect(a.output(), args.join(' ')).toContain(message);
    }
  }, 180_000);
});

describe.each(databaseKinds)('R12.3① hokan agent pushing to a real server on %s', (kind) => {
  let app: TestApp;
  let ops: string;
  const agents: Agent[] = [];

  beforeAll(async () => {
    // The agent stamps samples with the wall clock: start the server's clock there.
    app = await startTestApp(kind, new Date().toISOString());
    await addOperator(app, 'agent-ops', ['operator']);
    ops = await app.signIn('agent-ops');
  });
  afterAll(async () => {
    for (const a of agents) if (a.child.exitCode === null) a.child.kill('SIGKILL');
    await app?.close();
  });

  it('R12.3① buffers while the server is down, retries with backoff, delivers everything once it is up, and exits cleanly on SIGTERM', async () => {
    const reg = await app.request({ method: 'POST', url: '/api/v1/hardware/hosts', cookie: ops, payload: { name: `agent-${kind}` } });
    const hostId = reg.json().host.id as string;
    const port = await freePort();
    const agent = startAgent(['--server', `http://127.0.0.1:${port}`, '--token-file', tokenFile(`t-${kind}`, reg.json().token), '--interval', '1']);
    agents.push(agent);
    // Nothing listens yet: the agent keeps sampling and backs off.
    await until('two failed pushes', () => (agent.output().match(/next try in/g) ?? []).length >= 2);
    expect(agent.output()).toContain('cannot reach');
    const upAt = new Date();
    app.clock.set(upAt);
    await app.server.listen({ host: '127.0.0.1', port });
    const samples = () => app.ctx.db.selectFrom('hardware_samples').select(['at', 'metrics']).where('host_id', '=', hostId).orderBy('at').execute();
    await until('the buffered samples and new ones', async () => {
      app.clock.set(new Date());
      const rows = await samples();
      return rows.length >= 5 && rows.at(-1)!.at.getTime() > upAt.getTime() && agent.output().includes('server reachable again');
    });
    const rows = await samples();
    // Samples taken while the server was down arrived too, each once.
    expect(rows[0]!.at.getTime()).toBeLessThan(upAt.getTime());
    expect(new Set(rows.map((r) => r.at.toISOString())).size).toBe(rows.length);
    const m = rows[0]!.metrics as { memory: { totalBytes: number }; disks: unknown[] };
    expect(m.memory.totalBytes).toBe(os.totalmem());
    const host = (await app.request({ method: 'GET', url: `/api/v1/hardware/hosts/${hostId}`, cookie: ops })).json().host;
    expect(host.lastSeenAt).not.toBeNull();
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.output()).toMatch(/stopped \(\d+ sample\(s\) pushed\)/);
  });

  it('R12.3① an agent whose token the server refuses stops with exit code 3', async () => {
    if (!app.server.server.listening) await app.server.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.server.address() as AddressInfo).port;
    app.clock.set(new Date());
    const agent = startAgent(['--server', `http://127.0.0.1:${port}/`, '--token-file', tokenFile(`wrong-${kind}`, `hkh_${'a'.repeat(32)}_${'B'.repeat(43)}`), '--interval', '1']);
    agents.push(agent);
    expect(await agent.exited).toBe(3);
    expect(agent.output()).toContain('refused the push token');
  });
});
