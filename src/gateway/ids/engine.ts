import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHECKS, lengthConflict, type JsonFacts, type TargetFacts } from './checks.js';
import { scanJson, type JsonScan } from './json-scan.js';
import { boundBody, DEFAULT_MAX_BODY_BYTES, FIELD_SEPARATOR, foldText, percentDecode, shellView, sqlView } from './normalize.js';
import { cleanSample, isSensitiveHeader, isSensitiveKey, sampleAround } from './redact.js';
import { compileRules, IdsRulesError, type CompiledCheckRule, type CompiledPatternRule, type CompiledRules } from './rules.js';
import { DEFAULT_MODES, IDS_CLASSES, type IdsClass, type IdsDecision, type IdsFinding, type IdsInspection, type IdsMode, type IdsRequest, type IdsRuleSpec, type IdsTarget, type IdsView } from './types.js';

/**
 * The IDS engine (R12.2): inspects each request to the data API and the portal for attacking
 * traffic and says whether to let it through, record it, or refuse it.
 *
 * Cost model. Every target (method, path, query, headers, body) is decoded once into one string
 * (its fields joined by U+0001) and tested against one prefilter: a regular expression, shaped as
 * tries, of every rule's trigger literals. A benign request normally stops there. Only the fields
 * of a target that hold a trigger are looked at further, and only the rules whose own triggers
 * occur in a field run their regular expression on it (docs/decisions/0013-ids.md).
 */

export const DEFAULT_RULES_PATH = fileURLToPath(new URL('./rules.json', import.meta.url));

export interface IdsEngineOptions {
  /** Body bytes inspected at most (default 64 KiB); the rest is skipped and reported as truncated. */
  maxBodyBytes?: number;
  /** false runs every rule on every field (slow; to check that triggers never hide a match). */
  prefilter?: boolean;
  /** Findings kept per request at most (default 32). */
  maxFindings?: number;
}

interface Segment {
  field: string;
  key: boolean;
  sensitive: boolean;
  raw: string;
  /** For a header's name and values: the lower-case header name. */
  header: string | null;
}

interface Work {
  target: IdsTarget;
  segs: Segment[];
  /** The fields, joined by FIELD_SEPARATOR, normalised. */
  text: string;
  /** Each field normalised: split from `text` when all are needed, else folded one by one. */
  texts: Array<string | undefined> | null;
  split: boolean;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * One regular expression for a set of trigger literals, shaped as tries so each position is
 * rejected fast. Literals that begin with a letter or digit only count at the start of a word
 * (`\b`): keywords are written that way in the rules, and it lets the engine skip the inside of
 * every word, which is most of the text.
 */
export function literalTrie(words: readonly string[]): RegExp | null {
  const unique = [...new Set(words)];
  const wordLed = unique.filter((w) => WORD_LED.test(w));
  const other = unique.filter((w) => !WORD_LED.test(w));
  const parts: string[] = [];
  if (wordLed.length > 0) parts.push(`\\b${trieSource(wordLed)}`);
  if (other.length > 0) parts.push(trieSource(other));
  return parts.length === 0 ? null : new RegExp(parts.join('|'));
}

const WORD_LED = /^[a-z0-9]/;

function trieSource(words: readonly string[]): string {
  type Node = Map<string, Node | null>;
  const root: Node = new Map();
  for (const w of words) {
    let node = root;
    for (const ch of w) {
      let next = node.get(ch);
      if (!next) {
        next = new Map();
        node.set(ch, next);
      }
      node = next;
    }
    node.set('', null);
  }
  // A word that is a prefix of another makes the longer one redundant for an existence test.
  const emit = (node: Node): string => {
    if (node.has('')) return '';
    const alts = [...node.entries()].map(([ch, child]) => esc(ch) + (child ? emit(child) : ''));
    return alts.length === 1 ? alts[0]! : `(?:${alts.join('|')})`;
  };
  return emit(root);
}

/** Text whose SQL view can differ from it (block comments, or line comments before a newline). */
function hasSqlComment(t: string): boolean {
  return t.indexOf('/*') !== -1 || (t.indexOf('\n') !== -1 && (t.indexOf('#') !== -1 || t.indexOf('--') !== -1));
}

/**
 * The rules that look at one target (or one header), with their prefilter: one trie of all their
 * triggers, and an index from each trigger's first character to the triggers and rules it serves.
 */
class Plan {
  readonly prefilter: RegExp | null;
  /** Prefilters of the SQL-/shell-view rules alone, or null when their view cannot matter. */
  private readonly sqlPrefilter: RegExp | null;
  private readonly shellPrefilter: RegExp | null;
  private readonly finder: RegExp | null;
  private readonly byFirst = new Map<number, Array<{ word: string; rules: number[] }>>();
  private readonly always: number[];
  readonly hasAlways: boolean;
  readonly sql: boolean;
  readonly shell: boolean;

