import fs from 'node:fs';
import type { Profiler } from 'node:inspector';
import { Session } from 'node:inspector/promises';

/**
 * CPU profile of one phase of this process (V8's sampling profiler through the inspector), so a
 * benchmark can show where the time of exactly that phase went without profiling its set-up.
 * Open the written .cpuprofile in Chrome DevTools (Performance → Load profile) or VS Code.
 */
export class PhaseProfiler {
  #session: Session | null = null;

  async start(intervalUs = 500): Promise<void> {
    if (this.#session) throw new Error('PhaseProfiler already started');
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    this.#session = session;
  }

  async stop(file: string): Promise<Profiler.Profile> {
    const session = this.#session;
    if (!session) throw new Error('PhaseProfiler not started');
    this.#session = null;
    const { profile } = await session.post('Profiler.stop');
    await session.post('Profiler.disable');
    session.disconnect();
    fs.writeFileSync(file, JSON.stringify(profile));
    return profile;
  }
}

export interface SelfTime {
  name: string;
  ms: number;
  pct: number;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const clean = url.replace(/^file:\/\//, '').replace(/\?.*$/, '');
  const nm = clean.lastIndexOf('node_modules/');
  if (nm >= 0) return clean.slice(nm + 'node_modules/'.length);
  const parts = clean.split('/');
  return parts.slice(-3).join('/');
}

/** Self time per function and per source file, largest first. */
export function selfTimes(profile: Profiler.Profile): { byFunction: SelfTime[]; byFile: SelfTime[]; totalMs: number } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const node = nodes.get(samples[i]!);
    if (!node) continue;
    // The delta after a sample is the time spent in it.
    const us = deltas[i + 1] ?? 0;
    total += us;
    const f = node.callFrame;
    const where = shortUrl(f.url);
    const key = where ? `${f.functionName || '(anonymous)'}  ${where}:${f.lineNumber + 1}` : f.functionName || '(anonymous)';
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fileKey = where || (f.functionName.startsWith('(') ? f.functionName : '(native / builtin)');
    file.set(fileKey, (file.get(fileKey) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, pct: total > 0 ? (100 * us) / total : 0 }));
  return { byFunction: sorted(fn), byFile: sorted(file), totalMs: total / 1000 };
}

export function renderSelfTimes(title: string, profile: Profiler.Profile, top = 15): string {
  const { byFunction, byFile, totalMs } = selfTimes(profile);
  const line = (s: SelfTime) => `  ${s.ms.toFixed(0).padStart(7)} ms ${s.pct.toFixed(1).padStart(5)}%  ${s.name}`;
  return [
    `${title}: ${totalMs.toFixed(0)} ms sampled`,
    ' by file:',
    ...byFile.slice(0, top).map(line),
    ' by function (self time):',
    ...byFunction.slice(0, top).map(line),
    '',
  ].join('\n');
}
