import { CHECKS } from './checks.js';
import { IDS_CHECKS, IDS_CLASSES, IDS_SEVERITIES, IDS_TARGETS, IDS_VIEWS, type IdsCheckName, type IdsClass, type IdsRuleSpec, type IdsRulesFile, type IdsSeverity, type IdsTarget, type IdsView } from './types.js';

/**
 * Reading and compiling the rules file. Rules are data so they can be reviewed, versioned and
 * changed without touching the engine; in exchange the file is validated strictly on load, and
 * every problem names the rule it is in.
 */

export interface IdsRuleProblem {
  /** The rule's id (or its position when it has no usable id); null for the file itself. */
  ruleId: string | null;
  message: string;
}

export class IdsRulesError extends Error {
  readonly problems: IdsRuleProblem[];

  constructor(problems: IdsRuleProblem[], source?: string) {
    const where = source ? ` (${source})` : '';
    super(`Invalid IDS rules file${where}:\n${problems.map((p) => `  - ${p.ruleId === null ? 'file' : `rule ${p.ruleId}`}: ${p.message}`).join('\n')}`);
    this.name = 'IdsRulesError';
    this.problems = problems;
  }

  /** The first rule id named, for callers that handle one problem at a time. */
  get ruleId(): string | null {
    return this.problems.find((p) => p.ruleId !== null)?.ruleId ?? null;
  }
}

export interface CompiledPatternRule {
  kind: 'pattern';
  /** Position in the rules file. */
  index: number;
  spec: IdsRuleSpec;
  id: string;
  class: IdsClass;
  severity: IdsSeverity;
  view: IdsView;
  regex: RegExp;
  triggers: string[];
  targets: Set<IdsTarget>;
  /** For the headers target: every header, or only these (lower-case) names. */
  allHeaders: boolean;
  headerNames: Set<string>;
}

export interface CompiledCheckRule {
  kind: 'check';
  index: number;
  spec: IdsRuleSpec;
  id: string;
  class: IdsClass;
  severity: IdsSeverity;
  check: IdsCheckName;
  params: Record<string, number>;
  targets: Set<IdsTarget>;
}

export type CompiledRule = CompiledPatternRule | CompiledCheckRule;

export interface CompiledRules {
  version: string;
  opaqueBodies: Array<{ method: string; path: RegExp }>;
  rules: CompiledRule[];
  specs: IdsRuleSpec[];
}