  constructor(readonly rules: CompiledPatternRule[]) {
    const words = rules.flatMap((r) => r.triggers);
    this.prefilter = literalTrie(words);
    this.finder = this.prefilter ? new RegExp(this.prefilter.source, 'g') : null;
    const byWord = new Map<string, number[]>();
    rules.forEach((r, i) => {
      for (const w of r.triggers) {
        const list = byWord.get(w) ?? [];
        list.push(i);
        byWord.set(w, list);
      }
    });
    for (const [word, ruleIdx] of byWord) {
      const c = word.charCodeAt(0);
      const bucket = this.byFirst.get(c) ?? [];
      bucket.push({ word, rules: ruleIdx });
      this.byFirst.set(c, bucket);
    }
    this.always = rules.flatMap((r, i) => (r.triggers.length === 0 ? [i] : []));
    this.hasAlways = this.always.length > 0;
    this.sql = rules.some((r) => r.view === 'sql');
    this.shell = rules.some((r) => r.view === 'shell');
    // A view only deletes or replaces characters, so it cannot create a one-character trigger
    // that the plain text lacks: a view whose rules have only such triggers need not be computed.
    const viewTrie = (view: IdsView) => {
      const ws = rules.filter((r) => r.view === view).flatMap((r) => r.triggers);
      return ws.some((w) => w.length > 1) ? literalTrie(ws) : null;
    };
    this.sqlPrefilter = viewTrie('sql');
    this.shellPrefilter = viewTrie('shell');
  }

  /** Could any rule match this text (or its SQL/shell view)? Usually one regular-expression test. */
  maybe(t: string): boolean {
    if (this.hasAlways) return true;
    const p = this.prefilter;
    if (p === null) return false;
    if (p.test(t)) return true;
    if (this.sqlPrefilter !== null && hasSqlComment(t)) {
      const v = sqlView(t);
      if (v !== t && this.sqlPrefilter.test(v)) return true;
    }
    if (this.shellPrefilter !== null) {
      const v = shellView(t);
      if (v !== t && this.shellPrefilter.test(v)) return true;
    }
    return false;
  }

  /**
   * Which fields of a joined text are worth a closer look: those where a trigger starts, or whose
   * SQL/shell view could differ. Each field is reported once; the search then skips to the next.
   */
  fieldsToVisit(joined: string, starts: number[]): number[] {
    if (this.hasAlways) return starts.map((_s, i) => i);
    const found: number[] = [];
    fieldsWith(this.finder, joined, starts, found);
    if (this.sqlPrefilter !== null && hasSqlComment(joined)) fieldsWith(SQL_ACTIVATION, joined, starts, found);
    if (this.shellPrefilter !== null) fieldsWith(SHELL_ACTIVATION, joined, starts, found);
    if (found.length <= 1) return found;
    return [...new Set(found)].sort((a, b) => a - b);
  }

  /**
   * Marks the rules whose triggers occur in the view of `views` each rule reads. Every position
   * where some trigger starts is visited once (overlapping matches), so no trigger is missed.
   */
  candidates(views: SegmentViews, mark: Uint8Array): boolean {
    let any = false;
    for (const i of this.always) {
      mark[i] = 1;
      any = true;
    }
    const plain = views.plain;
    const sqlText = this.sql ? views.get('sql') : plain;
    const shellText = this.shell ? views.get('shell') : plain;
    // Plain text serves plain rules, and SQL/shell rules whose view left the text unchanged.
    any = this.collect(plain, true, sqlText === plain, shellText === plain, mark) || any;
    if (sqlText !== plain) any = this.collect(sqlText, false, true, false, mark) || any;
    if (shellText !== plain) any = this.collect(shellText, false, false, true, mark) || any;
    return any;
  }

