import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { evaluateHardware, pruneSamples, sampleSelf } from './hardware-samples.js';

export const HARDWARE_EVALUATE = 'hardware.evaluate';
export const HARDWARE_PRUNE = 'hardware.prune';

/**
 * R12.3①: silence rules (and interrupted incident openings) every 30 s, and the daily pruning of
 * samples past the retention. Schedules are singleton per tick across instances.
 */
export function registerHardwareJobs(queue: JobQueue, opts: { retentionDays: number }): void {
  queue.register(HARDWARE_EVALUATE, async ({ db, clock }) => {
    await evaluateHardware(db, clock);
  });
  queue.schedule({ name: HARDWARE_EVALUATE, queue: HARDWARE_EVALUATE, everyMs: 30_000 });
  queue.register(HARDWARE_PRUNE, async ({ db, clock }) => {
    await pruneSamples(db, clock, opts.retentionDays);
  });
  // 04:30 JST (19:30 UTC), away from the 02:00 backups.
  queue.schedule({ name: HARDWARE_PRUNE, queue: HARDWARE_PRUNE, everyMs: 86_400_000, offsetMs: 19.5 * 3_600_000 });
}

/**
 * The server samples its own host. Each instance samples the machine it runs on, so this is an
 * in-process timer rather than a cluster-wide schedule (a schedule would run on one instance only).
 */
export class SelfSampler {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(private readonly opts: { db: Db; clock: Clock; everySeconds: number; retentionDays: number; logger?: Logger }) {}

  start(): void {
    if (this.#timer || this.opts.everySeconds <= 0) return;
    const tick = () => {
      if (this.#running) return;
      this.#running = sampleSelf(this.opts.db, this.opts.clock, this.opts.retentionDays)
        .then(() => undefined)
        .catch((err: unknown) => this.opts.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'hardware self-sample failed'))
        .finally(() => (this.#running = undefined));
    };
    this.#timer = setInterval(tick, this.opts.everySeconds * 1000);
    this.#timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
