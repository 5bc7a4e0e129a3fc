/**
 * Shared vocabulary of the IDS (R12.2): what a rule is, what it looks at, what it reports.
 * Kept free of logic so rules, engine, corpus and statistics agree on one set of names.
 */

export const IDS_CLASSES = [
  'sql_injection',
  'xss',
  'command_injection',
  'path_traversal',
  'protocol_violation',
  'scanner',
  'environment_damage',
  'dos',
] as const;
export type IdsClass = (typeof IDS_CLASSES)[number];

export const IDS_SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type IdsSeverity = (typeof IDS_SEVERITIES)[number];

/** The parts of a request a rule can look at. `header:<name>` in a rules file narrows `headers`. */
export const IDS_TARGETS = ['method', 'path', 'query', 'headers', 'body'] as const;
export type IdsTarget = (typeof IDS_TARGETS)[number];

/**
 * The text a pattern is matched against. `plain`: decoded, NFKC, lower-cased. `sql`: plain with
 * SQL comments replaced by a space. `shell`: plain with shell quoting/escaping tricks undone.
 */
export const IDS_VIEWS = ['plain', 'sql', 'shell'] as const;
export type IdsView = (typeof IDS_VIEWS)[number];

export const IDS_CHECKS = [
  'json_depth',
  'json_array_length',
  'json_key_count',
  'body_size',
  'header_count',
  'overlong_header',
  'invalid_utf8',
  'null_byte',
  'invalid_percent',
  'query_param_count',
  'url_length',
  'content_length_conflict',
  'unknown_method',
] as const;
export type IdsCheckName = (typeof IDS_CHECKS)[number];

export type IdsMode = 'detect' | 'block';

/** Default modes: everything blocks except scanner fingerprints, which are only recorded. */
export const DEFAULT_MODES: Readonly<Record<IdsClass, IdsMode>> = {
  sql_injection: 'block',
  xss: 'block',
  command_injection: 'block',
  path_traversal: 'block',
  protocol_violation: 'block',
  scanner: 'detect',
  environment_damage: 'block',
  dos: 'block',
};

/** One rule as written in rules.json. */
export interface IdsRuleSpec {
  id: string;
  class: IdsClass;
  severity: IdsSeverity;
  description: string;
  /** `method`, `path`, `query`, `headers` (every header), `header:<lower-case name>`, `body`. */
  targets: string[];
  pattern?: { source: string; flags?: string };
  /**
   * Lower-case literals of which at least one must occur in the (viewed) text for the pattern to
   * be able to match. A literal that begins with a letter or digit counts only at the start of a
   * word (after a non-word character or the start of the field), as rule keywords are written
   * with `\b`. They feed the prefilter; a rule without triggers runs on every field it targets.
   */
  triggers?: string[];
  view?: IdsView;
  check?: IdsCheckName;
  /** Limits of a check, e.g. `{ "max": 32 }`. */
  params?: Record<string, number>;
}

export interface IdsRulesFile {
  version: string;
  /** Request bodies that are stored data, not instructions (file uploads): not pattern-matched. */
  opaqueBodies?: Array<{ method: string; path: string }>;
  rules: IdsRuleSpec[];
}

export type IdsHeaders = Record<string, string | string[] | undefined>;

export interface IdsRequest {
  method: string;
  /** The path as received (percent-encoded), without the query. */
  path: string;
  /** The raw query string, without the leading `?`. */
  query: string;
  headers: IdsHeaders;
  body?: Buffer | string;
  contentType?: string;
}

export interface IdsFinding {
  ruleId: string;
  class: IdsClass;
  severity: IdsSeverity;
  target: IdsTarget;
  /** Which header, parameter or JSON field (e.g. `data.note`, `where.kind`, `user-agent`). */
  field?: string;
  /** At most 200 characters of the normalised text around the match; secrets are `***`. */
  sample: string;
}

export type IdsAction = 'allow' | 'log' | 'block';

export interface IdsDecision {
  action: IdsAction;
  findings: IdsFinding[];
}

export interface IdsInspection {
  findings: IdsFinding[];
  /** Bytes of method, path, query, headers and body actually examined. */
  bytesInspected: number;
  /** The body was longer than maxBodyBytes and only its beginning was examined. */
  truncated: boolean;
  /** Every target was cleared by the prefilter: no regular expression of a rule ran. */
  prefilterOnly: boolean;
}