  private collect(t: string, plainRules: boolean, sqlRules: boolean, shellRules: boolean, mark: Uint8Array): boolean {
    const re = this.finder;
    if (re === null) return false;
    let any = false;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(t)) !== null) {
      const at = m.index;
      for (const entry of this.byFirst.get(t.charCodeAt(at)) ?? []) {
        if (!t.startsWith(entry.word, at)) continue;
        for (const i of entry.rules) {
          if (mark[i] === 1) continue;
          const v = this.rules[i]!.view;
          if (!(v === 'plain' ? plainRules : v === 'sql' ? sqlRules : shellRules)) continue;
          mark[i] = 1;
          any = true;
        }
      }
      re.lastIndex = at + 1;
    }
    return any;
  }
}

/** Where a field's SQL or shell view may differ from its plain text. */
const SQL_ACTIVATION = /\/\*|#|--/g;
const SHELL_ACTIVATION = /['"\\$]|\{[^{}\s]*,/g;

/** Adds the fields of `joined` where `re` matches, each once, to `found`. */
function fieldsWith(re: RegExp | null, joined: string, starts: number[], found: number[]): void {
  if (re === null) return;
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(joined)) !== null) {
    const i = fieldAt(starts, m.index);
    found.push(i);
    re.lastIndex = i + 1 < starts.length ? starts[i + 1]! : joined.length;
  }
}