const RULE_ID = /^[A-Z][A-Z0-9]{1,15}-\d{3}$/;
const VERSION = /^\d{4}\.\d{1,2}\.\d{1,4}$/;
const HEADER_TARGET = /^header:([a-z0-9!#$%&'*+.^_`|~-]{1,64})$/;
const ALLOWED_FLAGS = /^[imsu]*$/;
const RULE_KEYS = new Set(['id', 'class', 'severity', 'description', 'targets', 'pattern', 'triggers', 'view', 'check', 'params']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const oneOf = <T extends string>(list: readonly T[], v: unknown): v is T => typeof v === 'string' && (list as readonly string[]).includes(v);

function compileRule(raw: unknown, index: number, seen: Set<string>, problems: IdsRuleProblem[]): CompiledRule | null {
  const before = problems.length;
  if (!isObject(raw)) {
    problems.push({ ruleId: `#${index + 1}`, message: 'must be an object' });
    return null;
  }
  const label = typeof raw.id === 'string' && raw.id !== '' ? raw.id : `#${index + 1}`;
  const bad = (message: string) => problems.push({ ruleId: label, message });

  if (typeof raw.id !== 'string' || !RULE_ID.test(raw.id)) bad('id must look like SQLI-001 (capitals, a dash, three digits)');
  else if (seen.has(raw.id)) bad('id is used by another rule');
  else seen.add(raw.id);
  for (const k of Object.keys(raw)) if (!RULE_KEYS.has(k)) bad(`unknown field "${k}"`);
  if (!oneOf(IDS_CLASSES, raw.class)) bad(`unknown class ${JSON.stringify(raw.class)}; one of ${IDS_CLASSES.join(', ')}`);
  if (!oneOf(IDS_SEVERITIES, raw.severity)) bad(`unknown severity ${JSON.stringify(raw.severity)}; one of ${IDS_SEVERITIES.join(', ')}`);
  if (typeof raw.description !== 'string' || raw.description.trim() === '') bad('needs a description');

  const targets = new Set<IdsTarget>();
  const headerNames = new Set<string>();
  if (!Array.isArray(raw.targets) || raw.targets.length === 0) bad('targets must be a non-empty list');
  else {
    for (const t of raw.targets) {
      if (oneOf(IDS_TARGETS, t)) targets.add(t);
      else if (typeof t === 'string' && HEADER_TARGET.test(t)) headerNames.add(HEADER_TARGET.exec(t)![1]!);
      else bad(`unknown target ${JSON.stringify(t)}; one of ${IDS_TARGETS.join(', ')} or header:<lower-case name>`);
    }
  }
  const allHeaders = targets.has('headers');
  if (headerNames.size > 0) targets.add('headers');

  const hasPattern = raw.pattern !== undefined;
  const hasCheck = raw.check !== undefined;
  if (hasPattern === hasCheck) bad('needs exactly one of "pattern" and "check"');

  if (hasCheck) {
    if (!oneOf(IDS_CHECKS, raw.check)) {
      bad(`unknown check ${JSON.stringify(raw.check)}; one of ${IDS_CHECKS.join(', ')}`);
      return null;
    }
    const def = CHECKS[raw.check];
    for (const t of targets) if (!def.targets.includes(t)) bad(`check ${raw.check} cannot look at target "${t}" (it looks at ${def.targets.join(', ')})`);
    if (headerNames.size > 0 && !allHeaders) bad(`check ${raw.check} takes "headers", not single header:<name> targets`);
    const params: Record<string, number> = {};
    if (raw.params !== undefined && !isObject(raw.params)) bad('params must be an object of numbers');
    const given = isObject(raw.params) ? raw.params : {};
    for (const [k, v] of Object.entries(given)) {
      if (!def.params.includes(k)) bad(`check ${raw.check} has no parameter "${k}"`);
      else if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad(`parameter "${k}" must be a whole number ≥ 0`);
      else params[k] = v;
    }
    for (const k of def.params) if (given[k] === undefined) bad(`check ${raw.check} needs parameter "${k}"`);
    if (raw.triggers !== undefined || raw.view !== undefined) bad('"triggers" and "view" belong to pattern rules');
    if (problems.length > before) return null;
    return { kind: 'check', index, spec: raw as unknown as IdsRuleSpec, id: raw.id as string, class: raw.class as IdsClass, severity: raw.severity as IdsSeverity, check: raw.check, params, targets };
  }

  if (!hasPattern) return null;
  let regex: RegExp | null = null;
  if (!isObject(raw.pattern) || typeof raw.pattern.source !== 'string' || raw.pattern.source === '') {
    bad('pattern must be { "source": "<regular expression>", "flags": "…" }');
  } else {
    const flags = raw.pattern.flags ?? '';
    if (typeof flags !== 'string' || !ALLOWED_FLAGS.test(flags)) {
      bad(`pattern flags ${JSON.stringify(flags)} not allowed (only i, m, s, u; g and y would make matching stateful)`);
    } else {
      try {
        regex = new RegExp(raw.pattern.source, flags);
      } catch (e) {
        bad(`pattern does not compile: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (regex && regex.test('')) bad('pattern matches the empty string, so it would match every request');
    }
  }
  const triggers: string[] = [];
  if (raw.triggers !== undefined) {
    if (!Array.isArray(raw.triggers)) bad('triggers must be a list of strings');
    else {
      for (const t of raw.triggers) {
        if (typeof t !== 'string' || t === '') bad('every trigger must be a non-empty string');
        else if (t !== t.toLowerCase()) bad(`trigger ${JSON.stringify(t)} must be lower-case: text is lower-cased before matching`);
        else triggers.push(t);
      }
    }
  }
  let view: IdsView = 'plain';
  if (raw.view !== undefined) {
    if (!oneOf(IDS_VIEWS, raw.view)) bad(`unknown view ${JSON.stringify(raw.view)}; one of ${IDS_VIEWS.join(', ')}`);
    else view = raw.view;
  }
  if (raw.params !== undefined) bad('"params" belong to check rules');
  if (problems.length > before || regex === null) return null;
  return {
    kind: 'pattern',
    index,
    spec: raw as unknown as IdsRuleSpec,
    id: raw.id as string,
    class: raw.class as IdsClass,
    severity: raw.severity as IdsSeverity,
    view,
    regex,
    triggers,
    targets,
    allHeaders,
    headerNames,
  };
}

/** Validates a parsed rules file and compiles it; throws IdsRulesError listing every problem. */
export function compileRules(input: unknown, source?: string): CompiledRules {
  const problems: IdsRuleProblem[] = [];
  if (!isObject(input)) throw new IdsRulesError([{ ruleId: null, message: 'must be a JSON object { "version", "rules" }' }], source);
  if (typeof input.version !== 'string' || !VERSION.test(input.version)) problems.push({ ruleId: null, message: 'version must look like "2026.11.1"' });
  const opaqueBodies: Array<{ method: string; path: RegExp }> = [];
  if (input.opaqueBodies !== undefined) {
    if (!Array.isArray(input.opaqueBodies)) problems.push({ ruleId: null, message: 'opaqueBodies must be a list of { method, path }' });
    else {
      for (const o of input.opaqueBodies) {
        if (!isObject(o) || typeof o.method !== 'string' || typeof o.path !== 'string') {
          problems.push({ ruleId: null, message: 'opaqueBodies entries must be { "method": "POST", "path": "^/regex$" }' });
          continue;
        }
        try {
          opaqueBodies.push({ method: o.method.toUpperCase(), path: new RegExp(o.path) });
        } catch (e) {
          problems.push({ ruleId: null, message: `opaqueBodies path does not compile: ${e instanceof Error ? e.message : String(e)}` });
        }
      }
    }
  }
  const rules: CompiledRule[] = [];
  if (!Array.isArray(input.rules) || input.rules.length === 0) problems.push({ ruleId: null, message: 'rules must be a non-empty list' });
  else {
    const seen = new Set<string>();
    input.rules.forEach((r, i) => {
      const c = compileRule(r, i, seen, problems);
      if (c) rules.push(c);
    });
  }
  if (problems.length > 0) throw new IdsRulesError(problems, source);
  return { version: input.version as string, opaqueBodies, rules, specs: rules.map((r) => r.spec) };
}

export type { IdsRulesFile };
