import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IdsEngine } from './engine.js';
import { IDS_CLASSES, type IdsClass, type IdsRequest } from './types.js';

/**
 * A labelled corpus of requests, to measure what the rules catch and what they wrongly flag.
 * One JSON object a line: `{ "id", "label": "attack"|"benign", "class"?, "note"?, "request" }`.
 */

export interface CorpusRequest {
  method: string;
  path: string;
  query?: string;
  headers?: Record<string, string | string[]>;
  body?: string;
  /** `base64` for binary bodies (uploads); default utf8. */
  bodyEncoding?: 'utf8' | 'base64';
  /** Large bodies without a large file: body + unit × count + suffix. */
  bodyRepeat?: { unit: string; count: number; suffix?: string };
  contentType?: string;
}

export interface CorpusEntry {
  id: string;
  label: 'attack' | 'benign';
  class?: IdsClass;
  note?: string;
  request: CorpusRequest;
}

export const DEFAULT_CORPUS_DIR = fileURLToPath(new URL('../../../test/fixtures/ids-corpus/', import.meta.url));
export const CORPUS_FILES = ['attacks.jsonl', 'benign.jsonl'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseEntry(line: string, where: string): CorpusEntry {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isObject(v) || typeof v.id !== 'string' || (v.label !== 'attack' && v.label !== 'benign') || !isObject(v.request)) {
    throw new Error(`${where}: needs { id, label: "attack"|"benign", request }`);
  }
  const r = v.request;
  if (typeof r.method !== 'string' || typeof r.path !== 'string') throw new Error(`${where} (${v.id}): request needs method and path`);
  if (r.query !== undefined && typeof r.query !== 'string') throw new Error(`${where} (${v.id}): query must be a string`);
  if (r.body !== undefined && typeof r.body !== 'string') throw new Error(`${where} (${v.id}): body must be a string`);
  if (r.headers !== undefined && !isObject(r.headers)) throw new Error(`${where} (${v.id}): headers must be an object`);
  if (r.bodyRepeat !== undefined && (!isObject(r.bodyRepeat) || typeof r.bodyRepeat.unit !== 'string' || typeof r.bodyRepeat.count !== 'number' || r.bodyRepeat.count < 0 || r.bodyRepeat.count > 10_000_000)) {
    throw new Error(`${where} (${v.id}): bodyRepeat must be { unit, count ≤ 10,000,000, suffix? }`);
  }
  if (v.class !== undefined && !(IDS_CLASSES as readonly string[]).includes(String(v.class))) throw new Error(`${where} (${v.id}): unknown class ${JSON.stringify(v.class)}`);
  if (v.label === 'attack' && v.class === undefined) throw new Error(`${where} (${v.id}): an attack needs its class`);
  return v as unknown as CorpusEntry;
}

/** Reads attacks.jsonl and benign.jsonl; ids must be unique across both. */
export function loadCorpus(dir: string = DEFAULT_CORPUS_DIR): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  const ids = new Set<string>();
  for (const file of CORPUS_FILES) {
    const full = path.join(dir, file);
    fs.readFileSync(full, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (line.trim() === '') return;
        const e = parseEntry(line, `${file}:${i + 1}`);
        if (ids.has(e.id)) throw new Error(`${file}:${i + 1}: duplicate id ${e.id}`);
        ids.add(e.id);
        entries.push(e);
      });
  }
  return entries;
}

export function toIdsRequest(e: CorpusEntry): IdsRequest {
  const r = e.request;
  let body = r.body === undefined ? undefined : r.bodyEncoding === 'base64' ? Buffer.from(r.body, 'base64') : Buffer.from(r.body, 'utf8');
  if (r.bodyRepeat) body = Buffer.concat([body ?? Buffer.alloc(0), Buffer.from(r.bodyRepeat.unit.repeat(r.bodyRepeat.count), 'utf8'), Buffer.from(r.bodyRepeat.suffix ?? '', 'utf8')]);
  return {
    method: r.method,
    path: r.path,
    query: r.query ?? '',
    headers: r.headers ?? {},
    ...(body !== undefined ? { body } : {}),
    ...(r.contentType !== undefined ? { contentType: r.contentType } : {}),
  };
}

export interface ClassResult {
  attacks: number;
  detected: number;
  detection_rate: number;
  /** Ids of attacks of this class that no rule of this class caught. */
  missed: string[];
}

export interface CorpusReport {
  rulesVersion: string;
  classes: Record<IdsClass, ClassResult>;
  attacks: number;
  detected: number;
  detection_rate: number;
  benign: number;
  false_positives: number;
  false_positive_rate: number;
  /** Benign ids with a finding, and the rules that fired. */
  false_positive_ids: Array<{ id: string; rules: string[] }>;
  /** Share of benign requests that no rule's regular expression had to look at. */
  benign_decided_by_prefilter: number;
  /** Bytes inspected in one pass over the whole corpus. */
  bytes_inspected: number;
  /** Timed passes; throughput comes from the fastest. */
  rounds: number;
  /** Seconds of the fastest pass over the whole corpus. */
  seconds: number;
  mb_per_s: number;
  /** The same, benign requests only: the traffic that runs all day. */
  benign_mb_per_s: number;
  benign_us_per_request: number;
}