/** The field holding position `at` of a joined text, given each field's start. */
function fieldAt(starts: number[], at: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

class SegmentViews {
  private sqlText: string | null = null;
  private shellText: string | null = null;
  constructor(readonly plain: string) {}
  get(view: IdsView): string {
    if (view === 'sql') return (this.sqlText ??= sqlView(this.plain));
    if (view === 'shell') return (this.shellText ??= shellView(this.plain));
    return this.plain;
  }
}

const TARGET_INDEX: Record<IdsTarget, number> = { method: 0, path: 1, query: 2, headers: 3, body: 4 };

/** Findings of one request: at most one per rule and target, at most `max` in all. */
class FindingSet {
  readonly list: IdsFinding[] = [];
  private readonly seen = new Set<number>();
  constructor(private readonly max: number) {}
  has(ruleIndex: number, target: IdsTarget): boolean {
    return this.seen.has(ruleIndex * 8 + TARGET_INDEX[target]);
  }
  add(ruleIndex: number, f: IdsFinding): void {
    const k = ruleIndex * 8 + TARGET_INDEX[f.target];
    if (this.seen.has(k) || this.list.length >= this.max) return;
    this.seen.add(k);
    this.list.push(f);
  }
}

const clean = (s: string) => (s.indexOf(FIELD_SEPARATOR) === -1 ? s : s.replaceAll(FIELD_SEPARATOR, '\ufffd'));
const clip = (s: string, n = 80) => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * A form body's beginning without the character the cut split: a trailing `%` or `%X`, and the
 * percent-encoded bytes of a UTF-8 character whose remaining bytes were past the cut.
 */
export function withoutCutCharacter(raw: string): string {
  const s = raw.replace(/%[0-9A-Fa-f]?$/, '');
  const tail = /(?:%[0-9A-Fa-f]{2})+$/.exec(s);
  if (!tail) return s;
  const bytes = (tail[0].match(/%[0-9A-Fa-f]{2}/g) ?? []).map((h) => parseInt(h.slice(1), 16));
  let lead = bytes.length - 1;
  while (lead > 0 && lead > bytes.length - 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  const b = bytes[lead]!;
  const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  const have = bytes.length - lead;
  return have < need ? s.slice(0, s.length - have * 3) : s;
}
const JSON_START = /^\s*[[{]/;

function headerValue(headers: IdsRequest['headers'], name: string): string | string[] | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const k of Object.keys(headers)) if (k.toLowerCase() === name) return headers[k];
  return undefined;
}

function mergeJson(into: JsonFacts | undefined, scan: JsonScan): JsonFacts {
  const base: JsonFacts = into ?? { maxDepth: 0, maxArrayLength: 0, maxKeys: 0, deepestPath: '', longestArrayPath: '', widestObjectPath: '' };
  if (scan.maxDepth > base.maxDepth) {
    base.maxDepth = scan.maxDepth;
    base.deepestPath = scan.deepestPath;
  }
  if (scan.maxArrayLength > base.maxArrayLength) {
    base.maxArrayLength = scan.maxArrayLength;
    base.longestArrayPath = scan.longestArrayPath;
  }
  if (scan.maxKeys > base.maxKeys) {
    base.maxKeys = scan.maxKeys;
    base.widestObjectPath = scan.widestObjectPath;
  }
  return base;
}

export class IdsEngine {
  readonly version: string;
  readonly rules: readonly IdsRuleSpec[];
  private readonly compiled: CompiledRules;
  private readonly plans: Record<'method' | 'path' | 'query' | 'body', Plan>;
  private readonly headerPlan: Plan;
  private readonly namedHeaderPlans: Map<string, Plan>;
  private readonly checks: Record<IdsTarget, CompiledCheckRule[]>;
  private readonly modes: Record<IdsClass, IdsMode> = { ...DEFAULT_MODES };
  private readonly maxBodyBytes: number;
  private readonly usePrefilter: boolean;
  private readonly maxFindings: number;

  /** Loads and validates a rules file (default: the rules.json shipped beside this module). */
  static fromFile(path: string = DEFAULT_RULES_PATH, options: IdsEngineOptions = {}): IdsEngine {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (e) {
      throw new IdsRulesError([{ ruleId: null, message: `cannot be read: ${e instanceof Error ? e.message : String(e)}` }], path);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new IdsRulesError([{ ruleId: null, message: `is not JSON: ${e instanceof Error ? e.message : String(e)}` }], path);
    }
    return new IdsEngine(compileRules(parsed, path), options);
  }

  /** Validates and compiles rules given as an object (the parsed form of a rules file). */
  static fromObject(rulesFile: unknown, options: IdsEngineOptions = {}): IdsEngine {
    return new IdsEngine(compileRules(rulesFile), options);
  }

  private constructor(compiled: CompiledRules, options: IdsEngineOptions) {
    this.compiled = compiled;
    this.version = compiled.version;
    this.rules = compiled.specs;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (!Number.isInteger(this.maxBodyBytes) || this.maxBodyBytes < 1) throw new RangeError('maxBodyBytes must be a positive whole number');
    this.usePrefilter = options.prefilter ?? true;
    this.maxFindings = options.maxFindings ?? 32;
    const patterns = compiled.rules.filter((r): r is CompiledPatternRule => r.kind === 'pattern');
    const on = (t: IdsTarget) => patterns.filter((r) => r.targets.has(t));
    this.plans = { method: new Plan(on('method')), path: new Plan(on('path')), query: new Plan(on('query')), body: new Plan(on('body')) };
    this.headerPlan = new Plan(patterns.filter((r) => r.allHeaders));
    this.namedHeaderPlans = new Map();
    const names = new Set(patterns.filter((r) => !r.allHeaders).flatMap((r) => [...r.headerNames]));
    for (const name of names) this.namedHeaderPlans.set(name, new Plan(patterns.filter((r) => !r.allHeaders && r.headerNames.has(name))));
    const checks = compiled.rules.filter((r): r is CompiledCheckRule => r.kind === 'check');
    this.checks = { method: [], path: [], query: [], headers: [], body: [] };
    for (const c of checks) for (const t of c.targets) this.checks[t].push(c);
  }

  setMode(cls: IdsClass, mode: IdsMode): void {
    if (!(IDS_CLASSES as readonly string[]).includes(cls)) throw new RangeError(`unknown IDS class ${JSON.stringify(cls)}`);
    if (mode !== 'detect' && mode !== 'block') throw new RangeError(`unknown IDS mode ${JSON.stringify(mode)}`);
    this.modes[cls] = mode;
  }

  getMode(cls: IdsClass): IdsMode {
    return this.modes[cls];
  }

  /** Block if any finding's class is in block mode; log if there are findings; else allow. */
  decide(findings: IdsFinding[]): IdsDecision {
    if (findings.length === 0) return { action: 'allow', findings };
    return { action: findings.some((f) => this.modes[f.class] === 'block') ? 'block' : 'log', findings };
  }

  inspect(req: IdsRequest): IdsFinding[] {
    return this.inspectDetailed(req).findings;
  }

  inspectDetailed(req: IdsRequest): IdsInspection {
    const out = new FindingSet(this.maxFindings);
    const stats = { regexRuns: 0 };
    let bytes = 0;
    const method = typeof req.method === 'string' ? req.method : '';
    const rawPath = typeof req.path === 'string' ? req.path : '';
    const rawQuery = typeof req.query === 'string' ? (req.query.startsWith('?') ? req.query.slice(1) : req.query) : '';
    const headers = req.headers ?? {};

    // Method.
    bytes += method.length;
    this.runChecks({ target: 'method', method }, out);
    if (this.plans.method.rules.length > 0) {
      this.scan(this.plans.method, this.work('method', [{ field: 'method', key: false, sensitive: false, raw: clean(method), header: null }]), null, out, stats);
    }

    // Path.
    bytes += rawPath.length;
    const path = percentDecode(rawPath, false);
    const pathWork = this.work('path', [{ field: 'path', key: false, sensitive: false, raw: clean(path.text), header: null }]);
    const pathFacts: TargetFacts = { target: 'path', urlLength: rawPath.length + (rawQuery === '' ? 0 : rawQuery.length + 1) };
    if (path.invalidPercent) pathFacts.invalidPercent = { field: 'path', sample: this.percentSample(rawPath) };
    if (path.invalidUtf8) pathFacts.invalidUtf8 = { field: 'path', sample: cleanSample(pathWork.text) };
    this.nullByteFact(pathWork, pathFacts);
    this.runChecks(pathFacts, out);
    this.scan(this.plans.path, pathWork, null, out, stats);

    // Query.
    bytes += rawQuery.length;
    if (rawQuery !== '') {
      const facts: TargetFacts = { target: 'query' };
      const segs = this.formSegments(rawQuery, facts);
      const w = this.work('query', segs);
      this.nullByteFact(w, facts);
      this.runChecks(facts, out);
      this.scan(this.plans.query, w, null, out, stats);
    }

    // Headers.
    const hsegs: Segment[] = [];
    const named = new Map<string, number[]>();
    let headerCount = 0;
    let longest = { name: '', length: 0 };
    for (const name of Object.keys(headers)) {
      const v = headers[name];
      if (v === undefined) continue;
      const lname = name.toLowerCase();
      bytes += name.length;
      const wanted = this.namedHeaderPlans.has(lname) ? (named.get(lname) ?? []) : null;
      if (wanted) named.set(lname, wanted);
      wanted?.push(hsegs.length);
      hsegs.push({ field: clip(lname), key: true, sensitive: false, raw: clean(lname), header: lname });
      for (const raw of Array.isArray(v) ? v : [v]) {
        const value = String(raw);
        headerCount++;
        bytes += value.length;
        if (value.length > longest.length) longest = { name: clip(lname), length: value.length };
        const decoded = value.indexOf('%') === -1 ? value : percentDecode(value, false).text;
        wanted?.push(hsegs.length);
        hsegs.push({ field: clip(lname), key: false, sensitive: isSensitiveHeader(lname), raw: clean(decoded), header: lname });
      }
    }
    if (hsegs.length > 0) {
      const facts: TargetFacts = { target: 'headers', headerCount, longestHeader: longest };
      const conflict = lengthConflict(headerValue(headers, 'content-length'), headerValue(headers, 'transfer-encoding'));
      if (conflict !== undefined) facts.lengthConflict = conflict;
      const w = this.work('headers', hsegs);
      this.nullByteFact(w, facts);
      this.runChecks(facts, out);
      this.scan(this.headerPlan, w, null, out, stats);
      for (const [name, idx] of named) this.scan(this.namedHeaderPlans.get(name)!, w, idx, out, stats);
    }

    // Body.
    let truncated = false;
    const declaredRaw = headerValue(headers, 'content-length');
    const declared = Number(Array.isArray(declaredRaw) ? declaredRaw[0] : declaredRaw);
    const opaque = this.compiled.opaqueBodies.some((o) => o.method === method.toUpperCase() && o.path.test(rawPath));
    if (!opaque && (req.body !== undefined || (Number.isFinite(declared) && declared > 0))) {
      const facts: TargetFacts = { target: 'body' };
      const body = req.body ?? '';
      const bound = boundBody(body, this.maxBodyBytes);
      bytes += bound.bytesInspected;
      const total = Math.max(bound.totalBytes, Number.isFinite(declared) ? declared : 0);
      truncated = bound.truncated || total > bound.totalBytes;
      facts.bodyBytes = total;
      const ctRaw = req.contentType ?? headerValue(headers, 'content-type');
      const ct = (Array.isArray(ctRaw) ? (ctRaw[0] ?? '') : (ctRaw ?? '')).toLowerCase();
      const isJson = ct.includes('json') || (ct === '' && JSON_START.test(bound.text));
      const isForm = ct.includes('x-www-form-urlencoded');
      const textual = isJson || isForm || ct === '' || ct.startsWith('text/') || ct.includes('xml');
      if (bound.invalidUtf8 && textual) facts.invalidUtf8 = { field: 'body', sample: cleanSample(bound.text.slice(0, 200)) };
      let segs: Segment[];
      if (bound.text === '') segs = [];
      else if (isJson) {
        const scan = scanJson(bound.text);
        facts.json = mergeJson(undefined, scan);
        segs = scan.segments.map((s) => ({ field: s.path === '' ? 'body' : s.path, key: s.key, sensitive: !s.key && isSensitiveKey(s.name), raw: clean(s.text), header: null }));
        // Anything outside strings that is not JSON (`{"a":1} union select …`) is looked at too.
        if (!scan.clean) segs.push({ field: 'body', key: false, sensitive: false, raw: bound.text, header: null });
      } else if (isForm) {
        // A form cut at the inspection limit may end inside a percent-encoded character: that cut is
        // the limit's doing, not the sender's, and must not read as malformed input.
        segs = this.formSegments(bound.truncated ? withoutCutCharacter(bound.text) : bound.text, facts);
      } else {
        segs = [{ field: 'body', key: false, sensitive: false, raw: bound.text, header: null }];
      }
      const w = this.work('body', segs);
      this.nullByteFact(w, facts);
      this.runChecks(facts, out);
      if (segs.length > 0) this.scan(this.plans.body, w, null, out, stats);
    }

    return { findings: out.list, bytesInspected: bytes, truncated, prefilterOnly: stats.regexRuns === 0 };
  }

  private work(target: IdsTarget, segs: Segment[]): Work {
    const joined = segs.length === 1 ? segs[0]!.raw : segs.map((s) => s.raw).join(FIELD_SEPARATOR);
    return { target, segs, text: foldText(joined).text, texts: null, split: false };
  }

  /** All fields' normalised texts (one split of the joined text). */
  private textsOf(w: Work): Array<string | undefined> {
    if (w.split && w.texts) return w.texts;
    let texts: string[] = w.segs.length === 1 ? [w.text] : w.text.split(FIELD_SEPARATOR);
    if (texts.length !== w.segs.length) texts = w.segs.map((s) => foldText(s.raw).text);
    w.texts = texts;
    w.split = true;
    return texts;
  }

  /** Where each field starts in the joined text. */
  private startsOf(w: Work): number[] {
    const starts = [0];
    if (w.segs.length === 1) return starts;
    let at = w.text.indexOf(FIELD_SEPARATOR);
    while (at !== -1) {
      starts.push(at + 1);
      at = w.text.indexOf(FIELD_SEPARATOR, at + 1);
    }
    return starts;
  }

  /** One field's normalised text, without splitting the rest. */
  private textAt(w: Work, i: number): string {
    if (w.texts === null) w.texts = new Array<string | undefined>(w.segs.length);
    let t = w.texts[i];
    if (t === undefined) {
      t = w.segs.length === 1 ? w.text : foldText(w.segs[i]!.raw).text;
      w.texts[i] = t;
    }
    return t;
  }

  /** Query strings and form bodies: names and values decoded; JSON values (e.g. `where`) opened. */
  private formSegments(raw: string, facts: TargetFacts): Segment[] {
    const segs: Segment[] = [];
    let params = 0;
    for (const part of raw.split('&')) {
      if (part === '') continue;
      params++;
      const eq = part.indexOf('=');
      const rawName = eq === -1 ? part : part.slice(0, eq);
      const rawValue = eq === -1 ? '' : part.slice(eq + 1);
      const name = percentDecode(rawName, true);
      const value = rawValue === '' ? null : percentDecode(rawValue, true);
      const field = clip(name.text);
      const sensitive = isSensitiveKey(name.text);
      if (!facts.invalidPercent && (name.invalidPercent || value?.invalidPercent)) {
        facts.invalidPercent = { field, sample: sensitive ? '***' : this.percentSample(part) };
      }
      if (!facts.invalidUtf8 && (name.invalidUtf8 || value?.invalidUtf8)) {
        facts.invalidUtf8 = { field, sample: sensitive ? '***' : cleanSample(`${name.text}=${value?.text ?? ''}`) };
      }
      segs.push({ field, key: true, sensitive: false, raw: clean(name.text), header: null });
      if (value === null) continue;
      const v = value.text;
      if (JSON_START.test(v)) {
        const scan = scanJson(v, field);
        facts.json = mergeJson(facts.json, scan);
        for (const s of scan.segments) segs.push({ field: s.path, key: s.key, sensitive: sensitive || (!s.key && isSensitiveKey(s.name)), raw: clean(s.text), header: null });
        if (!scan.clean) segs.push({ field, key: false, sensitive, raw: clean(v), header: null });
      } else {
        segs.push({ field, key: false, sensitive, raw: clean(v), header: null });
      }
    }
    facts.paramCount = params;
    return segs;
  }

  private percentSample(raw: string): string {
    const i = raw.search(/%(?![0-9a-fA-F]{2})/);
    return sampleAround(raw.toLowerCase(), Math.max(0, i), Math.max(0, i) + 3, false);
  }

  private nullByteFact(w: Work, facts: TargetFacts): void {
    if (this.checks[w.target].every((c) => c.check !== 'null_byte')) return;
    if (w.text.indexOf('\u0000') === -1) return;
    const texts = this.textsOf(w);
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      const at = t.indexOf('\u0000');
      if (at === -1) continue;
      const seg = w.segs[i]!;
      facts.nullByte = { field: seg.field, sample: sampleAround(t, at, at + 1, seg.sensitive) };
      return;
    }
  }

  private runChecks(facts: TargetFacts, out: FindingSet): void {
    for (const c of this.checks[facts.target]) {
      if (out.has(c.index, facts.target)) continue;
      const hit = CHECKS[c.check].run(facts, c.params);
      if (hit === null) continue;
      const f: IdsFinding = { ruleId: c.id, class: c.class, severity: c.severity, target: facts.target, sample: cleanSample(hit.sample) };
      if (hit.field !== undefined) f.field = hit.field;
      out.add(c.index, f);
    }
  }

  /**
   * The rules of one plan over a target's fields (or only those at `only`). The joined text is
   * tested first; fields are looked at one by one only when it could match.
   */
  private scan(plan: Plan, w: Work, only: number[] | null, out: FindingSet, stats: { regexRuns: number }): void {
    const n = plan.rules.length;
    if (n === 0) return;
    const pre = this.usePrefilter;
    if (pre && only === null && !plan.maybe(w.text)) return;
    let visit = only;
    if (visit === null) {
      this.textsOf(w);
      visit = pre ? plan.fieldsToVisit(w.text, this.startsOf(w)) : w.segs.map((_s, i) => i);
    }
    const mark = new Uint8Array(n);
    for (const i of visit) {
      const t = this.textAt(w, i);
      if (t === '') continue;
      const seg = w.segs[i]!;
      const views = new SegmentViews(t);
      if (pre) {
        mark.fill(0);
        if (!plan.candidates(views, mark)) continue;
      }
      for (let r = 0; r < n; r++) {
        if (pre && mark[r] === 0) continue;
        const rule = plan.rules[r]!;
        if (out.has(rule.index, w.target)) continue;
        const vt = views.get(rule.view);
        stats.regexRuns++;
        const m = rule.regex.exec(vt);
        if (m) {
          out.add(rule.index, { ruleId: rule.id, class: rule.class, severity: rule.severity, target: w.target, field: seg.field, sample: sampleAround(vt, m.index, m.index + m[0].length, seg.sensitive) });
        }
      }
    }
  }
}
