import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

export const MIB = 1024 * 1024;

/**
 * Samples the process's resident set size every `intervalMs` while a phase runs. Sampling runs on
 * the event loop, so a long synchronous stretch can hide a short spike between two samples; on Linux the kernel's own high-water mark
 * (VmHWM, reset through /proc/self/clear_refs) is read as well and catches those.
 */
export interface MemoryPeaks {
  /** Peak of the RSS samples. */
  peakBytes: number;
  /** Kernel high-water mark over the phase, when it could be reset at start(); else null. */
  hwmBytes: number | null;
  samples: number;
  /**
   * Where memory lives, to tell this process's JavaScript from what else is resident. `external`
   * includes WebAssembly memory as well as Buffers (`arrayBuffers`).
   */
  before: { heapUsed: number; arrayBuffers: number; external: number };
  peak: { heapUsed: number; arrayBuffers: number; external: number };
  /**
   * Peaks in the first and the second half of the phase. Memory that grows with the data processed
   * shows as a second half clearly above the first; a bounded pipeline shows two similar figures.
   */
  halves: { rss: [number, number]; heapUsed: [number, number] };
  /**
   * The database's own process (embedded PGlite, decision 0029), when one was given: its RSS peak
   * over the phase (samples and, on Linux, its kernel high-water mark), or null.
   */
  databaseProcessPeakBytes: number | null;
}

export class RssSampler {
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #peak = 0;
  #samples = 0;
  #hwmReset = false;
  #before = { heapUsed: 0, arrayBuffers: 0, external: 0 };
  #peakParts = { heapUsed: 0, arrayBuffers: 0, external: 0 };
  #trace: Array<{ t: number; rss: number; heapUsed: number }> = [];

  readonly #databasePid: () => number | undefined;
  #dbPeak: number | null = null;
  #dbHwmPid: number | undefined;

  constructor(intervalMs = 50, databasePid: () => number | undefined = () => undefined) {
    this.#intervalMs = intervalMs;
    this.#databasePid = databasePid;
  }

  start(): void {
    if (this.#timer) throw new Error('RssSampler already started');
    this.#hwmReset = resetHighWaterMark();
    this.#dbPeak = null;
    this.#dbHwmPid = this.#databasePid();
    if (this.#dbHwmPid !== undefined && !resetHighWaterMark(this.#dbHwmPid)) this.#dbHwmPid = undefined;
    const m = process.memoryUsage();
    this.#peak = m.rss;
    this.#before = { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, external: m.external };
    this.#peakParts = { ...this.#before };
    this.#samples = 1;
    this.#trace = [{ t: performance.now(), rss: m.rss, heapUsed: m.heapUsed }];
    this.#timer = setInterval(() => this.#sample(), this.#intervalMs);
  }

  #sample(): void {
    const pid = this.#databasePid();
    const dbRss = pid === undefined ? null : readStatus(pid, 'VmRSS');
    if (dbRss !== null) this.#dbPeak = Math.max(this.#dbPeak ?? 0, dbRss);
    const m = process.memoryUsage();
    if (m.rss > this.#peak) this.#peak = m.rss;
    if (m.heapUsed > this.#peakParts.heapUsed) this.#peakParts.heapUsed = m.heapUsed;
    if (m.arrayBuffers > this.#peakParts.arrayBuffers) this.#peakParts.arrayBuffers = m.arrayBuffers;
    if (m.external > this.#peakParts.external) this.#peakParts.external = m.external;
    this.#samples++;
    this.#trace.push({ t: performance.now(), rss: m.rss, heapUsed: m.heapUsed });
  }

  stop(): MemoryPeaks {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#sample();
    const first = this.#trace[0]!.t;
    const mid = (first + this.#trace[this.#trace.length - 1]!.t) / 2;
    const halves = { rss: [0, 0] as [number, number], heapUsed: [0, 0] as [number, number] };
    for (const x of this.#trace) {
      const h = x.t <= mid ? 0 : 1;
      halves.rss[h] = Math.max(halves.rss[h], x.rss);
      halves.heapUsed[h] = Math.max(halves.heapUsed[h], x.heapUsed);
    }
    this.#trace = [];
    const dbHwm = this.#dbHwmPid !== undefined && this.#dbHwmPid === this.#databasePid() ? readStatus(this.#dbHwmPid, 'VmHWM') : null;
    const databaseProcessPeakBytes = this.#dbPeak === null && dbHwm === null ? null : Math.max(this.#dbPeak ?? 0, dbHwm ?? 0);
    return { databaseProcessPeakBytes, halves, peakBytes: this.#peak, hwmBytes: this.#hwmReset ? readHighWaterMark() : null, samples: this.#samples, before: this.#before, peak: this.#peakParts };
  }
}

/** Linux: writing 5 to clear_refs resets VmHWM to the current RSS. */
function resetHighWaterMark(pid: number | 'self' = 'self'): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return readStatus(pid, 'VmHWM') !== null;
  } catch {
    return false;
  }
}

function readHighWaterMark(): number | null {
  return readStatus('self', 'VmHWM');
}

function readStatus(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let gcFn: (() => void) | null | undefined;

/**
 * Runs a full garbage collection (when V8 allows it), so a phase's "before" figure is live memory,
 * not whatever garbage set-up left behind: without this, rss_before varied by ~350 MB between
 * identical runs depending on when V8 last collected. Returns false when no GC could be forced.
 */
export async function collectGarbage(): Promise<boolean> {
  if (gcFn === undefined) {
    gcFn = null;
    try {
      const v8 = await import('node:v8');
      const vm = await import('node:vm');
      v8.setFlagsFromString('--expose-gc');
      const fn: unknown = vm.runInNewContext('gc');
      if (typeof fn === 'function') gcFn = () => (fn as () => void)();
    } catch {
      gcFn = null;
    }
  }
  if (!gcFn) return false;
  gcFn();
  // A second pass collects what the first one's finalizers (Buffers' backing stores) released.
  await new Promise((resolve) => setImmediate(resolve));
  gcFn();
  return true;
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc/PID/stat; null where that
 * cannot be read. For the embedded database's own process, whose CPU process.cpuUsage() no
 * longer includes (decision 0029).
 */
export function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15, counted from the state (field 3) here; in clock ticks,
    // which are 100 per second on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}
