import { describe, expect, it } from 'vitest';
import { AdmissionController, type Admission, type AdmissionOptions, type AdmissionRequest, type AdmissionTimers } from '../../src/gateway/priority/index.js';

const urgentRoutes = new Set(['GET /api/v1/data/records/:collection/:id', 'GET /api/v1/data/files/:fileId']);
const classes: AdmissionOptions['classes'] = [
  { name: 'emergency_care', match: (r) => urgentRoutes.has(`${r.method} ${r.path}`), reservedSlots: 2 },
  { name: 'provider_operations', match: (r) => r.principalKind === 'operator', reservedSlots: 1 },
];
const STD: AdmissionRequest = { method: 'GET', path: '/api/v1/contracts', principalKind: 'customer_user' };
const URGENT: AdmissionRequest = { method: 'GET', path: '/api/v1/data/records/:collection/:id', principalKind: 'api_token' };
const OPS: AdmissionRequest = { method: 'POST', path: '/api/v1/contracts/:id/suspend', principalKind: 'operator' };

function admitted(a: Admission): Extract<Admission, { admitted: true }> {
  if (!a.admitted) throw new Error(`expected admission, got refusal for ${a.class}`);
  return a;
}

function fill(ctl: AdmissionController, req: AdmissionRequest): Array<Extract<Admission, { admitted: true }>> {
  const out: Array<Extract<Admission, { admitted: true }>> = [];
  for (;;) {
    const a = ctl.tryAdmit(req);
    if (!a.admitted) return out;
    out.push(a);
    if (out.length > 10_000) throw new Error('no limit');
  }
}

/** Timers the test fires by hand: no sleeping. */
class FakeTimers implements AdmissionTimers {
  #next = 1;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.pending.set(id, { fn, ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fireAll(): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const t of all) t.fn();
  }
}

describe('R13.1 classes and reserved slots', () => {
  it('classifies in the order given; the rest is standard', () => {
    const ctl = new AdmissionController({ maxConcurrent: 10, classes });
    expect(ctl.classify(URGENT)).toBe('emergency_care');
    expect(ctl.classify({ ...URGENT, principalKind: 'operator' })).toBe('emergency_care'); // first match wins
    expect(ctl.classify(OPS)).toBe('provider_operations');
    expect(ctl.classify(STD)).toBe('standard');
  });

  it('standard traffic saturating the instance never blocks priority admissions', () => {
    const ctl = new AdmissionController({ maxConcurrent: 10, classes });
    const std = fill(ctl, STD);
    expect(std).toHaveLength(7); // 10 − 2 − 1 reserved
    expect(ctl.tryAdmit(STD)).toEqual({ admitted: false, class: 'standard', retryAfterSeconds: 1 });
    expect(admitted(ctl.tryAdmit(URGENT)).class).toBe('emergency_care');
    expect(admitted(ctl.tryAdmit(URGENT)).class).toBe('emergency_care');
    expect(admitted(ctl.tryAdmit(OPS)).class).toBe('provider_operations');
    // Reserved slots used up and shared slots taken by standard: now priority waits for a shared slot.
    expect(ctl.tryAdmit(URGENT).admitted).toBe(false);
    std[0]!.release();
    expect(admitted(ctl.tryAdmit(URGENT)).class).toBe('emergency_care'); // a free shared slot
    expect(ctl.tryAdmit(STD).admitted).toBe(false);
    const s = ctl.stats();
    expect(s.classes).toEqual({
      emergency_care: { reservedSlots: 2, admitted: 3, rejected: 1, inFlight: 3, queued: 0 },
      provider_operations: { reservedSlots: 1, admitted: 1, rejected: 0, inFlight: 1, queued: 0 },
      standard: { reservedSlots: 0, admitted: 7, rejected: 3, inFlight: 6, queued: 0 }, // fill() ends on a refusal too
    });
  });

  it('priority classes may use free shared slots on top of their reserve', () => {
    const ctl = new AdmissionController({ maxConcurrent: 10, classes });
    expect(fill(ctl, URGENT)).toHaveLength(9); // 2 reserved + 7 shared
    expect(admitted(ctl.tryAdmit(OPS)).class).toBe('provider_operations'); // its own reserve is still there
    expect(ctl.tryAdmit(STD).admitted).toBe(false);
  });

  it('release() is idempotent', () => {
    const ctl = new AdmissionController({ maxConcurrent: 10, classes });
    const a = admitted(ctl.tryAdmit(STD));
    admitted(ctl.tryAdmit(STD));
    a.release();
    a.release();
    a.release();
    expect(ctl.stats().classes.standard!.inFlight).toBe(1);
    expect(fill(ctl, STD)).toHaveLength(6);
  });

  it('refuses configurations that leave no shared slot or repeat a class', () => {
    expect(() => new AdmissionController({ maxConcurrent: 3, classes })).toThrow(/shared slot/);
    expect(() => new AdmissionController({ maxConcurrent: 10, classes: [...classes, classes[0]!] })).toThrow(/unique/);
    expect(() => new AdmissionController({ maxConcurrent: 10, classes: [{ name: 'standard', match: () => false, reservedSlots: 1 }] })).toThrow(/standard/);
    expect(() => new AdmissionController({ maxConcurrent: 0, classes: [] })).toThrow(/maxConcurrent/);
  });
});