/**
 * Seconds for one pass over `requests`: the fastest of `rounds` timed passes (after a warm-up
 * pass), so that other work on a shared machine inflates the figure as little as possible.
 */
function timeRounds(engine: IdsEngine, requests: IdsRequest[], rounds: number): { seconds: number; bytes: number } {
  let bytes = 0;
  for (const r of requests) bytes += engine.inspectDetailed(r).bytesInspected;
  let best = Number.POSITIVE_INFINITY;
  for (let k = 0; k < rounds; k++) {
    const start = performance.now();
    for (const r of requests) engine.inspect(r);
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return { seconds: best, bytes };
}

/**
 * Detection per class (an attack counts when a rule of its own class fires), false positives
 * (a benign request with any finding, detect-mode ones included: they would pollute the
 * statistics), and throughput over `rounds` passes.
 */
export function evaluateCorpus(engine: IdsEngine, entries: CorpusEntry[] = loadCorpus(), opts: { rounds?: number } = {}): CorpusReport {
  const rounds = opts.rounds ?? 5;
  const classes = Object.fromEntries(IDS_CLASSES.map((c) => [c, { attacks: 0, detected: 0, detection_rate: 0, missed: [] as string[] }])) as Record<IdsClass, ClassResult>;
  const fps: Array<{ id: string; rules: string[] }> = [];
  let benign = 0;
  let prefilterOnly = 0;
  const all: IdsRequest[] = [];
  const benignRequests: IdsRequest[] = [];
  for (const e of entries) {
    const req = toIdsRequest(e);
    all.push(req);
    const r = engine.inspectDetailed(req);
    if (e.label === 'benign') {
      benign++;
      benignRequests.push(req);
      if (r.prefilterOnly) prefilterOnly++;
      if (r.findings.length > 0) fps.push({ id: e.id, rules: r.findings.map((f) => f.ruleId) });
    } else {
      const c = classes[e.class!];
      c.attacks++;
      if (r.findings.some((f) => f.class === e.class)) c.detected++;
      else c.missed.push(e.id);
    }
  }
  let attacks = 0;
  let detected = 0;
  for (const c of Object.values(classes)) {
    c.detection_rate = c.attacks === 0 ? 0 : c.detected / c.attacks;
    attacks += c.attacks;
    detected += c.detected;
  }
  const t = timeRounds(engine, all, rounds);
  const b = timeRounds(engine, benignRequests, rounds);
  return {
    rulesVersion: engine.version,
    classes,
    attacks,
    detected,
    detection_rate: attacks === 0 ? 0 : detected / attacks,
    benign,
    false_positives: fps.length,
    false_positive_rate: benign === 0 ? 0 : fps.length / benign,
    false_positive_ids: fps,
    benign_decided_by_prefilter: benign === 0 ? 0 : prefilterOnly / benign,
    bytes_inspected: t.bytes,
    rounds,
    seconds: t.seconds,
    mb_per_s: t.seconds === 0 ? 0 : t.bytes / t.seconds / 1e6,
    benign_mb_per_s: b.seconds === 0 ? 0 : b.bytes / b.seconds / 1e6,
    benign_us_per_request: benignRequests.length === 0 ? 0 : (b.seconds * 1e6) / benignRequests.length,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** The report as a plain-text table. */
export function formatCorpusReport(r: CorpusReport): string {
  const rows = IDS_CLASSES.map((c) => {
    const x = r.classes[c];
    return `${c.padEnd(20)} ${String(x.attacks).padStart(7)} ${String(x.detected).padStart(8)} ${pct(x.detection_rate).padStart(9)}${x.missed.length ? `  missed: ${x.missed.join(', ')}` : ''}`;
  });
  return [
    `IDS rules ${r.rulesVersion}`,
    `${'class'.padEnd(20)} ${'attacks'.padStart(7)} ${'detected'.padStart(8)} ${'rate'.padStart(9)}`,
    ...rows,
    `${'all attacks'.padEnd(20)} ${String(r.attacks).padStart(7)} ${String(r.detected).padStart(8)} ${pct(r.detection_rate).padStart(9)}`,
    `benign ${r.benign}, false positives ${r.false_positives} (${pct(r.false_positive_rate)})${r.false_positive_ids.length ? `: ${r.false_positive_ids.map((f) => `${f.id} [${f.rules.join(',')}]`).join('; ')}` : ''}`,
    `benign decided by the prefilter alone: ${pct(r.benign_decided_by_prefilter)}`,
    `throughput (fastest of ${r.rounds} passes): ${r.mb_per_s.toFixed(1)} MB/s over the whole corpus (${r.bytes_inspected} bytes a pass); benign requests only ${r.benign_mb_per_s.toFixed(1)} MB/s, ${r.benign_us_per_request.toFixed(1)} µs a request`,
  ].join('\n');
}
