import { z } from 'zod';
import { MISUSE_ACTIONS, MISUSE_FINDING_KINDS, type MisuseAction, type MisuseFindingKind } from './misuse/policy.js';

/** Gateway configuration, read from the environment beside the core Config. */
export interface GatewaySettings {
  /** CIDRs or addresses of reverse proxies whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  geoDbPath: string | null;
  allowCidrs: string[];
  /** Whether a public address the database cannot place is let in (default: no — Japan only). */
  unknownLocationAllowed: boolean;
  /** In-flight requests before priority admission starts refusing standard traffic (R13.1). */
  maxConcurrent: number;
  /** Requests one source address may have in flight at once (R13.1): a slow sender cannot take every slot. */
  maxConcurrentPerSource: number;
  latencyThresholdMs: number;
  /** Path prefixes of the Software's urgent (emergency care) endpoints, admitted first. */
  priorityPaths: string[];
  operatorTotpRequired: boolean;
  /** A versioned IDS rules file other than the shipped one. */
  idsRulesPath: string | null;
  /** Requests per second from one source above which the IDS records (and blocks) a DoS attempt. */
  rateLimitPerSecond: number;
  /** Per-class IDS mode overrides, e.g. `scanner: 'block'`. */
  idsModes: Record<string, 'detect' | 'block'>;
  /** A request (headers and body) must arrive within this time; slower ones are cut off and recorded. */
  requestTimeoutMs: number;
  /** R11.1③: the provider's policy — what each kind of misuse finding leads to. */
  misuseActions: Partial<Record<MisuseFindingKind, MisuseAction>>;
}

const list = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const envSchema = z.object({
  HOKAN_TRUSTED_PROXIES: list.default([]),
  HOKAN_GEO_DB: z.string().min(1).optional(),
  HOKAN_GEO_ALLOW_CIDRS: list.default([]),
  HOKAN_GEO_UNKNOWN_ALLOWED: bool.default(false),
  HOKAN_MAX_CONCURRENT: z.coerce.number().int().min(2).max(100_000).default(256),
  HOKAN_MAX_CONCURRENT_PER_SOURCE: z.coerce.number().int().min(1).max(100_000).optional(),
  HOKAN_LATENCY_THRESHOLD_MS: z.coerce.number().int().min(10).max(600_000).default(2000),
  HOKAN_PRIORITY_PATHS: list.default(['/api/v1/data/collections/emergency']),
  HOKAN_OPERATOR_TOTP: z.enum(['required', 'optional']).default('optional'),
  HOKAN_IDS_RULES: z.string().min(1).optional(),
  HOKAN_SOURCE_RATE_LIMIT: z.coerce.number().int().min(1).max(1_000_000).default(200),
  HOKAN_IDS_MODES: list.default([]),
  HOKAN_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
  HOKAN_MISUSE_ACTIONS: list.default([]),
});

export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
}

export function loadGatewaySettings(env: NodeJS.ProcessEnv): GatewaySettings {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) throw new GatewayConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const e = parsed.data;
  for (const p of e.HOKAN_PRIORITY_PATHS) if (!p.startsWith('/')) throw new GatewayConfigError(`HOKAN_PRIORITY_PATHS: "${p}" must start with /`);
  return {
    trustedProxies: e.HOKAN_TRUSTED_PROXIES,
    geoDbPath: e.HOKAN_GEO_DB ?? null,
    allowCidrs: e.HOKAN_GEO_ALLOW_CIDRS,
    unknownLocationAllowed: e.HOKAN_GEO_UNKNOWN_ALLOWED,
    maxConcurrent: e.HOKAN_MAX_CONCURRENT,
    // A quarter of the slots by default: one address (a customer's server, a care home's NAT) still
    // gets plenty, and no fewer than four addresses are needed to fill the instance.
    maxConcurrentPerSource: e.HOKAN_MAX_CONCURRENT_PER_SOURCE ?? Math.max(1, Math.floor(e.HOKAN_MAX_CONCURRENT / 4)),
    latencyThresholdMs: e.HOKAN_LATENCY_THRESHOLD_MS,
    priorityPaths: e.HOKAN_PRIORITY_PATHS,
    operatorTotpRequired: e.HOKAN_OPERATOR_TOTP === 'required',
    idsRulesPath: e.HOKAN_IDS_RULES ?? null,
    rateLimitPerSecond: e.HOKAN_SOURCE_RATE_LIMIT,
    requestTimeoutMs: e.HOKAN_REQUEST_TIMEOUT_MS,
    misuseActions: Object.fromEntries(
      e.HOKAN_MISUSE_ACTIONS.map((entry) => {
        const [kind, action] = entry.split(':');
        if (!(MISUSE_FINDING_KINDS as readonly string[]).includes(kind ?? '') || !(MISUSE_ACTIONS as readonly string[]).includes(action ?? '')) {
          throw new GatewayConfigError(`HOKAN_MISUSE_ACTIONS: "${entry}" must be kind:action with kind one of ${MISUSE_FINDING_KINDS.join(', ')} and action one of ${MISUSE_ACTIONS.join(', ')}`);
        }
        return [kind as MisuseFindingKind, action as MisuseAction];
      }),
    ),
    idsModes: Object.fromEntries(
      e.HOKAN_IDS_MODES.map((entry) => {
        const m = /^([a-z_]+):(detect|block)$/.exec(entry);
        if (!m) throw new GatewayConfigError(`HOKAN_IDS_MODES: "${entry}" must be class:detect or class:block`);
        return [m[1]!, m[2] as 'detect' | 'block'];
      }),
    ),
  };
}
