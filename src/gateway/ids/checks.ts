import type { IdsCheckName, IdsTarget } from './types.js';

/**
 * Structural checks: rules that are about the shape of a request rather than a pattern in it.
 * The engine gathers the facts while it decodes a target; a check only compares them with the
 * rule's limits, so checks cost nothing measurable.
 */

export interface JsonFacts {
  maxDepth: number;
  maxArrayLength: number;
  maxKeys: number;
  deepestPath: string;
  longestArrayPath: string;
  widestObjectPath: string;
}

/** A place in a target, with a redacted sample already made for it. */
export interface FactSpot {
  field: string;
  sample: string;
}

export interface TargetFacts {
  target: IdsTarget;
  method?: string;
  invalidPercent?: FactSpot;
  invalidUtf8?: FactSpot;
  nullByte?: FactSpot;
  json?: JsonFacts;
  /** Full size of a non-opaque body. */
  bodyBytes?: number;
  headerCount?: number;
  longestHeader?: { name: string; length: number };
  paramCount?: number;
  urlLength?: number;
  lengthConflict?: string;
}

export interface CheckHit {
  sample: string;
  field?: string;
}

interface CheckDef {
  targets: readonly IdsTarget[];
  /** Names of the numeric parameters it needs. */
  params: readonly string[];
  run(facts: TargetFacts, params: Record<string, number>): CheckHit | null;
}

const ALLOWED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

const over = (value: number | undefined, max: number | undefined): value is number => value !== undefined && max !== undefined && value > max;

export const CHECKS: Readonly<Record<IdsCheckName, CheckDef>> = {
  json_depth: {
    targets: ['body', 'query'],
    params: ['max'],
    run: (f, p) => (f.json && over(f.json.maxDepth, p.max) ? { sample: `JSON nested ${f.json.maxDepth} levels deep (limit ${p.max})`, field: f.json.deepestPath } : null),
  },
  json_array_length: {
    targets: ['body', 'query'],
    params: ['max'],
    run: (f, p) => (f.json && over(f.json.maxArrayLength, p.max) ? { sample: `JSON array of ${f.json.maxArrayLength} elements (limit ${p.max})`, field: f.json.longestArrayPath } : null),
  },
  json_key_count: {
    targets: ['body', 'query'],
    params: ['max'],
    run: (f, p) => (f.json && over(f.json.maxKeys, p.max) ? { sample: `JSON object with ${f.json.maxKeys} keys (limit ${p.max})`, field: f.json.widestObjectPath } : null),
  },
  body_size: {
    targets: ['body'],
    params: ['max'],
    run: (f, p) => (over(f.bodyBytes, p.max) ? { sample: `body of ${f.bodyBytes} bytes (limit ${p.max})` } : null),
  },
  header_count: {
    targets: ['headers'],
    params: ['max'],
    run: (f, p) => (over(f.headerCount, p.max) ? { sample: `${f.headerCount} headers (limit ${p.max})` } : null),
  },
  overlong_header: {
    targets: ['headers'],
    params: ['max'],
    run: (f, p) => (f.longestHeader && over(f.longestHeader.length, p.max) ? { sample: `header of ${f.longestHeader.length} characters (limit ${p.max})`, field: f.longestHeader.name } : null),
  },
  invalid_utf8: {
    targets: ['path', 'query', 'body'],
    params: [],
    run: (f) => (f.invalidUtf8 ? { sample: f.invalidUtf8.sample, field: f.invalidUtf8.field } : null),
  },
  null_byte: {
    targets: ['path', 'query', 'headers', 'body'],
    params: [],
    run: (f) => (f.nullByte ? { sample: f.nullByte.sample, field: f.nullByte.field } : null),
  },
  invalid_percent: {
    targets: ['path', 'query', 'body'],
    params: [],
    run: (f) => (f.invalidPercent ? { sample: f.invalidPercent.sample, field: f.invalidPercent.field } : null),
  },
  query_param_count: {
    targets: ['query', 'body'],
    params: ['max'],
    run: (f, p) => (over(f.paramCount, p.max) ? { sample: `${f.paramCount} parameters (limit ${p.max})` } : null),
  },
  url_length: {
    targets: ['path'],
    params: ['max'],
    run: (f, p) => (over(f.urlLength, p.max) ? { sample: `URL of ${f.urlLength} characters (limit ${p.max})` } : null),
  },
  content_length_conflict: {
    targets: ['headers'],
    params: [],
    run: (f) => (f.lengthConflict ? { sample: f.lengthConflict, field: 'transfer-encoding' } : null),
  },
  unknown_method: {
    targets: ['method'],
    params: [],
    run: (f) => (f.method !== undefined && !ALLOWED_METHODS.has(f.method.toUpperCase()) ? { sample: f.method.slice(0, 40), field: 'method' } : null),
  },
};

/** What a request's framing headers say about its length, when they disagree. */
export function lengthConflict(contentLength: string | string[] | undefined, transferEncoding: string | string[] | undefined): string | undefined {
  if (transferEncoding === undefined && (contentLength === undefined || (typeof contentLength === 'string' && contentLength.indexOf(',') === -1))) return undefined;
  const cls = contentLength === undefined ? [] : Array.isArray(contentLength) ? contentLength : [contentLength];
  const tes = transferEncoding === undefined ? [] : Array.isArray(transferEncoding) ? transferEncoding : [transferEncoding];
  if (tes.length > 0 && cls.length > 0) return 'both Transfer-Encoding and Content-Length';
  const distinct = new Set(cls.flatMap((v) => v.split(',')).map((v) => v.trim()));
  if (distinct.size > 1) return `conflicting Content-Length values (${[...distinct].slice(0, 3).join(', ').slice(0, 60)})`;
  if (tes.length > 1) return 'repeated Transfer-Encoding';
  const te = tes[0];
  if (te !== undefined) {
    const codings = te.toLowerCase().split(',').map((c) => c.trim());
    if (codings[codings.length - 1] !== 'chunked' || codings.filter((c) => c === 'chunked').length > 1 || te !== te.trim() || /[^\x21-\x7e ,]/.test(te)) {
      return `unusual Transfer-Encoding "${te.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}"`;
    }
  }
  return undefined;
}
