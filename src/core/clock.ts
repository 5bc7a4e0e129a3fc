/**
 * All "now" in hokan comes from a Clock, so that "daily", "30 days' notice" and "24 hours"
 * are tested by moving time instead of waiting for it.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = {
  now: () => new Date(),
};

/** A clock that only moves when told to; for tests and for replaying schedules. */
export class ManualClock implements Clock {
  #ms: number;

  constructor(start: Date | string) {
    this.#ms = new Date(start).getTime();
    if (Number.isNaN(this.#ms)) throw new Error(`ManualClock: invalid start time ${String(start)}`);
  }

  now(): Date {
    return new Date(this.#ms);
  }

  set(to: Date | string): void {
    const ms = new Date(to).getTime();
    if (Number.isNaN(ms)) throw new Error(`ManualClock: invalid time ${String(to)}`);
    this.#ms = ms;
  }

  advance(ms: number): Date {
    this.#ms += ms;
    return this.now();
  }

  advanceDays(days: number): Date {
    return this.advance(days * 86_400_000);
  }
}
