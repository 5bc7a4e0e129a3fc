import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const FIXTURE = path.join(root, 'test/fixtures/terms-of-use.ja.txt');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-terms-cli-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const cli = (args: string[]) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, ['bin/hokan.js', ...args], { cwd: root, env: { ...process.env, DATABASE_URL: '', HOKAN_DATA_DIR: dataDir, HOKAN_LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });

describe('R1.1 hokan terms import (CLI, embedded database)', () => {
  it('imports and publishes the real terms document, lists it, and refuses a malformed one naming the line', async () => {
    const ok = await cli(['terms', 'import', FIXTURE, '--edition', '6.5版', '--effective', '2021-08-16', '--publish']);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('24 articles, 59 paragraphs, 41 items, 7 editions in the 附則');
    expect(ok.out).toContain('2021-08-16 (6.5)');
    expect(ok.out).toContain('published; notified 0 customers (0 e-mails queued)');

    const bad = path.join(dataDir, 'bad.txt');
    fs.writeFileSync(bad, '第1条（適用）\n1. 本規約は適用されます。\n\n第3条（変更）\n1. 変更できます。\n');
    const refused = await cli(['terms', 'import', bad, '--edition', '7版', '--effective', '2027-02-30']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('effectiveDate');
    const malformed = await cli(['terms', 'import', bad, '--edition', '7版', '--effective', '2027-01-01']);
    expect(malformed.code).toBe(1);
    expect(malformed.err).toContain('terms document line 4: expected article 2, found article 3');

    const list = await cli(['terms', 'list']);
    expect(list.code).toBe(0);
    expect(list.out.trim().split('\n')).toHaveLength(1);
    expect(list.out).toMatch(/^6\.5版\t2021-08-16\tpublished /);
  }, 120_000);
});
