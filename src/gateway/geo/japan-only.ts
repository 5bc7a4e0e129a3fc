import { BlockList } from 'node:net';
import { HokanError, errors } from '../../core/errors.js';
import { bi } from '../../core/i18n.js';
import type { CountryLookup } from './country-lookup.js';
import { ipBytes, normalizeIp, type NormalizedIp } from './ip.js';

/**
 * The Japan-only rule of the terms (R4.1, R15.1①): a request whose source address is outside
 * Japan is refused. This module only decides; recording and counting are the caller's.
 * Decision 0012 explains each choice.
 */
export type OriginReason = 'domestic' | 'private_network' | 'allowlisted' | 'abroad' | 'unknown_location';

export interface OriginDecision {
  allowed: boolean;
  /** The database's country for the address (also for allowlisted ones); null for private or unknown. */
  country: string | null;
  reason: OriginReason;
}

export interface OriginPolicyOptions {
  /** ISO 3166-1 alpha-2 codes whose addresses are let in. Default `['JP']`. */
  allowCountries?: readonly string[];
  /** The provider's exceptions: CIDRs (`203.0.113.0/24`, `2001:db8::/32`) or single addresses. */
  allowCidrs?: readonly string[];
  /**
   * Whether a public address that the database cannot place is let in. Default false: the terms
   * say Japan only, and an address that cannot be placed is not shown to be in Japan.
   */
  unknownAllowed?: boolean;
}

/** Something that places an address; CountryLookup is one. */
export type CountrySource = Pick<CountryLookup, 'countryOf'>;

/** Loopback, RFC 1918, CGNAT (RFC 6598), link-local, RFC 4193 unique-local. */
export const PRIVATE_NETWORKS: readonly string[] = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];

const privateList = new BlockList();
for (const cidr of PRIVATE_NETWORKS) {
  const [address = '', prefix = ''] = cidr.split('/');
  privateList.addSubnet(address, Number(prefix), address.includes(':') ? 'ipv6' : 'ipv4');
}

function inList(list: BlockList, ip: NormalizedIp): boolean {
  return list.check(ip.address, ip.family === 4 ? 'ipv4' : 'ipv6');
}

/** True for addresses of the provider's own and test networks (see PRIVATE_NETWORKS). */
export function isPrivateNetwork(ip: string): boolean {
  const n = normalizeIp(ip);
  return n !== null && inList(privateList, n);
}

export interface ParsedCidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

function badEntry(index: number, entry: string, ja: string, en: string): HokanError {
  return errors.invalidField(`allowCidrs[${index}]`, `「${entry}」は${ja}`, `"${entry}" ${en}`);
}

/**
 * Parses one allowlist entry. A single address means /32 or /128. Rejects host bits set below
 * the prefix (`10.1.2.3/8`): in an exception list that is more likely a typo than intent.
 */
export function parseCidr(entry: string, index = 0): ParsedCidr {
  const text = typeof entry === 'string' ? entry.trim() : '';
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? null : text.slice(slash + 1);
  if (addrText.includes('%')) {
    throw badEntry(index, String(entry), '有効な CIDR ではありません（ゾーン ID は使えません）。', 'is not a valid CIDR (no zone IDs).');
  }
  const n = normalizeIp(addrText);
  if (n === null) {
    throw badEntry(index, String(entry), '有効な CIDR ではありません（例: 203.0.113.0/24, 2001:db8::/32）。', 'is not a valid CIDR (e.g. 203.0.113.0/24, 2001:db8::/32).');
  }
  if (n.family === 4 && addrText.includes(':')) {
    throw badEntry(index, String(entry), 'IPv4 射影アドレスです。IPv4 で書いてください。', 'is an IPv4-mapped address; write it as IPv4.');
  }
  const bits = n.family === 4 ? 32 : 128;
  if (prefixText !== null && !/^\d{1,3}$/.test(prefixText)) {
    throw badEntry(index, String(entry), `のプレフィックス長が不正です（0〜${bits}）。`, `has an invalid prefix length (0–${bits}).`);
  }
  const prefix = prefixText === null ? bits : Number(prefixText);
  if (prefix > bits) {
    throw badEntry(index, String(entry), `のプレフィックス長が不正です（0〜${bits}）。`, `has an invalid prefix length (0–${bits}).`);
  }
  const bytes = ipBytes(n);
  if (bytes === null) {
    throw badEntry(index, String(entry), '有効な CIDR ではありません。', 'is not a valid CIDR.');
  }
  for (let bit = prefix; bit < bits; bit++) {
    if (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) {
      throw badEntry(index, String(entry), `のホスト部が 0 ではありません（/${prefix} のネットワークアドレスを書いてください）。`, `has host bits set below /${prefix}; write the network address.`);
    }
  }
  return { address: n.address, prefix, family: n.family };
}

/** A checked, ready-to-use policy: build it once (at start-up) and pass it to decideOrigin. */
export class OriginPolicy {
  readonly allowCountries: ReadonlySet<string>;
  readonly allowCidrs: readonly ParsedCidr[];
  readonly unknownAllowed: boolean;
  private readonly allowList = new BlockList();

