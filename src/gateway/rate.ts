import type { Clock } from '../core/clock.js';
import { BoundedMap, sourceKey } from './misuse/index.js';

interface Window {
  second: number;
  count: number;
  flagged: number;
}

/**
 * R12.2 "attempts to make the service unusable": requests per second per source (IPv6 by /64).
 * One counter per source for the current second; bounded like the misuse state, so a flood of
 * distinct sources cannot exhaust memory.
 */
export class SourceRateMonitor {
  readonly #windows = new BoundedMap<string, Window>(50_000);

  constructor(
    private readonly clock: Clock,
    readonly limitPerSecond: number,
  ) {}

  /** Counts one request; true when this source has just gone over the limit in this second. */
  hit(ip: string): { over: boolean; count: number; firstOver: boolean } {
    const key = sourceKey(ip);
    const second = Math.floor(this.clock.now().getTime() / 1000);
    const w = this.#windows.getOrCreate(key, () => ({ second, count: 0, flagged: 0 }));
    if (w.second !== second) {
      w.second = second;
      w.count = 0;
      w.flagged = 0;
    }
    w.count++;
    const over = w.count > this.limitPerSecond;
    const firstOver = over && w.flagged === 0;
    if (over) w.flagged++;
    return { over, count: w.count, firstOver };
  }
}
