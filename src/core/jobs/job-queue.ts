import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { isConnectionError, type ConnectionHealth } from '../db/connection-health.js';
import type { Db, DbOrTx } from '../db/database.js';

export interface JobContext<P> {
  id: string;
  queue: string;
  payload: P;
  attempt: number;
  db: Db;
  clock: Clock;
  /** Aborted when this instance hands the job back at shutdown; long handlers may stop early. */
  signal: AbortSignal;
}

export type JobHandler<P = unknown> = (job: JobContext<P>) => Promise<void>;

export interface ScheduleDefinition {
  /** Unique name; with the tick time it forms the job's singleton key. */
  name: string;
  queue: string;
  everyMs: number;
  /** Shifts the tick grid, e.g. to run a daily job at 02:00 JST (17:00 UTC). */
  offsetMs?: number;
  payload?: Record<string, unknown>;
}

export interface EnqueueOptions {
  runAt?: Date;
  /** A second enqueue with the same key is dropped: the basis of "exactly once per tick". */
  singletonKey?: string;
  maxAttempts?: number;
}

export interface JobQueueOptions {
  db: Db;
  clock: Clock;
  instanceId: string;
  logger?: Logger;
  /**
   * How long a taken job stays ours without renewal; a crashed instance's jobs are taken again after
   * this. A running instance renews the leases it holds every third of it, so a long job (a backup)
   * is never taken by a second instance while the first is still working on it.
   */
  leaseMs?: number;
  batchSize?: number;
  /** Where poll failures caused by an unreachable database are reported (logged once per outage). */
  health?: ConnectionHealth;
}

export type JobQueueState = 'idle' | 'running' | 'stopping' | 'stopped';

export interface StopResult {
  /** Jobs that were still running or claimed at the deadline and were given back to the queue. */
  handedBack: number;
  /** Whether every job in hand finished before the deadline. */
  finished: boolean;
}

const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 15 * 60_000;

/**
 * The job queue lives in the same PostgreSQL (or PGlite) database as the data, so a state change
 * and the job it causes commit together. Instances claim work with FOR UPDATE SKIP LOCKED, and
 * scheduled ticks are singleton rows, so two instances never run the same tick twice. Time comes
 * from the injectable clock, never from the database's now(), so tests drive schedules directly.
 */
