import { describe, expect, it } from 'vitest';
import { evaluateCorpus, formatCorpusReport, IDS_CLASSES, IdsEngine, loadCorpus, toIdsRequest, type CorpusReport } from '../../src/gateway/ids/index.js';

/**
 * The labelled corpus (test/fixtures/ids-corpus, built by build-corpus.mjs): what the shipped
 * rules catch per class, what they wrongly flag, and how fast. The thresholds are the ones the
 * rules were accepted with (docs/decisions/0013-ids.md); throughput is printed, not asserted.
 */
describe('IDS corpus (R12.2)', () => {
  const entries = loadCorpus();
  const engine = IdsEngine.fromFile();
  let report: CorpusReport;

  it('is big enough and covers every class', () => {
    const attacks = entries.filter((e) => e.label === 'attack');
    const benign = entries.filter((e) => e.label === 'benign');
    expect(attacks.length).toBeGreaterThanOrEqual(150);
    expect(benign.length).toBeGreaterThanOrEqual(300);
    for (const c of IDS_CLASSES) expect(attacks.filter((a) => a.class === c).length, c).toBeGreaterThanOrEqual(10);
  });

  it('detects ≥ 95 % of the attacks of every class with ≤ 1 % false positives', () => {
    report = evaluateCorpus(engine, entries, { rounds: 5 });
    console.log(`\n${formatCorpusReport(report)}\n`);
    for (const c of IDS_CLASSES) expect(report.classes[c].detection_rate, `${c} missed ${report.classes[c].missed.join(', ')}`).toBeGreaterThanOrEqual(0.95);
    expect(report.false_positive_rate, JSON.stringify(report.false_positive_ids)).toBeLessThanOrEqual(0.01);
    expect(report.bytes_inspected).toBeGreaterThan(0);
    expect(report.mb_per_s).toBeGreaterThan(0);
  });

  it('most benign requests are decided by the prefilter alone', () => {
    expect(report.benign_decided_by_prefilter).toBeGreaterThan(0.5);
  });

  it('the prefilter never changes a verdict: the same findings as running every rule on every field', () => {
    const exhaustive = IdsEngine.fromFile(undefined, { prefilter: false });
    const differ: string[] = [];
    for (const e of entries) {
      const req = toIdsRequest(e);
      const a = engine.inspect(req).map((f) => `${f.ruleId}@${f.target}`).sort().join(' ');
      const b = exhaustive.inspect(req).map((f) => `${f.ruleId}@${f.target}`).sort().join(' ');
      if (a !== b) differ.push(`${e.id}: ${a} | ${b}`);
    }
    expect(differ).toEqual([]);
  });
});