describe('R13.1 operator-declared emergency', () => {
  const big: AdmissionOptions = {
    maxConcurrent: 100,
    classes: [
      { name: 'emergency_care', match: classes[0]!.match, reservedSlots: 15 },
      { name: 'provider_operations', match: classes[1]!.match, reservedSlots: 5 },
    ],
  };

  it('limits standard traffic to 20 % of the shared slots while on, and says to come back later', () => {
    const ctl = new AdmissionController(big);
    expect(ctl.declareEmergency(true, '震度6強 — 緊急時の通信を優先')).toMatchObject({ on: true, reason: '震度6強 — 緊急時の通信を優先' });
    expect(ctl.stats().standardLimit).toBe(16); // 0.2 × 80
    expect(fill(ctl, STD)).toHaveLength(16);
    expect(ctl.tryAdmit(STD)).toEqual({ admitted: false, class: 'standard', retryAfterSeconds: 30 });
    expect(fill(ctl, URGENT)).toHaveLength(15 + 64); // priority keeps its reserve and all the free shared slots
    expect(ctl.declareEmergency(false, 'over')).toEqual({ on: false, reason: null, since: null });
    expect(ctl.stats().standardLimit).toBe(80);
  });

  it('requests already in flight finish; new standard ones wait until below the new limit', () => {
    const ctl = new AdmissionController(big);
    const std = fill(ctl, STD);
    expect(std).toHaveLength(80);
    ctl.declareEmergency(true, 'flood');
    for (let i = 0; i < 64; i++) std[i]!.release();
    expect(ctl.tryAdmit(STD).admitted).toBe(false); // 16 in flight = the limit
    std[64]!.release();
    expect(ctl.tryAdmit(STD).admitted).toBe(true);
  });

  it('takes its fraction from the options; 0 refuses standard traffic altogether', () => {
    const half = new AdmissionController({ ...big, emergencyStandardFraction: 0.5 });
    half.declareEmergency(true, 'x');
    expect(half.stats().standardLimit).toBe(40);
    const none = new AdmissionController({ ...big, emergencyStandardFraction: 0 });
    none.declareEmergency(true, 'x');
    expect(none.tryAdmit(STD).admitted).toBe(false);
    expect(none.tryAdmit(OPS).admitted).toBe(true);
  });
});

