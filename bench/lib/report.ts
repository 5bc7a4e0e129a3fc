import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Verdict = 'pass' | 'FAIL' | '';

export interface Row {
  metric: string;
  value: string;
  target?: string;
  verdict?: Verdict;
}

/** Plain-text table: metric | value | target | result, then footer lines. */
export function renderTable(title: string, rows: readonly Row[], footer: readonly string[] = []): string {
  const cells = [['metric', 'value', 'target', 'result'], ...rows.map((r) => [r.metric, r.value, r.target ?? '', r.verdict ?? ''])];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((s, i) => (i === 1 ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [title, rule, line(cells[0]!), rule, ...cells.slice(1).map(line), rule, ...footer];
  return `${out.join('\n')}\n`;
}

export const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
export const round = (n: number, digits = 3) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);
export const verdict = (ok: boolean): Verdict => (ok ? 'pass' : 'FAIL');

/** Where bench/results/NAME.json goes. */
export function resultsPath(name: string): string {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');
  return path.join(dir, `${name}.json`);
}

/** Writes bench/results/NAME.json with the machine context every result needs to be read. */
export function writeResults(name: string, results: Record<string, unknown>): string {
  const file = resultsPath(name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const doc = {
    benchmark: name,
    at: new Date().toISOString(),
    machine: { node: process.version, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memMb: Math.round(os.totalmem() / 2 ** 20) },
    ...results,
  };
  fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  return file;
}
