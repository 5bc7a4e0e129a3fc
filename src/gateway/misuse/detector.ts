import type { Clock } from '../../core/clock.js';
import { BoundedMap } from './bounded-map.js';
import { misusePolicy, type MisuseAction, type MisuseFindingKind, type MisusePolicy, type MisusePolicyInput } from './policy.js';

/** One suspicion, to be recorded (gateway_events / misuse_flags) and acted on per `action`. */
export interface MisuseFinding {
  kind: MisuseFindingKind;
  credentialId?: string;
  loginId?: string;
  customerId?: string;
  sourceIp: string;
  /** ISO 8601, from the detector's clock. */
  at: string;
  /** One English sentence for the record and the operator's review. */
  detail: string;
  action: MisuseAction;
  /** The other IDs, sources or countries that make up the finding, when there are several. */
  related?: string[];
}

export type SignInGate =
  | { allowed: true }
  | { allowed: false; retryAfterMs: number; reason: 'account_locked' | 'source_locked' };

export interface MisuseStateSize {
  accounts: number;
  sources: number;
  credentials: number;
  customers: number;
  total: number;
  /** Entries pushed out by the bound since start (a sign of a flood of distinct keys). */
  evicted: number;
}

/** Lockout with exponential backoff, shared by IDs and sources. */
interface Lockable {
  /** Times (ms) of recent failures, oldest first; never longer than the threshold. */
  failures: number[];
  lockedUntil: number;
  /** How many lockouts since the level was last forgotten. */
  level: number;
  lastLockAt: number | null;
}

interface SourceState extends Lockable {
  /** Login id → last failed attempt (ms), in recency order; never more than the stuffing threshold. */
  accounts: Map<string, number>;
}

interface CredentialState {
  /** Source key → last seen (ms), in recency order. */
  sources: Map<string, number>;
  manySourcesReportedAt: number | null;
  /** Country → last seen (ms), in recency order. */
  countries: Map<string, number>;
  travelReportedAt: number | null;
}

interface CustomerState {
  /** Times (ms) of recent uses from abroad, oldest first. */
  abroad: number[];
  abroadReportedAt: number | null;
}

const MAX_COUNTRIES_PER_CREDENTIAL = 8;
const MAX_BACKOFF_LEVEL = 40;
const PRUNE_EVERY_OPS = 10_000;

/**
 * The IPv4 address, or for IPv6 the /64 it belongs to (when the policy says so): one host can
 * rotate through a whole /64, so counting its addresses one by one would never lock it.
 */
