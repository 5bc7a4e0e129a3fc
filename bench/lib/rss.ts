import fs from 'node:fs';

export const MIB = 1024 * 1024;

/**
 * Samples the process's resident set size every `intervalMs` while a phase runs. Sampling runs on
 * the event loop, so a long synchronous stretch (PGlite executes a query synchronously in WASM)
 * can hide a short spike between two samples; on Linux the kernel's own high-water mark
 * (VmHWM, reset through /proc/self/clear_refs) is read as well and catches those.
 */
export class RssSampler {
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #peak = 0;
  #samples = 0;
  #hwmReset = false;

  constructor(intervalMs = 50) {
    this.#intervalMs = intervalMs;
  }

  start(): void {
    if (this.#timer) throw new Error('RssSampler already started');
    this.#hwmReset = resetHighWaterMark();
    this.#peak = process.memoryUsage.rss();
    this.#samples = 1;
    this.#timer = setInterval(() => {
      const rss = process.memoryUsage.rss();
      if (rss > this.#peak) this.#peak = rss;
      this.#samples++;
    }, this.#intervalMs);
  }

  /** Peak of the samples, and the kernel's high-water mark when it could be reset at start(). */
  stop(): { peakBytes: number; hwmBytes: number | null; samples: number } {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const rss = process.memoryUsage.rss();
    if (rss > this.#peak) this.#peak = rss;
    return { peakBytes: this.#peak, hwmBytes: this.#hwmReset ? readHighWaterMark() : null, samples: this.#samples + 1 };
  }
}

/** Linux: writing 5 to clear_refs resets VmHWM to the current RSS. */
function resetHighWaterMark(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return readHighWaterMark() !== null;
  } catch {
    return false;
  }
}

function readHighWaterMark(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
