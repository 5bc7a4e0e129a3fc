/**
 * What counts as misuse, or likely misuse, of IDs, passwords and API tokens (R11.1③, R18.1), and
 * what the provider wants done about each kind of finding. Every number here is a policy the
 * provider may tune; the defaults are the ones in docs/decisions/0014-misuse-priority-totp.md.
 */

export const MISUSE_FINDING_KINDS = ['brute_force', 'credential_stuffing', 'many_sources', 'impossible_travel', 'abroad_use'] as const;
export type MisuseFindingKind = (typeof MISUSE_FINDING_KINDS)[number];

export const MISUSE_ACTIONS = ['lock_credential', 'flag_customer', 'suspend_customer'] as const;
/**
 * What the caller is asked to do beyond what the detector does itself (the detector only ever
 * refuses sign-ins of a locked ID or source):
 * - `lock_credential`: lock the API token / end the user's sessions that were misused;
 * - `flag_customer`: record the finding against the customer for an operator to review;
 * - `suspend_customer`: suspend the customer on ground ③ (R11.1), data kept.
 */
export type MisuseAction = (typeof MISUSE_ACTIONS)[number];

export interface MisusePolicy {
  /** Failed sign-ins of one ID within `failureWindowMs` that lock the ID (the N-th failure locks). */
  maxFailuresPerAccount: number;
  /** Failed sign-ins from one source (any IDs) within `failureWindowMs` that lock the source. */
  maxFailuresPerSource: number;
  failureWindowMs: number;
  /** First lockout; each further lockout doubles it, up to `lockoutMaxMs`. */
  lockoutBaseMs: number;
  lockoutMaxMs: number;
  /** The doubling level is forgotten this long after the last lockout (a success does not reset it). */
  backoffResetMs: number;
  /** One source failing sign-ins for this many distinct IDs within `stuffingWindowMs` is credential stuffing. */
  stuffingDistinctAccountsPerSource: number;
  stuffingWindowMs: number;
  /** One credential used from this many distinct sources within `manySourcesWindowMs`. */
  manySourcesPerCredential: number;
  manySourcesWindowMs: number;
  /** One credential seen from two different countries (one of them not `homeCountry`) within this time. */
  impossibleTravelMs: number;
  /** Uses from outside `homeCountry` by one customer within `abroadWindowMs` that make a finding (the N-th use). */
  abroadUsesBeforeAction: number;
  abroadWindowMs: number;
  /** ISO 3166-1 alpha-2; the service is for Japan (R4.1, R15.1①). */
  homeCountry: string;
  /** What to do per kind of finding. */
  actions: Record<MisuseFindingKind, MisuseAction>;
  /** Upper bound on tracked keys per table (IDs, sources, credentials, customers). */
  maxTrackedKeys: number;
  /** Treat all IPv6 addresses of one /64 as one source (one host can hold a whole /64). */
  groupIpv6By64: boolean;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export const DEFAULT_MISUSE_POLICY: Readonly<MisusePolicy> = Object.freeze({
  maxFailuresPerAccount: 5,
  maxFailuresPerSource: 20,
  failureWindowMs: 15 * MINUTE,
  lockoutBaseMs: MINUTE,
  lockoutMaxMs: HOUR,
  backoffResetMs: 24 * HOUR,
  stuffingDistinctAccountsPerSource: 10,
  stuffingWindowMs: 10 * MINUTE,
  manySourcesPerCredential: 5,
  manySourcesWindowMs: 5 * MINUTE,
  impossibleTravelMs: 2 * HOUR,
  abroadUsesBeforeAction: 3,
  abroadWindowMs: 24 * HOUR,
  homeCountry: 'JP',
  actions: Object.freeze({
    brute_force: 'lock_credential',
    credential_stuffing: 'lock_credential',
    many_sources: 'lock_credential',
    impossible_travel: 'flag_customer',
    abroad_use: 'flag_customer',
  }),
  maxTrackedKeys: 50_000,
  groupIpv6By64: true,
}) as Readonly<MisusePolicy>;

export type MisusePolicyInput = Partial<Omit<MisusePolicy, 'actions'>> & { actions?: Partial<Record<MisuseFindingKind, MisuseAction>> };

const POSITIVE_INTEGERS = [
  'maxFailuresPerAccount',
  'maxFailuresPerSource',
  'failureWindowMs',
  'lockoutBaseMs',
  'lockoutMaxMs',
  'backoffResetMs',
  'stuffingDistinctAccountsPerSource',
  'stuffingWindowMs',
  'manySourcesPerCredential',
  'manySourcesWindowMs',
  'impossibleTravelMs',
  'abroadUsesBeforeAction',
  'abroadWindowMs',
  'maxTrackedKeys',
] as const satisfies ReadonlyArray<keyof MisusePolicy>;

/** The defaults with `input` laid over them; throws on a policy that cannot work. */
export function misusePolicy(input: MisusePolicyInput = {}): MisusePolicy {
  const p: MisusePolicy = {
    ...DEFAULT_MISUSE_POLICY,
    ...input,
    actions: { ...DEFAULT_MISUSE_POLICY.actions, ...input.actions },
  };
  for (const k of POSITIVE_INTEGERS) {
    const v = p[k];
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`misuse policy: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (p.lockoutMaxMs < p.lockoutBaseMs) throw new Error('misuse policy: lockoutMaxMs must not be below lockoutBaseMs');
  if (!/^[A-Z]{2}$/.test(p.homeCountry)) throw new Error(`misuse policy: homeCountry must be an ISO 3166-1 alpha-2 code, got ${p.homeCountry}`);
  for (const [kind, action] of Object.entries(p.actions)) {
    if (!(MISUSE_ACTIONS as readonly string[]).includes(action)) throw new Error(`misuse policy: unknown action ${action} for ${kind}`);
  }
  return p;
}
