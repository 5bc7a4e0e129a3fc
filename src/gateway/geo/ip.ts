import { isIP } from 'node:net';

/** An address as the geo code uses it: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is given as IPv4. */
export interface NormalizedIp {
  address: string;
  family: 4 | 6;
}

const MAPPED_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * Checks and normalizes one address string. Returns null for anything that is not a single
 * IPv4 or IPv6 address (CIDRs, host names, leading zeros, ports, brackets, blanks).
 * - an IPv6 zone (`fe80::1%eth0`) is dropped;
 * - IPv4-mapped IPv6 in either spelling (`::ffff:1.2.3.4`, `::ffff:102:304`, long forms) becomes
 *   the IPv4 address, which is what a dual-stack socket reports for an IPv4 client.
 */
export function normalizeIp(ip: string): NormalizedIp | null {
  if (typeof ip !== 'string' || ip.length === 0 || ip.length > 100) return null;
  let s = ip;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4) return zone === -1 ? { address: s, family: 4 } : null;
  if (family !== 6) return null;
  const lower = s.toLowerCase();
  // Only spellings that can be IPv4-mapped go through the (slower) canonical form.
  if (lower.includes('ffff') || lower.includes('.')) {
    const canonical = canonicalIpv6(lower);
    const m = canonical === null ? null : MAPPED_HEX.exec(canonical);
    if (m) {
      const hi = parseInt(m[1] ?? '0', 16);
      const lo = parseInt(m[2] ?? '0', 16);
      return { address: `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`, family: 4 };
    }
  }
  return { address: lower, family: 6 };
}

/** RFC 5952 form (lower case, `::` compressed, embedded IPv4 as hex), via the WHATWG URL parser. */
export function canonicalIpv6(ip: string): string | null {
  try {
    const host = new URL(`http://[${ip}]/`).hostname;
    return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : null;
  } catch {
    return null;
  }
}

/** The address as bytes (4 or 16), for prefix arithmetic; null if not an address. */
export function ipBytes(ip: NormalizedIp): Uint8Array | null {
  if (ip.family === 4) {
    const parts = ip.address.split('.').map(Number);
    return parts.length === 4 ? Uint8Array.from(parts) : null;
  }
  const canonical = canonicalIpv6(ip.address);
  if (canonical === null) return null;
  const [head = '', tail] = canonical.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}
