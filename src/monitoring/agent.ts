import type { Clock } from '../core/clock.js';
import type { HardwareSample } from './hardware-metrics.js';

/**
 * R12.3①: `hokan agent` — samples this host every interval and pushes the samples to the server
 * (`POST /api/v1/hardware/samples` with the host's push token). While the server cannot be
 * reached, samples wait in a bounded in-memory buffer (the oldest are dropped past the limit) and
 * pushes are retried with exponential backoff and jitter. The server ignores a sample it already
 * has, so a push retried after a lost answer stores nothing twice.
 */

export interface AgentOptions {
  serverUrl: URL;
  token: string;
  intervalMs: number;
  bufferLimit: number;
  clock: Clock;
  collect: (at: Date) => Promise<HardwareSample>;
  log: (line: string) => void;
  /** Samples per push; the server's body limit is 1 MiB. */
  batchSize?: number;
  requestTimeoutMs?: number;
}

export const BACKOFF_BASE_MS = 2_000;
export const BACKOFF_MAX_MS = 5 * 60_000;

/** The wait after `failures` failed pushes in a row: 2 s, 4 s, 8 s … at most 5 min, ±20 % jitter. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1), BACKOFF_MAX_MS);
  return Math.round(base * (0.8 + 0.4 * random()));
}

export class AgentTokenRefusedError extends Error {
  constructor() {
    super('the server refused the push token (401): issue a new one with POST /api/v1/hardware/hosts/{id}/token');
    this.name = 'AgentTokenRefusedError';
  }
}

type PushOutcome = 'ok' | 'retry' | 'refused';

export class HardwareAgent {
  readonly #o: Required<AgentOptions>;
  readonly #buffer: HardwareSample[] = [];
  #failures = 0;
  #nextPushAt = 0;
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #stopped = false;
  #done: { resolve: () => void; reject: (e: Error) => void } | undefined;
  pushed = 0;

  constructor(opts: AgentOptions) {
    this.#o = { batchSize: 100, requestTimeoutMs: 10_000, ...opts };
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  get endpoint(): string {
    return new URL('api/v1/hardware/samples', this.#o.serverUrl.href.endsWith('/') ? this.#o.serverUrl : `${this.#o.serverUrl.href}/`).href;
  }

  /** Runs until stop() (resolves) or until the server refuses the token (rejects). */
  run(): Promise<void> {
    const finished = new Promise<void>((resolve, reject) => (this.#done = { resolve, reject }));
    this.#o.log(`hokan agent: sampling every ${this.#o.intervalMs / 1000} s, pushing to ${this.endpoint} (buffer ${this.#o.bufferLimit} samples)`);
    const loop = () => {
      if (this.#stopped) return;
      this.#busy = this.#tick().finally(() => {
        this.#busy = undefined;
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs);
      });
    };
    loop();
    return finished;
  }

  async #tick(): Promise<void> {
    try {
      this.#add(await this.#o.collect(this.#o.clock.now()));
    } catch (err) {
      this.#o.log(`hokan agent: sampling failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (this.#o.clock.now().getTime() >= this.#nextPushAt) await this.#flush();
  }

  #add(sample: HardwareSample): void {
    this.#buffer.push(sample);
    const over = this.#buffer.length - this.#o.bufferLimit;
    if (over > 0) {
      this.#buffer.splice(0, over);
      this.#dropped += over;
      this.#o.log(`hokan agent: buffer full, dropped the ${over} oldest sample(s) (${this.#dropped} so far)`);
    }
  }

  async #flush(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.slice(0, this.#o.batchSize);
      const outcome = await this.#push(batch);
      if (outcome === 'refused') {
        this.#finish(new AgentTokenRefusedError());
        return;
      }
      if (outcome === 'retry') {
        this.#failures++;
        const wait = backoffMs(this.#failures);
        this.#nextPushAt = this.#o.clock.now().getTime() + wait;
        this.#o.log(`hokan agent: push failed (${this.#failures} in a row); ${this.#buffer.length} sample(s) buffered; next try in ${Math.round(wait / 1000)} s`);
        return;
      }
      // Pushed, or refused as invalid (which no retry can fix): either way these samples are done.
      this.#buffer.splice(0, batch.length);
      if (this.#failures > 0) this.#o.log(`hokan agent: server reachable again after ${this.#failures} failed push(es)`);
      this.#failures = 0;
      this.#nextPushAt = 0;
    }
  }

  async #push(batch: HardwareSample[]): Promise<PushOutcome> {
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#o.token}` },
        body: JSON.stringify({ samples: batch }),
        signal: AbortSignal.timeout(this.#o.requestTimeoutMs),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      this.#o.log(`hokan agent: cannot reach ${this.endpoint}: ${cause}`);
      return 'retry';
    }
    const body = await res.text().catch(() => '');
    if (res.status === 202) {
      this.pushed += batch.length;
      this.#o.log(`hokan agent: pushed ${batch.length} sample(s)`);
      return 'ok';
    }
    if (res.status === 401) return 'refused';
    if (res.status === 400 || res.status === 413) {
      this.#o.log(`hokan agent: the server refused ${batch.length} sample(s) as invalid (${res.status}): ${body.slice(0, 500)}`);
      return 'ok';
    }
    this.#o.log(`hokan agent: server answered ${res.status}: ${body.slice(0, 200)}`);
    return 'retry';
  }

  #finish(err?: Error): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const done = this.#done;
    this.#done = undefined;
    if (err) done?.reject(err);
    else done?.resolve();
  }

  /** Stops sampling; one last push of what is buffered (unless the server is backing us off), then resolves run(). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#busy;
    if (this.#buffer.length > 0 && this.#failures === 0) await this.#flush();
    if (this.#buffer.length > 0) this.#o.log(`hokan agent: stopping with ${this.#buffer.length} sample(s) not pushed`);
    this.#o.log(`hokan agent: stopped (${this.pushed} sample(s) pushed)`);
    this.#finish();
  }
}