  constructor(opts: OriginPolicyOptions = {}) {
    const countries = opts.allowCountries ?? ['JP'];
    this.allowCountries = new Set(
      countries.map((c, i) => {
        const up = typeof c === 'string' ? c.trim().toUpperCase() : '';
        if (!/^[A-Z]{2}$/.test(up)) {
          throw errors.invalidField(
            `allowCountries[${i}]`,
            `「${String(c)}」は ISO 3166-1 の 2 文字の国コードではありません。`,
            `"${String(c)}" is not an ISO 3166-1 alpha-2 country code.`,
          );
        }
        return up;
      }),
    );
    this.allowCidrs = (opts.allowCidrs ?? []).map((c, i) => parseCidr(c, i));
    for (const c of this.allowCidrs) {
      this.allowList.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
    }
    this.unknownAllowed = opts.unknownAllowed ?? false;
  }

  isAllowlisted(ip: NormalizedIp): boolean {
    return this.allowCidrs.length > 0 && inList(this.allowList, ip);
  }
}

export function compileOriginPolicy(opts: OriginPolicyOptions = {}): OriginPolicy {
  return new OriginPolicy(opts);
}

/** Plain option objects are compiled once each (keyed by identity: do not mutate them afterwards). */
const compiled = new WeakMap<OriginPolicyOptions, OriginPolicy>();

function policyOf(opts: OriginPolicyOptions | OriginPolicy): OriginPolicy {
  if (opts instanceof OriginPolicy) return opts;
  let p = compiled.get(opts);
  if (p === undefined) {
    p = new OriginPolicy(opts);
    compiled.set(opts, p);
  }
  return p;
}

/**
 * Decides whether a request from `ip` may be served. In order:
 * 1. not an address at all → refused as unknown_location (whatever unknownAllowed says);
 * 2. private/loopback/link-local/CGNAT/ULA → allowed (private_network);
 * 3. inside allowCidrs → allowed (allowlisted);
 * 4. the database's country is in allowCountries → allowed (domestic);
 * 5. the database does not place it → unknown_location, allowed only if unknownAllowed;
 * 6. otherwise → refused (abroad).
 */
export function decideOrigin(
  ip: string,
  lookup: CountrySource,
  opts: OriginPolicyOptions | OriginPolicy = {},
): OriginDecision {
  const policy = policyOf(opts);
  const n = normalizeIp(ip);
  if (n === null) return { allowed: false, country: null, reason: 'unknown_location' };
  if (inList(privateList, n)) return { allowed: true, country: null, reason: 'private_network' };
  const country = lookup.countryOf(n.address);
  if (policy.isAllowlisted(n)) return { allowed: true, country, reason: 'allowlisted' };
  if (country === null) return { allowed: policy.unknownAllowed, country: null, reason: 'unknown_location' };
  if (policy.allowCountries.has(country)) return { allowed: true, country, reason: 'domestic' };
  return { allowed: false, country, reason: 'abroad' };
}

export type RefusalReason = 'abroad' | 'unknown_location';

const CONTACT_JA = '日本国内からのご利用でこの表示が出る場合は、サービス提供者にお問い合わせください。';
const CONTACT_EN = 'If you are in Japan and see this message, please contact the service provider.';

/**
 * The refusal sent back: 403 `forbidden`, with the reason in details as
 * `{ path: 'source', message: 'abroad' | 'unknown_location' }`. The client's address is never in
 * the message; `country` is kept on the object for the log and the record only (not in toJSON).
 */
export class AbroadRefusedError extends HokanError {
  readonly reason: RefusalReason;
  readonly country: string | null;

  constructor(reason: RefusalReason, country: string | null = null) {
    const messages =
      reason === 'abroad'
        ? bi(
            `本サービスは日本国内でのみご利用いただけます（利用規約第4条）。海外からのアクセスはお受けできません。${CONTACT_JA}`,
            `This service is provided in Japan only (Terms, Art. 4); access from abroad is not accepted. ${CONTACT_EN}`,
          )
        : bi(
            `本サービスは日本国内でのみご利用いただけます（利用規約第4条）。接続元が日本国内であることを確認できないため、アクセスをお受けできません。${CONTACT_JA}`,
            `This service is provided in Japan only (Terms, Art. 4); access whose source cannot be confirmed to be in Japan is not accepted. ${CONTACT_EN}`,
          );
    super('forbidden', messages, [{ path: 'source', message: reason }]);
    this.name = 'AbroadRefusedError';
    this.reason = reason;
    this.country = country;
  }
}

/** The error for a refused decision. Calling it for an allowed one is a bug and throws. */
export function refusalError(decision: OriginDecision): AbroadRefusedError {
  if (decision.allowed || (decision.reason !== 'abroad' && decision.reason !== 'unknown_location')) {
    throw new TypeError(`refusalError called for an allowed origin (${decision.reason})`);
  }
  return new AbroadRefusedError(decision.reason, decision.country);
}
