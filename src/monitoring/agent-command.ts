import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { AgentTokenRefusedError, HardwareAgent } from './agent.js';
import { collectHostSample } from './hardware-metrics.js';

const HOST_TOKEN_RE = /^hkh_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/;

function parseServer(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an http:// or https:// URL, e.g. https://hokan.example.jp');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http:// or https:// URL');
  if (url.username || url.password) throw new InvalidArgumentError('must not carry credentials (use --token-file)');
  if (url.search || url.hash) throw new InvalidArgumentError('must not have a query or fragment');
  return url;
}

const intRange = (min: number, max: number) => (value: string): number => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
  const n = Number(value);
  if (n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
  return n;
};

/** Reads and checks the push token file: one hkh_… token; warns when others may read it. */
export function readTokenFile(path: string, warn: (line: string) => void): string {
  let text: string;
  try {
    const st = fs.statSync(path);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > 4096) throw new Error('too large for a token file');
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) warn(`hokan agent: warning: --token-file ${path} can be read by other users (chmod 600 it)`);
    text = fs.readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new Error(`--token-file ${path}: ${err instanceof Error ? err.message.replace(/^[A-Z]+: /, '') : String(err)}`);
  }
  if (!HOST_TOKEN_RE.test(text)) throw new Error(`--token-file ${path}: does not hold a host push token (hkh_…, shown once when the host was registered)`);
  return text;
}

/** `hokan agent --server URL --token-file PATH [--interval 30] [--buffer 2880]` (R12.3①). */
export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('sample this host (CPU, memory, disks, load, temperatures) and push to a hokan server (R12.3①)')
    .requiredOption('--server <url>', 'the hokan server, e.g. https://hokan.example.jp', parseServer)
    .requiredOption('--token-file <path>', "file holding this host's push token (hkh_…)")
    .option('--interval <seconds>', 'seconds between samples (1–3600)', intRange(1, 3600), 30)
    .option('--buffer <samples>', 'samples kept while the server is unreachable (10–100000); the oldest are dropped past it', intRange(10, 100_000), 2880)
    .action(async (opts: { server: URL; tokenFile: string; interval: number; buffer: number }) => {
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const token = readTokenFile(opts.tokenFile, log);
      const agent = new HardwareAgent({ serverUrl: opts.server, token, intervalMs: opts.interval * 1000, bufferLimit: opts.buffer, clock: systemClock, collect: collectHostSample, log });
      const onSignal = (signal: string) => {
        log(`hokan agent: ${signal} received, stopping`);
        void agent.stop();
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
      try {
        await agent.run();
      } catch (err) {
        if (err instanceof AgentTokenRefusedError) {
          log(`hokan agent: ${err.message}`);
          process.exitCode = 3;
          return;
        }
        throw err;
      }
    });
}