export class JobQueue {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #instanceId: string;
  readonly #logger: Logger | undefined;
  readonly #leaseMs: number;
  readonly #batchSize: number;
  readonly #health: ConnectionHealth | undefined;
  /** Claimed by this instance and not yet settled: renewed by the heartbeat, handed back at stop. */
  readonly #held = new Map<string, AbortController>();
  #heartbeat: NodeJS.Timeout | undefined;
  #state: JobQueueState = 'idle';
  #lastPollOkAt: number | null = null;
  readonly #handlers = new Map<string, { handler: JobHandler<never>; maxAttempts: number }>();
  readonly #schedules: ScheduleDefinition[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: JobQueueOptions) {
    this.#db = opts.db;
    this.#clock = opts.clock;
    this.#instanceId = opts.instanceId;
    this.#logger = opts.logger;
    this.#leaseMs = opts.leaseMs ?? 5 * 60_000;
    this.#batchSize = opts.batchSize ?? 10;
    this.#health = opts.health;
  }

  get state(): JobQueueState {
    return this.#state;
  }

  get instanceId(): string {
    return this.#instanceId;
  }

  /** Milliseconds (monotonic) since the last poll that reached the database; null before the first. */
  get msSinceLastPoll(): number | null {
    return this.#lastPollOkAt === null ? null : Math.round(performance.now() - this.#lastPollOkAt);
  }

  register<P>(queue: string, handler: JobHandler<P>, opts: { maxAttempts?: number } = {}): void {
    if (this.#handlers.has(queue)) throw new Error(`job queue "${queue}" has a handler already`);
    this.#handlers.set(queue, { handler: handler as JobHandler<never>, maxAttempts: opts.maxAttempts ?? 5 });
  }

  schedule(def: ScheduleDefinition): void {
    if (def.everyMs < 1000) throw new Error(`schedule "${def.name}": everyMs must be at least 1000`);
    if (this.#schedules.some((s) => s.name === def.name)) throw new Error(`schedule "${def.name}" is defined twice`);
    this.#schedules.push(def);
  }

  get schedules(): readonly ScheduleDefinition[] {
    return this.#schedules;
  }

  /** Enqueues inside the caller's transaction when given one. Returns null when a singleton already exists. */
  async enqueue(dbOrTx: DbOrTx, queue: string, payload: unknown, opts: EnqueueOptions = {}): Promise<string | null> {
    const now = this.#clock.now();
    const row = await dbOrTx
      .insertInto('jobs')
      .values({
        id: randomUUID(),
        queue,
        payload: JSON.stringify(payload ?? {}),
        state: 'queued',
        singleton_key: opts.singletonKey ?? null,
        run_at: opts.runAt ?? now,
        attempts: 0,
        max_attempts: opts.maxAttempts ?? this.#handlers.get(queue)?.maxAttempts ?? 5,
        created_at: now,
      })
      .onConflict((oc) => oc.column('singleton_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    return row?.id ?? null;
  }

  /** The start of the tick that contains `at` for a schedule. */
  static tickOf(def: ScheduleDefinition, at: Date): Date {
    const offset = def.offsetMs ?? 0;
    return new Date(Math.floor((at.getTime() - offset) / def.everyMs) * def.everyMs + offset);
  }

  /** Creates the current tick's job of every schedule (idempotent across instances). */
  async enqueueDueTicks(): Promise<number> {
    let created = 0;
    for (const def of this.#schedules) {
      const tick = JobQueue.tickOf(def, this.#clock.now());
      const id = await this.enqueue(this.#db, def.queue, { ...def.payload, scheduledFor: tick.toISOString() }, {
        runAt: tick,
        singletonKey: `schedule:${def.name}@${tick.toISOString()}`,
      });
      if (id) created++;
    }
    return created;
  }

  /** Puts jobs whose lease ran out (their instance died) back in the queue. */
  async reclaimExpiredLeases(): Promise<number> {
    const res = await this.#db
      .updateTable('jobs')
      .set({ state: 'queued', locked_by: null, locked_until: null })
      .where('state', '=', 'active')
      .where('locked_until', '<', this.#clock.now())
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /** Claims and runs due jobs until none is left; returns how many ran. */
  async runDueJobs(maxJobs = 1000): Promise<number> {
    let ran = 0;
    while (ran < maxJobs && !this.#stopped) {
      const queues = [...this.#handlers.keys()];
      if (queues.length === 0) return ran;
      const now = this.#clock.now();
      const claimed = await this.#db
        .updateTable('jobs')
        .set((eb) => ({
          state: 'active',
          attempts: eb('attempts', '+', 1),
          locked_by: this.#instanceId,
          locked_until: new Date(now.getTime() + this.#leaseMs),
        }))
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('jobs')
            .select('id')
            .where('state', '=', 'queued')
            .where('run_at', '<=', now)
            .where('queue', 'in', queues)
            .orderBy('run_at')
            .limit(this.#batchSize)
            .forUpdate()
            .skipLocked(),
        )
        .returningAll()
        .execute();
      if (claimed.length === 0) return ran;
      for (const job of claimed) this.#held.set(job.id, new AbortController());
      for (const job of claimed) {
        // Stopping: the claims not started yet go back to the queue at once, for another instance.
        if (this.#stopped) {
          await this.#handBack([job.id]);
          continue;
        }
        await this.#runOne(job.id, job.queue, job.payload, job.attempts, job.max_attempts);
        ran++;
      }
    }
    return ran;
  }

  /** Extends the leases of the jobs this instance holds (called by the heartbeat while started). */
  async renewLeases(): Promise<number> {
    const ids = [...this.#held.keys()];
    if (ids.length === 0) return 0;
    const res = await this.#db
      .updateTable('jobs')
      .set({ locked_until: new Date(this.#clock.now().getTime() + this.#leaseMs) })
      .where('id', 'in', ids)
      .where('state', '=', 'active')
      .where('locked_by', '=', this.#instanceId)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /**
   * Gives jobs back to the queue, due at once, without counting the attempt: another instance takes
   * them on its next poll instead of waiting for the lease to run out. Settling them later from
   * here is a no-op, since every settlement requires locked_by to still be this instance.
   */
  async #handBack(ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    for (const id of ids) {
      this.#held.get(id)?.abort(new Error('job handed back: instance shutting down'));
      this.#held.delete(id);
    }
    const res = await this.#db
      .updateTable('jobs')
      .set((eb) => ({ state: 'queued', locked_by: null, locked_until: null, run_at: this.#clock.now(), attempts: eb('attempts', '-', 1) }))
      .where('id', 'in', ids)
      .where('state', '=', 'active')
      .where('locked_by', '=', this.#instanceId)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async #runOne(id: string, queue: string, rawPayload: unknown, attempt: number, maxAttempts: number): Promise<void> {
    const entry = this.#handlers.get(queue);
    if (!entry) {
      this.#held.delete(id);
      return;
    }
    const payload = typeof rawPayload === 'string' ? (JSON.parse(rawPayload) as unknown) : rawPayload;
    const abort = this.#held.get(id) ?? new AbortController();
    try {
      await entry.handler({ id, queue, payload: payload as never, attempt, db: this.#db, clock: this.#clock, signal: abort.signal });
      this.#held.delete(id);
      await this.#db
        .updateTable('jobs')
        .set({ state: 'completed', completed_at: this.#clock.now(), locked_until: null, last_error: null })
        .where('id', '=', id)
        .where('locked_by', '=', this.#instanceId)
        .execute();
    } catch (err) {
      // Handed back meanwhile: the job is no longer ours to settle.
      if (abort.signal.aborted) return;
      this.#held.delete(id);
      const message = err instanceof Error ? err.message : String(err);
      const giveUp = attempt >= maxAttempts;
      const delay = Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
      this.#logger?.error({ job: id, queue, attempt, err: message, giveUp }, 'job failed');
      await this.#db
        .updateTable('jobs')
        .set({
          state: giveUp ? 'failed' : 'queued',
          run_at: new Date(this.#clock.now().getTime() + delay),
          locked_by: null,
          locked_until: null,
          last_error: message.slice(0, 2000),
        })
        .where('id', '=', id)
        .where('locked_by', '=', this.#instanceId)
        .execute();
    }
  }

  /** One pass of everything an instance does: ticks, reclaim, run. */
  async poll(): Promise<void> {
    await this.enqueueDueTicks();
    await this.reclaimExpiredLeases();
    this.#lastPollOkAt = performance.now();
    this.#health?.succeeded();
    await this.runDueJobs();
  }

  #reportFailure(err: unknown, what: string): void {
    // An unreachable database is one outage, logged once by the health tracker; anything else is a bug to see.
    if (this.#health && isConnectionError(err)) this.#health.failed(err, what);
    else this.#logger?.error({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
  }

  start(pollMs: number): void {
    this.#stopped = false;
    this.#state = 'running';
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.poll()
        .catch((err: unknown) => this.#reportFailure(err, 'job poll'))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(loop, pollMs);
        });
    };
    loop();
    this.#heartbeat = setInterval(() => {
      this.renewLeases().catch((err: unknown) => this.#reportFailure(err, 'job lease renewal'));
    }, Math.max(1000, Math.floor(this.#leaseMs / 3)));
    this.#heartbeat.unref();
  }

  /**
   * Stops taking work. Jobs in hand may finish until the deadline; those still running then (and
   * any claimed but not started) are handed back so another instance takes them at once, and
   * their handlers see their signal aborted. Without a deadline, waits for the job in hand.
   */
  async stop(opts: { timeoutMs?: number } = {}): Promise<StopResult> {
    this.#stopped = true;
    if (this.#state !== 'idle') this.#state = 'stopping';
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    const running = this.#running ?? Promise.resolve();
    let finished = true;
    if (opts.timeoutMs === undefined) await running;
    else {
      let timer: NodeJS.Timeout | undefined;
      finished = await Promise.race([running.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), opts.timeoutMs)))]);
      clearTimeout(timer);
    }
    let handedBack = 0;
    if (this.#held.size > 0) {
      try {
        handedBack = await this.#handBack([...this.#held.keys()]);
        // The handlers saw their signal aborted: a moment to give back what they hold (e.g. claimed e-mails) while the database is still open.
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([running, new Promise<void>((resolve) => (grace = setTimeout(resolve, 2_000)))]);
        clearTimeout(grace);
      } catch (err) {
        // The database is gone: the jobs return when their lease runs out, as after a crash.
        this.#reportFailure(err, 'job hand-back');
      }
    }
    this.#state = 'stopped';
    return { handedBack, finished };
  }
}