describe('R13.1 overload by latency (AIMD on an EWMA)', () => {
  it('shrinks the standard limit multiplicatively, never below 1, and recovers additively', () => {
    const ctl = new AdmissionController({
      maxConcurrent: 100,
      classes: [{ name: 'emergency_care', match: classes[0]!.match, reservedSlots: 20 }],
      latencyThresholdMs: 500,
    });
    const feed = (ms: number, n: number) => {
      for (let i = 0; i < n; i++) ctl.observeLatency(ms);
      return ctl.stats().aimdLimit;
    };
    expect(feed(2000, 9)).toBe(80); // adjusted once per 10 samples
    const down = [feed(2000, 1)];
    for (let i = 0; i < 7; i++) down.push(feed(2000, 10));
    expect(down).toEqual([40, 20, 10, 5, 2, 1, 1, 1]);
    expect(ctl.stats().latencyEwmaMs).toBe(2000);

    expect(fill(ctl, STD)).toHaveLength(1);
    expect(fill(ctl, URGENT)).toHaveLength(20 + 79); // priority is not narrowed by latency

    // EWMA after 10 samples of 100 ms from 2000 ms: 100 + 1900 × 0.8^10 ≈ 304 ms, below the threshold.
    expect(feed(100, 10)).toBe(2);
    expect(ctl.stats().latencyEwmaMs).toBeCloseTo(100 + 1900 * 0.8 ** 10, 6);
    expect(feed(100, 10)).toBe(3);
    expect(feed(100, 770)).toBe(80);
    expect(feed(100, 100)).toBe(80); // never above the shared slots
    expect(feed(501, 200)).toBeLessThan(80); // the EWMA crosses the threshold again
  });

  it('is off without a threshold, and ignores nonsense samples', () => {
    const ctl = new AdmissionController({ maxConcurrent: 10, classes });
    for (let i = 0; i < 100; i++) ctl.observeLatency(60_000);
    ctl.observeLatency(Number.NaN);
    ctl.observeLatency(-5);
    expect(ctl.stats()).toMatchObject({ aimdLimit: 7, standardLimit: 7, latencyEwmaMs: 60_000 });
  });
});

describe('R13.1 waiting for a slot (maxQueueMs)', () => {
  it('serves queued priority requests before queued standard ones, and times out the rest', async () => {
    const timers = new FakeTimers();
    const ctl = new AdmissionController({ maxConcurrent: 4, classes: [{ name: 'emergency_care', match: classes[0]!.match, reservedSlots: 1 }], maxQueueMs: 2000, timers });
    const std = fill(ctl, STD);
    expect(std).toHaveLength(3);
    admitted(await ctl.admit(URGENT)); // its reserved slot
    const stdWaiting = ctl.admit(STD);
    const urgentWaiting = ctl.admit(URGENT);
    expect(ctl.stats().classes).toMatchObject({ standard: { queued: 1 }, emergency_care: { queued: 1 } });
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([2000, 2000]);
    std[0]!.release();
    expect(admitted(await urgentWaiting).class).toBe('emergency_care'); // queued later, served first
    expect(ctl.tryAdmit(STD).admitted).toBe(false); // a new request does not overtake the queue
    timers.fireAll();
    expect(await stdWaiting).toEqual({ admitted: false, class: 'standard', retryAfterSeconds: 1 });
    expect(ctl.stats().classes.standard).toMatchObject({ admitted: 3, rejected: 3, queued: 0 }); // fill(), the overtaker, the time-out
  });

  it('refuses at once when the queue is full or waiting is off', async () => {
    const ctl = new AdmissionController({ maxConcurrent: 2, classes: [], maxQueueMs: 1000, maxQueueLength: 1, timers: new FakeTimers() });
    fill(ctl, STD);
    const waiting = ctl.admit(STD);
    expect((await ctl.admit(STD)).admitted).toBe(false);
    const noQueue = new AdmissionController({ maxConcurrent: 1, classes: [] });
    noQueue.tryAdmit(STD);
    expect((await noQueue.admit(STD)).admitted).toBe(false);
    void waiting;
  });
});

/** A small deterministic PRNG (mulberry32) so the simulation is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimResult {
  priorityAttempts: number;
  priorityAdmitted: number;
  standardAttempts: number;
  standardAdmitted: number;
  maxInFlight: number;
}

/**
 * Discrete-time overload: each tick, finished requests release their slot, then 10× the
 * instance's throughput arrives in random order; 5 % of it is priority traffic. Each admitted
 * request holds its slot 1–7 ticks (mean 4). A bounded loop, no timers.
 */
