import { createHash } from 'node:crypto';

/** The first link's predecessor in every hash chain (audit log, data access log). */
export const GENESIS_HASH = '0'.repeat(64);

/** Stable JSON: keys sorted, so the same entry always hashes the same on any instance. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/** sha256 over the canonical form of an entry that includes its predecessor's hash. */
export function linkHash(entry: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson(entry)).digest('hex');
}
