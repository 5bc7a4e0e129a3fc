import { spawn } from 'node:child_process';
import path from 'node:path';

/** The project's root, where `bin/hokan.js` is. */
export const projectRoot = path.resolve(import.meta.dirname, '../..');

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs the real `bin/hokan.js` in a child process, as a user would, with `input` on its standard
 * input; `DATABASE_URL` is cleared unless `env` sets it, so the CLI uses its own PGlite directory.
 */
export function runCli(args: string[], env: Record<string, string>, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/hokan.js', ...args], { cwd: projectRoot, env: { ...process.env, DATABASE_URL: '', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
    child.stdin.end(input ?? '');
  });
}