function simulate(ctl: AdmissionController, ticks: number, seed = 20260401): SimResult {
  const rand = prng(seed);
  const maxConcurrent = ctl.stats().maxConcurrent;
  const meanHold = 4;
  const arrivalsPerTick = Math.round((10 * maxConcurrent) / meanHold);
  const finishing = new Map<number, Array<() => void>>();
  const r: SimResult = { priorityAttempts: 0, priorityAdmitted: 0, standardAttempts: 0, standardAdmitted: 0, maxInFlight: 0 };
  for (let tick = 0; tick < ticks; tick++) {
    for (const release of finishing.get(tick) ?? []) release();
    finishing.delete(tick);
    for (let i = 0; i < arrivalsPerTick; i++) {
      const priority = rand() < 0.05;
      const req = priority ? (rand() < 0.8 ? URGENT : OPS) : STD;
      const a = ctl.tryAdmit(req);
      if (priority) r.priorityAttempts++;
      else r.standardAttempts++;
      if (!a.admitted) continue;
      if (priority) r.priorityAdmitted++;
      else r.standardAdmitted++;
      const done = tick + 1 + Math.floor(rand() * 7);
      finishing.set(done, [...(finishing.get(done) ?? []), a.release]);
    }
    const inFlight = Object.values(ctl.stats().classes).reduce((n, c) => n + c.inFlight, 0);
    r.maxInFlight = Math.max(r.maxInFlight, inFlight);
  }
  return r;
}

describe('R13.1 10× overload simulation', () => {
  // Priority demand: 10 × 100 / 4 = 250 arrivals a tick, 5 % priority (80 % emergency_care), held 4
  // ticks on average: about 40 emergency_care and 10 provider_operations in flight. Each reserve is
  // that mean plus about 2.5 standard deviations (√40 ≈ 6.3, √10 ≈ 3.2): 55 and 20, 25 shared.
  const sized = (): AdmissionController =>
    new AdmissionController({
      maxConcurrent: 100,
      classes: [
        { name: 'emergency_care', match: classes[0]!.match, reservedSlots: 55 },
        { name: 'provider_operations', match: classes[1]!.match, reservedSlots: 20 },
      ],
    });

  it('priority traffic (5 %) is served at ≥ 99 % while standard traffic is cut back', () => {
    const ctl = sized();
    const r = simulate(ctl, 1000);
    const priority_success_rate = r.priorityAdmitted / r.priorityAttempts;
    const standard_success_rate = r.standardAdmitted / r.standardAttempts;
    console.info(`10× overload: priority_success_rate=${priority_success_rate.toFixed(4)} (${r.priorityAdmitted}/${r.priorityAttempts}), standard_success_rate=${standard_success_rate.toFixed(4)}`);
    expect(r.priorityAttempts).toBeGreaterThan(10_000);
    expect(priority_success_rate).toBeGreaterThanOrEqual(0.99);
    expect(standard_success_rate).toBeLessThan(0.1); // the rest is restricted (R13.1)
    expect(r.maxInFlight).toBeLessThanOrEqual(100);
    expect(ctl.stats().classes.standard!.inFlight).toBe(25); // the shared slots stay in use: no idle capacity
  });

  it('holds for other random draws too', () => {
    for (const seed of [1, 2, 3, 42, 4242]) {
      const r = simulate(sized(), 1000, seed);
      expect(r.priorityAdmitted / r.priorityAttempts, `seed ${seed}`).toBeGreaterThanOrEqual(0.99);
    }
  });

  it('without classes the same priority traffic would mostly be refused (the baseline)', () => {
    const ctl = new AdmissionController({ maxConcurrent: 100, classes: [] });
    const r = simulate(ctl, 1000);
    expect(r.priorityAdmitted / r.priorityAttempts).toBeLessThan(0.2);
  });
});