export function sourceKey(ip: string, groupIpv6By64 = true): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!ip.includes(':') || !groupIpv6By64) return ip.toLowerCase();
  const addr = ip.split('%')[0]!.toLowerCase();
  const halves = addr.split('::');
  if (halves.length > 2) return addr;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = halves.length === 2 ? Math.max(0, 8 - head.length - tail.length) : 0;
  const groups = [...head, ...Array<string>(missing).fill('0'), ...tail].slice(0, 4);
  if (groups.length < 4 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return addr;
  return `${groups.map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}

function keepRecent(times: number[], since: number): number[] {
  let i = 0;
  while (i < times.length && times[i]! <= since) i++;
  return i === 0 ? times : times.slice(i);
}

function dropOlder(map: Map<string, number>, since: number): void {
  // Recency order: the oldest come first, so stop at the first recent one.
  for (const [k, t] of map) {
    if (t > since) break;
    map.delete(k);
  }
}

function touch(map: Map<string, number>, key: string, now: number, max: number): void {
  map.delete(key);
  map.set(key, now);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) break;
    map.delete(oldest.value);
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * Detects misuse of credentials (R11.1③, R18.1) from what the gateway sees: sign-in results and
 * every use of a credential. Pure logic over in-memory state with a hard bound per table
 * (`maxTrackedKeys`, least-recently-used eviction that spares locked entries when it can, plus
 * pruning of idle entries), so a flood of distinct sources cannot grow memory without bound.
 *
 * State is per process: with several instances each sees its share of the traffic, so limits are
 * effectively multiplied by the number of instances until the state moves to the database
 * (see docs/decisions/0014-misuse-priority-totp.md).
 */
export class MisuseDetector {
  readonly policy: Readonly<MisusePolicy>;
  readonly #clock: Clock;
  readonly #accounts: BoundedMap<string, Lockable>;
  readonly #sources: BoundedMap<string, SourceState>;
  readonly #credentials: BoundedMap<string, CredentialState>;
  readonly #customers: BoundedMap<string, CustomerState>;
  #ops = 0;

  constructor(clock: Clock, policy: MisusePolicyInput = {}) {
    this.#clock = clock;
    this.policy = Object.freeze(misusePolicy(policy));
    const max = this.policy.maxTrackedKeys;
    const unlocked = (s: Lockable) => s.lockedUntil <= this.#clock.now().getTime();
    this.#accounts = new BoundedMap<string, Lockable>(max, unlocked);
    this.#sources = new BoundedMap<string, SourceState>(max, unlocked);
    this.#credentials = new BoundedMap<string, CredentialState>(max);
    this.#customers = new BoundedMap<string, CustomerState>(max);
  }

  /**
   * Asked before the password is checked: a locked ID or source is refused without spending a
   * password hash on it. Unknown IDs are tracked like known ones, so a lock reveals nothing about
   * which IDs exist.
   */
  beforeSignIn(loginId: string, sourceIp: string): SignInGate {
    const now = this.#clock.now().getTime();
    const account = this.#accounts.get(loginId);
    const source = this.#sources.get(this.#key(sourceIp));
    const accountWait = account ? account.lockedUntil - now : 0;
    const sourceWait = source ? source.lockedUntil - now : 0;
    if (accountWait <= 0 && sourceWait <= 0) return { allowed: true };
    return accountWait >= sourceWait
      ? { allowed: false, retryAfterMs: accountWait, reason: 'account_locked' }
      : { allowed: false, retryAfterMs: sourceWait, reason: 'source_locked' };
  }

  /**
   * The result of a sign-in that `beforeSignIn` allowed. A success clears the ID's failure count
   * (not its backoff level, which is forgotten `backoffResetMs` after the last lockout, and not the
   * source's count). A wrong second factor is a failure like a wrong password.
   */
  recordSignIn(loginId: string, sourceIp: string, ok: boolean): MisuseFinding[] {
    const now = this.#tick();
    const p = this.policy;
    if (ok) {
      // Successes create no state: only IDs with failures are tracked.
      const known = this.#accounts.get(loginId);
      if (known) known.failures = [];
      return [];
    }
    const account = this.#accounts.getOrCreate(loginId, newLockable);
    const at = (): string => new Date(now).toISOString();
    const findings: MisuseFinding[] = [];

    // Failures against an ID that is already locked were not checked; they do not count again.
    if (account.lockedUntil <= now) {
      account.failures = keepRecent(account.failures, now - p.failureWindowMs);
      account.failures.push(now);
      if (account.failures.length >= p.maxFailuresPerAccount) {
        const ms = this.#lock(account, now);
        findings.push({
          kind: 'brute_force',
          loginId,
          sourceIp,
          at: at(),
          detail: `${p.maxFailuresPerAccount} failed sign-ins for this ID within ${seconds(p.failureWindowMs)}; ID locked for ${seconds(ms)} (lockout ${account.level})`,
          action: p.actions.brute_force,
        });
      }
    }

    const key = this.#key(sourceIp);
    const source = this.#sources.getOrCreate(key, newSource);
    if (source.lockedUntil <= now) {
      source.failures = keepRecent(source.failures, now - p.failureWindowMs);
      source.failures.push(now);
      dropOlder(source.accounts, now - p.stuffingWindowMs);
      touch(source.accounts, loginId, now, p.stuffingDistinctAccountsPerSource);
      const stuffing = source.accounts.size >= p.stuffingDistinctAccountsPerSource;
      const tooMany = source.failures.length >= p.maxFailuresPerSource;
      if (stuffing || tooMany) {
        const ms = this.#lock(source, now);
        const locked = `source locked for ${seconds(ms)} (lockout ${source.level})`;
        if (stuffing) {
          findings.push({
            kind: 'credential_stuffing',
            loginId,
            sourceIp,
            at: at(),
            detail: `failed sign-ins for ${source.accounts.size} distinct IDs from one source within ${seconds(p.stuffingWindowMs)}; ${locked}`,
            action: p.actions.credential_stuffing,
            related: [...source.accounts.keys()],
          });
          source.accounts.clear();
        }
        if (tooMany) {
          findings.push({
            kind: 'brute_force',
            loginId,
            sourceIp,
            at: at(),
            detail: `${p.maxFailuresPerSource} failed sign-ins from one source within ${seconds(p.failureWindowMs)}; ${locked}`,
            action: p.actions.brute_force,
          });
        }
      }
    }
    return findings;
  }

  /**
   * Every authenticated use of a credential (API token, or a user's session: pass a stable id such
   * as `user:<id>`). `country` is the ISO code of the source, or null when it is not known; unknown
   * countries count for `many_sources` only.
   */
  recordCredentialUse(credentialId: string, customerId: string, sourceIp: string, country: string | null): MisuseFinding[] {
    const now = this.#tick();
    const p = this.policy;
    const at = (): string => new Date(now).toISOString();
    const findings: MisuseFinding[] = [];
    const cred = this.#credentials.getOrCreate(credentialId, newCredential);

    dropOlder(cred.sources, now - p.manySourcesWindowMs);
    touch(cred.sources, this.#key(sourceIp), now, p.manySourcesPerCredential);
    if (cred.sources.size >= p.manySourcesPerCredential && !recentlyReported(cred.manySourcesReportedAt, now, p.manySourcesWindowMs)) {
      cred.manySourcesReportedAt = now;
      findings.push({
        kind: 'many_sources',
        credentialId,
        customerId,
        sourceIp,
        at: at(),
        detail: `credential used from ${cred.sources.size} distinct sources within ${seconds(p.manySourcesWindowMs)}`,
        action: p.actions.many_sources,
        related: [...cred.sources.keys()],
      });
    }

    const c = country === null ? null : country.trim().toUpperCase();
    if (c) {
      dropOlder(cred.countries, now - p.impossibleTravelMs);
      const others = [...cred.countries.keys()].filter((o) => o !== c && (o !== p.homeCountry || c !== p.homeCountry));
      if (others.length > 0 && !recentlyReported(cred.travelReportedAt, now, p.impossibleTravelMs)) {
        cred.travelReportedAt = now;
        findings.push({
          kind: 'impossible_travel',
          credentialId,
          customerId,
          sourceIp,
          at: at(),
          detail: `credential seen from ${[...others, c].join(' and ')} within ${seconds(p.impossibleTravelMs)}`,
          action: p.actions.impossible_travel,
          related: [...others, c],
        });
      }
      touch(cred.countries, c, now, MAX_COUNTRIES_PER_CREDENTIAL);

      if (c !== p.homeCountry) {
        const customer = this.#customers.getOrCreate(customerId, newCustomer);
        customer.abroad = keepRecent(customer.abroad, now - p.abroadWindowMs);
        customer.abroad.push(now);
        if (customer.abroad.length > p.abroadUsesBeforeAction) customer.abroad = customer.abroad.slice(-p.abroadUsesBeforeAction);
        if (customer.abroad.length >= p.abroadUsesBeforeAction && !recentlyReported(customer.abroadReportedAt, now, p.abroadWindowMs)) {
          customer.abroadReportedAt = now;
          findings.push({
            kind: 'abroad_use',
            credentialId,
            customerId,
            sourceIp,
            at: at(),
            detail: `${customer.abroad.length} uses from outside ${p.homeCountry} by this customer within ${seconds(p.abroadWindowMs)} (last from ${c})`,
            action: p.actions.abroad_use,
          });
        }
      }
    }
    return findings;
  }

  /** An operator lifts the lock of an ID (support call); the backoff level is kept. */
  unlockAccount(loginId: string): boolean {
    const a = this.#accounts.peek(loginId);
    if (!a || a.lockedUntil <= this.#clock.now().getTime()) return false;
    a.lockedUntil = 0;
    a.failures = [];
    return true;
  }

  /** An operator lifts the lock of a source (e.g. a customer's office behind one address). */
  unlockSource(sourceIp: string): boolean {
    const s = this.#sources.peek(this.#key(sourceIp));
    if (!s || s.lockedUntil <= this.#clock.now().getTime()) return false;
    s.lockedUntil = 0;
    s.failures = [];
    s.accounts.clear();
    return true;
  }

  /** Drops entries that no longer hold anything (no lock, nothing in any window, level forgotten). */
  prune(): number {
    const now = this.#clock.now().getTime();
    const p = this.policy;
    const idleLock = (s: Lockable) =>
      s.lockedUntil <= now &&
      (s.failures.length === 0 || s.failures[s.failures.length - 1]! <= now - p.failureWindowMs) &&
      (s.lastLockAt === null || now - s.lastLockAt >= p.backoffResetMs);
    const lastOf = (m: Map<string, number>) => {
      let last = -Infinity;
      for (const t of m.values()) last = t;
      return last;
    };
    let n = this.#accounts.prune(idleLock);
    n += this.#sources.prune((s) => idleLock(s) && lastOf(s.accounts) <= now - p.stuffingWindowMs);
    n += this.#credentials.prune(
      (c) =>
        lastOf(c.sources) <= now - p.manySourcesWindowMs &&
        lastOf(c.countries) <= now - p.impossibleTravelMs &&
        !recentlyReported(c.manySourcesReportedAt, now, p.manySourcesWindowMs) &&
        !recentlyReported(c.travelReportedAt, now, p.impossibleTravelMs),
    );
    n += this.#customers.prune(
      (c) => (c.abroad.length === 0 || c.abroad[c.abroad.length - 1]! <= now - p.abroadWindowMs) && !recentlyReported(c.abroadReportedAt, now, p.abroadWindowMs),
    );
    return n;
  }

  stateSize(): MisuseStateSize {
    const accounts = this.#accounts.size;
    const sources = this.#sources.size;
    const credentials = this.#credentials.size;
    const customers = this.#customers.size;
    return {
      accounts,
      sources,
      credentials,
      customers,
      total: accounts + sources + credentials + customers,
      evicted: this.#accounts.evicted + this.#sources.evicted + this.#credentials.evicted + this.#customers.evicted,
    };
  }

  #key(ip: string): string {
    return sourceKey(ip, this.policy.groupIpv6By64);
  }

  #tick(): number {
    if (++this.#ops >= PRUNE_EVERY_OPS) {
      this.#ops = 0;
      this.prune();
    }
    return this.#clock.now().getTime();
  }

  /** Locks for base × 2^level (capped), then raises the level; returns the lock's length. */
  #lock(s: Lockable, now: number): number {
    const p = this.policy;
    if (s.lastLockAt !== null && now - s.lastLockAt >= p.backoffResetMs) s.level = 0;
    const ms = Math.min(p.lockoutBaseMs * 2 ** s.level, p.lockoutMaxMs);
    s.level = Math.min(s.level + 1, MAX_BACKOFF_LEVEL);
    s.lastLockAt = now;
    s.lockedUntil = now + ms;
    s.failures = [];
    return ms;
  }
}

function recentlyReported(at: number | null, now: number, windowMs: number): boolean {
  return at !== null && now - at < windowMs;
}

const newLockable = (): Lockable => ({ failures: [], lockedUntil: 0, level: 0, lastLockAt: null });
const newSource = (): SourceState => ({ ...newLockable(), accounts: new Map() });
const newCredential = (): CredentialState => ({ sources: new Map(), manySourcesReportedAt: null, countries: new Map(), travelReportedAt: null });
const newCustomer = (): CustomerState => ({ abroad: [], abroadReportedAt: null });
