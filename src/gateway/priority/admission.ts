import { systemClock, type Clock } from '../../core/clock.js';

/** What admission needs to know of a request; `path` is best the route pattern, not the raw URL. */
export interface AdmissionRequest {
  method: string;
  path: string;
  principalKind?: string;
}

/** A priority class: checked in the order given; the first match wins. */
export interface PriorityClass {
  name: string;
  match: (req: AdmissionRequest) => boolean;
  /** Slots only this class may use; on top of them it may use free shared slots. */
  reservedSlots: number;
}

/** Injected so that tests drive queue time-outs without sleeping. */
export interface AdmissionTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface AdmissionOptions {
  /** In-flight requests the instance handles at once, all classes together. */
  maxConcurrent: number;
  classes: PriorityClass[];
  /** How long `admit()` may hold a request waiting for a slot; 0 or absent: no waiting. */
  maxQueueMs?: number;
  /** Waiting requests, all classes together (default `maxConcurrent`); beyond it, refused at once. */
  maxQueueLength?: number;
  /** During a declared emergency, standard traffic may use this fraction of the shared slots (default 0.2). */
  emergencyStandardFraction?: number;
  /** Overload by latency: when the latency EWMA is above this, the standard limit shrinks. Absent: off. */
  latencyThresholdMs?: number;
  /** Weight of a new latency sample in the EWMA (default 0.2). */
  ewmaAlpha?: number;
  /** Multiplicative decrease of the standard limit (default 0.5). */
  aimdDecreaseFactor?: number;
  /** Additive recovery of the standard limit (default 1 slot). */
  aimdIncreaseStep?: number;
  /** The limit is adjusted once per this many latency samples (default 10). */
  aimdAdjustEvery?: number;
  /** Retry-After for a refusal (default 1 s), and during a declared emergency (default 30 s). */
  retryAfterSeconds?: number;
  emergencyRetryAfterSeconds?: number;
  clock?: Clock;
  timers?: AdmissionTimers;
}

export const STANDARD_CLASS = 'standard';

export type Admission =
  | { admitted: true; release(): void; class: string }
  | { admitted: false; retryAfterSeconds: number; class: string };

export interface AdmissionClassStats {
  reservedSlots: number;
  admitted: number;
  rejected: number;
  inFlight: number;
  queued: number;
}

export interface AdmissionStats {
  maxConcurrent: number;
  sharedSlots: number;
  /** What standard traffic may use now (shared slots, narrowed by emergency and by latency). */
  standardLimit: number;
  /** The latency-driven part of that limit. */
  aimdLimit: number;
  latencyEwmaMs: number | null;
  emergency: { on: boolean; reason: string | null; since: string | null };
  classes: Record<string, AdmissionClassStats>;
}

interface ClassState {
  name: string;
  reserved: number;
  priority: boolean;
  admitted: number;
  rejected: number;
  inFlight: number;
  waiters: Waiter[];
}

interface Waiter {
  state: ClassState;
  resolve: (a: Admission) => void;
  timer: unknown;
}

const defaultTimers: AdmissionTimers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

function check(ok: boolean, message: string): void {
  if (!ok) throw new Error(`AdmissionController: ${message}`);
}

/**
 * Priority under congestion (R13.1): communications urgent for the public interest are handled
 * first and the rest may be restricted. Slots are split into reserved slots per priority class
 * and shared slots. Standard traffic only ever uses shared slots, so it can never take a reserved
 * slot away from priority traffic; priority classes use their reserved slots and then any free
 * shared slot, and queued priority requests are served before standard ones.
 *
 * Standard traffic is narrowed further by an operator-declared emergency (a fraction of the shared
 * slots) and by latency (AIMD on an EWMA of observed latencies), never below one slot.
 * Everything is synchronous bookkeeping; nothing here sleeps or polls.
 */
export class AdmissionController {
  readonly #maxConcurrent: number;
  readonly #shared: number;
  readonly #classes: Array<{ def: PriorityClass; state: ClassState }>;
  readonly #standard: ClassState;
  readonly #byName = new Map<string, ClassState>();
  readonly #maxQueueMs: number;
  readonly #maxQueueLength: number;
  readonly #fraction: number;
  readonly #threshold: number | undefined;
  readonly #alpha: number;
  readonly #factor: number;
  readonly #step: number;
  readonly #every: number;
  readonly #retryAfter: number;
  readonly #emergencyRetryAfter: number;
  readonly #clock: Clock;
  readonly #timers: AdmissionTimers;
  #queued = 0;
  #ewma: number | null = null;
  #samples = 0;
  #aimdLimit: number;
  #emergency: { on: boolean; reason: string | null; since: string | null } = { on: false, reason: null, since: null };

