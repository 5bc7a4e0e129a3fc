/** The IDS (R12.2): rules as data, the engine, its corpus evaluation and statistics helpers. */
export { IdsEngine, DEFAULT_RULES_PATH, literalTrie, type IdsEngineOptions } from './engine.js';
export { IdsRulesError, compileRules, type IdsRuleProblem, type CompiledRules } from './rules.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  boundBody,
  decodeHtmlEntities,
  foldText,
  normalizeValue,
  percentDecode,
  shellView,
  sqlView,
  type BoundedBody,
  type Normalized,
  type NormalizeOptions,
  type PercentDecoded,
} from './normalize.js';
export { isSensitiveHeader, isSensitiveKey, sampleAround, REDACTED, SAMPLE_MAX } from './redact.js';
export { jsonNestingExceeds, scanJson, type JsonScan, type JsonSegment } from './json-scan.js';
export { CORPUS_FILES, DEFAULT_CORPUS_DIR, evaluateCorpus, formatCorpusReport, loadCorpus, toIdsRequest, type ClassResult, type CorpusEntry, type CorpusReport, type CorpusRequest } from './corpus.js';
export { aggregate, type IdsAggregate, type IdsAggregateOptions, type IdsEvent } from './stats.js';
export {
  DEFAULT_MODES,
  IDS_CHECKS,
  IDS_CLASSES,
  IDS_SEVERITIES,
  IDS_TARGETS,
  IDS_VIEWS,
  type IdsAction,
  type IdsCheckName,
  type IdsClass,
  type IdsDecision,
  type IdsFinding,
  type IdsHeaders,
  type IdsInspection,
  type IdsMode,
  type IdsRequest,
  type IdsRuleSpec,
  type IdsRulesFile,
  type IdsSeverity,
  type IdsTarget,
  type IdsView,
} from './types.js';
