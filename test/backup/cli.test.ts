import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTree } from '../helpers/backup.js';

const root = path.resolve(import.meta.dirname, '../..');
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-bkcli-'));
const dataDir = path.join(base, 'data');
const backupDir = path.join(base, 'backup');
const env = { ...process.env, DATABASE_URL: '', HOKAN_DATA_DIR: dataDir, HOKAN_BACKUP_URL: backupDir, HOKAN_BACKUP_SAME_DEVICE_OK: 'true', HOKAN_LOG_LEVEL: 'warn', PORT: '0' };
afterAll(() => removeTree(base));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/hokan.js', ...args], { cwd: root, env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

async function withServer<T>(fn: (address: string, output: string) => Promise<T>): Promise<T> {
  const child = spawn(process.execPath, ['bin/hokan.js', 'serve'], { cwd: root, env: { ...env, HOKAN_JOBS: 'false' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no start: ${out}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /running at (http:\/\/[\d.:]+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
  try {
    return await fn(address, out);
  } finally {
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

describe('hokan backup commands, as an operator runs them', () => {
  it('serve announces the backup target; run, list, verify, restore with progress; a broken part is named', async () => {
    let token = '';
    await withServer(async (address, output) => {
      expect(output).toContain(`daily backups at 02:00 JST to directory ${backupDir}`);
      const creds = fs.readFileSync(path.join(dataDir, 'demo-credentials.txt'), 'utf8');
      const password = /^sakura-admin\t(\S+)/m.exec(creds)![1]!;
      const login = await fetch(`${address}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ loginId: 'sakura-admin', password }) });
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      const customerId = (await login.json()).principal.customerId as string;
      token = (await (await fetch(`${address}/api/v1/customers/${customerId}/api-tokens`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'care-app' }) })).json()).token;
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${address}/api/v1/data/collections/residents/records`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: `r${i}`, data: { name: `入居者${i}` } }) });
        expect(res.status).toBe(201);
      }
      // The embedded database is the server's while it runs: a command beside it is refused, clearly.
      const beside = await run(['backup', 'run', '--all']);
      expect(beside.code).toBe(1);
      expect(beside.out).toContain('the embedded database');
      expect(beside.out).toMatch(/in use by process \d+/);
      expect(beside.out).toContain('stop the server first');
    });

    const runAll = await run(['backup', 'run', '--all']);
    expect(runAll.code).toBe(0);
    expect(runAll.out.match(/^good /gm)).toHaveLength(2);
    const list = await run(['backup', 'list']);
    expect(list.out).toMatch(/good\s+manual/);
    const verify = await run(['backup', 'verify', '--all']);
    expect(verify.code).toBe(0);
    expect(verify.out.match(/^OK /gm)).toHaveLength(2);

    await withServer(async (address) => {
      await fetch(`${address}/api/v1/data/collections/residents/records/r0`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    });
    const restore = await run(['backup', 'restore', '--customer', 'sakura']);
    expect(restore.code).toBe(0);
    expect(restore.out).toContain('records');
    expect(restore.out).toMatch(/restored customer .* from primary: 20 records, 0 files/);
    await withServer(async (address) => {
      expect((await fetch(`${address}/api/v1/data/collections/residents/records/r0`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    });

    const drill = await run(['backup', 'drill', '--customer', 'sakura']);
    expect(drill.code).toBe(0);
    expect(drill.out).toMatch(/^OK\s+drill/m);

    const parts = fs.readdirSync(backupDir, { recursive: true }).map(String).filter((f) => f.endsWith('records.tsv.gz.hkn'));
    const victim = path.join(backupDir, parts[0]!);
    fs.chmodSync(victim, 0o644);
    const bytes = fs.readFileSync(victim);
    bytes[bytes.length - 20]! ^= 0xff;
    fs.writeFileSync(victim, bytes);
    const broken = await run(['backup', 'verify', '--all']);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/BROKEN .*\n\s+records\.tsv\.gz\.hkn: /);

    const bad = await run(['backup', 'restore', '--customer', 'nobody']);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('no customer with code or id "nobody"');
  }, 300_000);
});