  constructor(options: AdmissionOptions) {
    const o = options;
    check(Number.isSafeInteger(o.maxConcurrent) && o.maxConcurrent >= 1, 'maxConcurrent must be a positive integer');
    const names = new Set<string>();
    let reserved = 0;
    for (const c of o.classes) {
      check(c.name.length > 0 && c.name !== STANDARD_CLASS && !names.has(c.name), `class name "${c.name}" must be non-empty, unique and not "${STANDARD_CLASS}"`);
      check(Number.isSafeInteger(c.reservedSlots) && c.reservedSlots >= 0, `reservedSlots of "${c.name}" must be a non-negative integer`);
      names.add(c.name);
      reserved += c.reservedSlots;
    }
    check(reserved < o.maxConcurrent, 'the reserved slots must leave at least one shared slot');
    this.#maxConcurrent = o.maxConcurrent;
    this.#shared = o.maxConcurrent - reserved;
    this.#maxQueueMs = o.maxQueueMs ?? 0;
    this.#maxQueueLength = o.maxQueueLength ?? o.maxConcurrent;
    this.#fraction = o.emergencyStandardFraction ?? 0.2;
    this.#threshold = o.latencyThresholdMs;
    this.#alpha = o.ewmaAlpha ?? 0.2;
    this.#factor = o.aimdDecreaseFactor ?? 0.5;
    this.#step = o.aimdIncreaseStep ?? 1;
    this.#every = o.aimdAdjustEvery ?? 10;
    this.#retryAfter = o.retryAfterSeconds ?? 1;
    this.#emergencyRetryAfter = o.emergencyRetryAfterSeconds ?? 30;
    check(this.#maxQueueMs >= 0 && Number.isFinite(this.#maxQueueMs), 'maxQueueMs must be a non-negative number');
    check(Number.isSafeInteger(this.#maxQueueLength) && this.#maxQueueLength >= 0, 'maxQueueLength must be a non-negative integer');
    check(this.#fraction >= 0 && this.#fraction <= 1, 'emergencyStandardFraction must be within [0, 1]');
    check(this.#threshold === undefined || (Number.isFinite(this.#threshold) && this.#threshold > 0), 'latencyThresholdMs must be positive');
    check(this.#alpha > 0 && this.#alpha <= 1, 'ewmaAlpha must be within (0, 1]');
    check(this.#factor > 0 && this.#factor < 1, 'aimdDecreaseFactor must be within (0, 1)');
    check(Number.isSafeInteger(this.#step) && this.#step >= 1, 'aimdIncreaseStep must be a positive integer');
    check(Number.isSafeInteger(this.#every) && this.#every >= 1, 'aimdAdjustEvery must be a positive integer');
    check(Number.isSafeInteger(this.#retryAfter) && this.#retryAfter >= 1, 'retryAfterSeconds must be a positive integer');
    check(Number.isSafeInteger(this.#emergencyRetryAfter) && this.#emergencyRetryAfter >= 1, 'emergencyRetryAfterSeconds must be a positive integer');
    this.#aimdLimit = this.#shared;
    this.#clock = o.clock ?? systemClock;
    this.#timers = o.timers ?? defaultTimers;
    const state = (name: string, reservedSlots: number, priority: boolean): ClassState => {
      const s: ClassState = { name, reserved: reservedSlots, priority, admitted: 0, rejected: 0, inFlight: 0, waiters: [] };
      this.#byName.set(name, s);
      return s;
    };
    this.#classes = o.classes.map((def) => ({ def, state: state(def.name, def.reservedSlots, true) }));
    this.#standard = state(STANDARD_CLASS, 0, false);
  }

  /** The class a request falls in: the first matching priority class, else `standard`. */
  classify(req: AdmissionRequest): string {
    return this.#classOf(req).name;
  }

  /** Admits now or refuses now. */
  tryAdmit(req: AdmissionRequest): Admission {
    const s = this.#classOf(req);
    return this.#admitNow(s) ?? this.#reject(s);
  }

  /**
   * Admits now, or waits up to `maxQueueMs` for a slot (priority waiters are served first), or
   * refuses. Without `maxQueueMs` it is `tryAdmit`.
   */
  admit(req: AdmissionRequest): Promise<Admission> {
    const s = this.#classOf(req);
    const now = this.#admitNow(s);
    if (now) return Promise.resolve(now);
    if (this.#maxQueueMs <= 0 || this.#queued >= this.#maxQueueLength) return Promise.resolve(this.#reject(s));
    return new Promise<Admission>((resolve) => {
      const waiter: Waiter = { state: s, resolve, timer: undefined };
      waiter.timer = this.#timers.setTimeout(() => {
        const i = s.waiters.indexOf(waiter);
        if (i < 0) return;
        s.waiters.splice(i, 1);
        this.#queued--;
        resolve(this.#reject(s));
      }, this.#maxQueueMs);
      s.waiters.push(waiter);
      this.#queued++;
    });
  }

  /** Operator-declared emergency (R13.1): standard traffic is narrowed to a fraction of the shared slots. */
  declareEmergency(on: boolean, reason: string, since?: string): AdmissionStats['emergency'] {
    this.#emergency = on ? { on: true, reason, since: since ?? (this.#emergency.on ? this.#emergency.since : this.#clock.now().toISOString()) } : { on: false, reason: null, since: null };
    if (!on) this.#drain();
    return { ...this.#emergency };
  }

  /**
   * One observed request latency. The limit for standard traffic is adjusted once per
   * `aimdAdjustEvery` samples: halved (by default) while the EWMA is above the threshold, raised by
   * one slot while it is not; never below 1, never above the shared slots.
   */
  observeLatency(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#ewma = this.#ewma === null ? ms : this.#alpha * ms + (1 - this.#alpha) * this.#ewma;
    if (this.#threshold === undefined) return;
    this.#samples++;
    if (this.#samples < this.#every) return;
    this.#samples = 0;
    if (this.#ewma > this.#threshold) {
      this.#aimdLimit = Math.max(1, Math.floor(this.#aimdLimit * this.#factor));
    } else if (this.#aimdLimit < this.#shared) {
      this.#aimdLimit = Math.min(this.#shared, this.#aimdLimit + this.#step);
      this.#drain();
    }
  }

  stats(): AdmissionStats {
    const classes: Record<string, AdmissionClassStats> = {};
    for (const s of this.#byName.values()) {
      classes[s.name] = { reservedSlots: s.reserved, admitted: s.admitted, rejected: s.rejected, inFlight: s.inFlight, queued: s.waiters.length };
    }
    return {
      maxConcurrent: this.#maxConcurrent,
      sharedSlots: this.#shared,
      standardLimit: this.#standardLimit(),
      aimdLimit: this.#aimdLimit,
      latencyEwmaMs: this.#ewma,
      emergency: { ...this.#emergency },
      classes,
    };
  }

  #classOf(req: AdmissionRequest): ClassState {
    for (const c of this.#classes) if (c.def.match(req)) return c.state;
    return this.#standard;
  }

  #standardLimit(): number {
    let limit = Math.min(this.#shared, this.#aimdLimit);
    if (this.#emergency.on) {
      const share = Math.floor(this.#fraction * this.#shared);
      limit = Math.min(limit, this.#fraction > 0 ? Math.max(1, share) : 0);
    }
    return limit;
  }

  #sharedInUse(): number {
    let n = this.#standard.inFlight;
    for (const c of this.#classes) n += Math.max(0, c.state.inFlight - c.state.reserved);
    return n;
  }

  #fits(s: ClassState): boolean {
    const sharedFree = this.#sharedInUse() < this.#shared;
    if (s.priority) return s.inFlight < s.reserved || sharedFree;
    return sharedFree && s.inFlight < this.#standardLimit();
  }

  /** A new request (not a waiter) does not overtake waiters of its class, and standard does not overtake priority. */
  #admitNow(s: ClassState): Admission | null {
    if (s.waiters.length > 0) return null;
    if (!s.priority && this.#classes.some((c) => c.state.waiters.length > 0)) return null;
    return this.#fits(s) ? this.#take(s) : null;
  }

  #take(s: ClassState): Admission {
    s.inFlight++;
    s.admitted++;
    let released = false;
    return {
      admitted: true,
      class: s.name,
      release: () => {
        if (released) return;
        released = true;
        s.inFlight--;
        this.#drain();
      },
    };
  }

  #reject(s: ClassState): Admission {
    s.rejected++;
    return { admitted: false, class: s.name, retryAfterSeconds: this.#emergency.on ? this.#emergencyRetryAfter : this.#retryAfter };
  }

  /** Hands free slots to waiters: priority classes in their order first, then standard; FIFO within a class. */
  #drain(): void {
    if (this.#queued === 0) return;
    for (const s of [...this.#classes.map((c) => c.state), this.#standard]) {
      while (s.waiters.length > 0 && this.#fits(s)) {
        const w = s.waiters.shift()!;
        this.#queued--;
        this.#timers.clearTimeout(w.timer);
        w.resolve(this.#take(s));
      }
    }
  }
}
