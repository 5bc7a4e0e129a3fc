import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffChars, diffLines } from '../../src/terms/diff.js';
import { parseTermsDocument, renderArticle, renderTermsDocument, TermsParseError, type TermsDocument } from '../../src/terms/parser.js';
import { parseTopic } from '../../src/terms/topics.js';
import { diffDocuments } from '../../src/terms/versions.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
// The fixture is a copy of ../shared/spec/terms-of-use.ja.txt, so the tests do not depend on the sibling folder.
const FIXTURE = path.join(repoRoot, 'test/fixtures/terms-of-use.ja.txt');
const SHARED = path.resolve(repoRoot, '../shared/spec/terms-of-use.ja.txt');
const source = fs.readFileSync(FIXTURE, 'utf8');

/** Counted by hand in the file, article by article: paragraphs, and items per paragraph. */
const BY_HAND: Array<[number, number[]]> = [
  [1, [0, 0, 0]], [2, [0, 0, 0]], [3, [0]], [4, [0]], [5, [0]], [6, [0, 0]], [7, [0, 4, 6]], [8, [0, 3, 2, 1, 1]],
  [9, [0, 0]], [10, [0, 0, 0, 0, 0]], [11, [4]], [12, [0, 0, 3, 0]], [13, [0]], [14, [0, 0, 0, 0, 4]], [15, [4]], [16, [2, 0]],
  [17, [0, 0]], [18, [0, 0, 0]], [19, [0, 0]], [20, [0, 7, 0, 0]], [21, [0]], [22, [0, 0, 0, 0, 0]], [23, [0]], [24, [0]],
];

function parseError(text: string): TermsParseError {
  try {
    parseTermsDocument(text);
  } catch (e) {
    if (e instanceof TermsParseError) return e;
    throw e;
  }
  throw new Error('parsed without error');
}

const withoutLines = (d: TermsDocument) => JSON.parse(JSON.stringify(d, (k, v) => (k === 'line' ? undefined : v))) as unknown;

describe('R1.1 parsing the real terms of use (terms-of-use.ja.txt)', () => {
  const doc = parseTermsDocument(source);

  it.skipIf(!fs.existsSync(SHARED))('R1.1 the fixture is the same text as ../shared/spec/terms-of-use.ja.txt', () => {
    expect(source).toBe(fs.readFileSync(SHARED, 'utf8'));
  });

  it('R1.1 finds every article, paragraph and item, as counted by hand', () => {
    expect(doc.title).toBe('データセンターサービス利用規約');
    expect(doc.chapters).toEqual([]);
    // Every line of the file that opens an article is one article, in order.
    const opening = source.split('\n').filter((l) => /^第\d+条/.test(l)).length;
    expect(opening).toBe(24);
    expect(doc.articles.map((a) => a.number)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(doc.articles.map((a) => [a.number, a.paragraphs.map((p) => p.items.length)])).toEqual(BY_HAND);
    expect(doc.articles.reduce((n, a) => n + a.paragraphs.length, 0)).toBe(59);
    expect(doc.articles.reduce((n, a) => n + a.paragraphs.reduce((m, p) => m + p.items.length, 0), 0)).toBe(41);
    expect(doc.closing).toBe('以上');
    expect(doc.preamble).toEqual([]);
  });

  it('R1.1 reads the article headings exactly, in both paren styles', () => {
    expect(doc.articles.map((a) => a.heading)).toEqual([
      '規約の適用', '規約の変更', '内容', '提供区域', 'データセンターサービスの提供', 'データセンターサービスの利用', 'サービス提供時間帯',
      'データセンターサービス用設備の障害', 'データセンターサービスに関するサポート', 'データの取扱', 'データセンターサービスの停止',
      'セキュリティの確保と運用監視', '通信利用の制限', '秘密保持', '禁止事項', '反社会的勢力に関する表明保証', '当事者間解決の原則',
      '自己責任の原則', '保証および免責', '弊社の責任', '契約有効期間', '契約の解約', '協議', '合意管轄',
    ]);
    expect(doc.articles[0]!.line).toBe(5);
    expect(doc.articles[12]!.line).toBe(102);
  });

  it('R1.1 keeps paragraph and item texts exactly, including the Markdown-touched forms of Art. 8 and the continued paragraph of Art. 12', () => {
    const art = (n: number) => doc.articles[n - 1]!;
    expect(art(1).paragraphs[2]!.text).toBe('本規約の規定と前項の通知の内容が異なる場合には、当該通知、本規約の順で優先して適用されるものとします。なお弊社サポートサイト上での掲示による通知とサポートガイドへの掲載による通知その他の方法による通知の内容が異なる場合には、後に通知されたものが優先して適用されるものとします。');
    expect(art(2).paragraphs[2]!.text).toBe('お客様が、変更後の本規約、その他弊社が定める規約等に同意できない場合には、お客様と弊社は誠意をもって協議するものとします。');
    expect(art(7).paragraphs[1]!.items.map((i) => i.marker)).toEqual(['①', '②', '③', '④']);
    expect(art(7).paragraphs[1]!.items[3]!.text).toBe('その他合理的な理由により弊社が必要と認めた場合');
    expect(art(8).paragraphs[2]).toMatchObject({
      number: 3,
      numbered: true,
      line: 58,
      text: '障害通知方法\n弊社が障害を確認した場合、以下の手段のうち、弊社が適切かつ合理的と判断する方法で通知します。',
      items: [
        { number: 1, marker: '①', text: '本サービスまたは弊社ウェブサイト内の適宜の場所への掲示' },
        { number: 2, marker: '②', text: 'お客様から受領したメール等連絡先への通知' },
      ],
    });
    expect(art(8).paragraphs[3]).toMatchObject({ number: 4, text: '障害発生より、障害検知までの目標時間', items: [{ marker: '①', text: '1時間とします。' }] });
    expect(art(8).paragraphs[4]).toMatchObject({ number: 5, text: '障害発生後本件サービス等再開までの目標時間', items: [{ marker: '①', text: '24時間とします。' }] });
    expect(art(12).paragraphs[1]!.text.split('\n')).toHaveLength(2);
    expect(art(12).paragraphs[1]!.text.split('\n')[1]!.startsWith('弊社は、IDSにより、弊社データセンター環境に対する通信が')).toBe(true);
    expect(art(20).paragraphs[1]!.items[6]).toMatchObject({ number: 7, marker: '⑦', text: '第三者からの攻撃および不正行為' });
    expect(art(10).paragraphs[0]!.text).toBe('弊社は、弊社データセンター環境に保存されたデータのバックアップ作業を日次で実施するものとします。弊社は、取得したバックアップデータを運用中のサーバーとは別の媒体に保管します。また、弊社が定める一定の周期で遠隔地にバックアップデータを疎開するものとします。');
  });

  it('R1.1 reads the edition history of the 附則 as data (第一版 2018-06-01 … 第六、五版 2021-08-16)', () => {
    expect(doc.history.map(({ ordinal, label, date, kind }) => ({ ordinal, label, date, kind }))).toEqual([
      { ordinal: '第一版', label: '1', date: '2018-06-01', kind: 'established' },
      { ordinal: '第二版', label: '2', date: '2018-07-10', kind: 'revised' },
      { ordinal: '第三版', label: '3', date: '2018-09-18', kind: 'revised' },
      { ordinal: '第四版', label: '4', date: '2019-01-17', kind: 'revised' },
      { ordinal: '第五版', label: '5', date: '2020-07-01', kind: 'revised' },
      { ordinal: '第六版', label: '6', date: '2021-01-01', kind: 'revised' },
      { ordinal: '第六、五版', label: '6.5', date: '2021-08-16', kind: 'revised' },
    ]);
    expect(doc.history[0]!.line).toBe(185);
    expect(doc.supplementaryNotes).toEqual([]);
  });

  it('R1.1 round trip: the canonical rendering parses back to the same structure', () => {
    const rendered = renderTermsDocument(doc);
    expect(withoutLines(parseTermsDocument(rendered))).toEqual(withoutLines(doc));
    expect(renderArticle(doc.articles[3]!)).toBe('第4条（提供区域）\n1. 本件サービス等の提供区域は、特に定める場合を除き、日本国内に限るものとします。');
  });
});

describe('R1.1 other forms Japanese terms use', () => {
  it('chapters, an unnumbered first paragraph, full-width paragraph numbers, （１） and 一 items, 制定/改定 lines', () => {
    const doc = parseTermsDocument([
      '第１章　総則',
      '第一条（目的）',
      '本規約は、本件サービスの利用条件を定めます。',
      '２　弊社は次の事項を定めます。',
      '（１）料金',
      '（２）支払方法',
      '第２条（定義）',
      '本規約で用いる用語は次のとおりです。',
      '一　お客様　本件サービスの契約者',
      '二　弊社　本件サービスの提供者',
      '第2章 利用',
      '第3条（利用）',
      '1. お客様は本件サービスを利用できます。',
      '附則',
      '2020年4月1日 制定',
      '2021年10月1日 改定',
      'この規約は2021年10月1日から施行します。',
    ].join('\n'));
    expect(doc.chapters.map((c) => [c.number, c.title])).toEqual([[1, '総則'], [2, '利用']]);
    expect(doc.articles.map((a) => [a.number, a.chapter, a.heading])).toEqual([[1, 1, '目的'], [2, 1, '定義'], [3, 2, '利用']]);
    expect(doc.articles[0]!.paragraphs.map((p) => [p.number, p.numbered])).toEqual([[1, false], [2, true]]);
    expect(doc.articles[0]!.paragraphs[1]!.items.map((i) => [i.marker, i.text])).toEqual([['（１）', '料金'], ['（２）', '支払方法']]);
    expect(doc.articles[1]!.paragraphs[0]!.items.map((i) => [i.number, i.marker, i.text])).toEqual([[1, '一', 'お客様　本件サービスの契約者'], [2, '二', '弊社　本件サービスの提供者']]);
    expect(doc.history.map((h) => [h.date, h.kind])).toEqual([['2020-04-01', 'established'], ['2021-10-01', 'revised']]);
    expect(doc.supplementaryNotes).toEqual(['この規約は2021年10月1日から施行します。']);
    expect(withoutLines(parseTermsDocument(renderTermsDocument(doc)))).toEqual(withoutLines(doc));
  });
});

describe('R1.1 a malformed document is refused with the line number', () => {
  const lines = source.split('\n');
  const edit = (lineNo: number, text: string) => lines.map((l, i) => (i === lineNo - 1 ? text : l)).join('\n');

  it.each([
    ['empty', '  \n\n', 1, 'empty'],
    ['no article', '【規約】\nこれは前文です。', 1, 'no article'],
    ['an article skipped', '第1条（a）\n1. x\n\n第3条（b）\n1. y', 4, 'expected article 2, found article 3'],
    ['a paragraph skipped', '第1条（a）\n1. x\n3. y', 3, 'expected paragraph 2, found 3'],
    ['an item skipped', '第1条（a）\n1. x\n - ① a\n - ③ b', 4, 'expected item 2, found ③'],
    ['item styles mixed', '第1条（a）\n1. x\n ① a\n （２） b', 4, 'item style changes'],
    ['a paragraph before the first article', '【規約】\n1. x\n第1条（a）\n1. y', 2, 'before the first article'],
    ['an article without heading', '第1条（a）\n1. x\n第2条\n1. y', 3, 'no heading'],
    ['an article without text', '第1条（a）\n第2条（b）\n1. y', 1, 'article 1 has no text'],
  ])('%s', (_name, text, line, message) => {
    const e = parseError(text);
    expect(e.line).toBe(line);
    expect(e.code).toBe('validation_failed');
    expect(e.details[0]!.message).toContain(`line ${line}: `);
    expect(e.messages.en).toContain(message);
    expect(e.messages.ja).toContain(`${line}行目`);
  });

  it('in the real file: an article out of order, an impossible date, history out of order, text after 以上', () => {
    expect(parseError(edit(34, '第8条 (サービス提供時間帯)')).line).toBe(34);
    const badDate = parseError(edit(186, '第二版 2018年2月30日'));
    expect([badDate.line, badDate.messages.en]).toEqual([186, 'terms document line 186: 2018-2-30 is not a calendar date']);
    expect(parseError(edit(187, '第三版 2017年9月18日')).messages.en).toContain('line 187: 第三版 (2017-09-18) is dated before the previous 第二版 (2018-07-10)');
    expect(parseError(edit(184, 'おまけの一文')).line).toBe(184);
    expect(parseError(edit(186, '第二版 2018年7月10日頃')).line).toBe(186);
    expect(parseError(edit(102, '第13条（通信利用の制限）\u0007')).line).toBe(102);
  });
});

describe('R1.1 differences between versions', () => {
  const from = parseTermsDocument(source);
  const changed = source
    .replace('データのバックアップ作業を日次で実施する', 'データのバックアップ作業を毎日実施する')
    .replace('第13条（通信利用の制限）', '第13条（通信の制限）')
    .replace(/第24条[\s\S]*?以上/, '第24条 (合意管轄)\n\n1. お客様および弊社は、本規約に関して生じた紛争については、東京地方裁判所を第一審の専属的合意管轄裁判所とします。\n\n第25条 (準拠法)\n\n1. 本規約は日本法に準拠します。\n\n以上');
  const to = parseTermsDocument(changed);

  it('R1.1 per article: changed, added, unchanged, with line and character diffs', () => {
    const d = diffDocuments(from, to);
    const by = (n: number) => d.find((a) => a.number === n)!;
    expect(d.filter((a) => a.status !== 'unchanged').map((a) => [a.number, a.status])).toEqual([[10, 'changed'], [13, 'changed'], [24, 'changed'], [25, 'added']]);
    expect(d.filter((a) => a.status === 'unchanged')).toHaveLength(21);
    const line = by(10).lines.find((l) => l.op === 'change');
    if (!line || line.op !== 'change') throw new Error('no changed line in article 10');
    expect(line.chars.filter((c) => c.op !== 'equal')).toEqual([{ op: 'insert', text: '毎' }, { op: 'delete', text: '次で' }]);
    // Both sides are rebuilt exactly from the spans.
    expect(line.chars.filter((c) => c.op !== 'insert').map((c) => c.text).join('')).toBe(line.from);
    expect(line.chars.filter((c) => c.op !== 'delete').map((c) => c.text).join('')).toBe(line.to);
    expect(line.from).toContain('日次で実施');
    expect(by(13)).toMatchObject({ fromTitle: '第13条（通信利用の制限）', toTitle: '第13条（通信の制限）' });
    expect(by(25).lines).toEqual([{ op: 'insert', text: '第25条（準拠法）' }, { op: 'insert', text: '1. 本規約は日本法に準拠します。' }]);
    const back = diffDocuments(to, from);
    expect(back.find((a) => a.number === 25)).toMatchObject({ status: 'removed', lines: [{ op: 'delete', text: '第25条（準拠法）' }, { op: 'delete', text: '1. 本規約は日本法に準拠します。' }] });
  });

  it('line diff keeps equal lines and pairs replaced ones', () => {
    expect(diffLines('a\nb\nc', 'a\nB\nc\nd')).toEqual([
      { op: 'equal', text: 'a' },
      { op: 'change', from: 'b', to: 'B', chars: [{ op: 'delete', text: 'b' }, { op: 'insert', text: 'B' }] },
      { op: 'equal', text: 'c' },
      { op: 'insert', text: 'd' },
    ]);
    expect(diffChars('弊社は通知します', '弊社は速やかに通知します')).toEqual([{ op: 'equal', text: '弊社は' }, { op: 'insert', text: '速やかに' }, { op: 'equal', text: '通知します' }]);
  });

  it('an article of 60,000 lines: one changed line is found by its shared head and tail, and a rewrite of it all is shown as replaced (bounded work, not a quadratic table)', () => {
    const lines = Array.from({ length: 60_000 }, (_, i) => `${i + 1}. 第${i}項の定め`);
    const edited = [...lines];
    edited[30_000] = '30001. 第30000項の新しい定め';
    const one = diffLines(lines.join('\n'), edited.join('\n'));
    expect(one).toHaveLength(60_000);
    expect(one.filter((l) => l.op !== 'equal')).toEqual([
      { op: 'change', from: lines[30_000], to: edited[30_000], chars: [{ op: 'equal', text: '30001. 第30000項の' }, { op: 'insert', text: '新しい' }, { op: 'equal', text: '定め' }] },
    ]);
    const rewritten = lines.map((l) => `${l}（改）`);
    const all = diffLines(lines.join('\n'), rewritten.join('\n'));
    expect(all).toHaveLength(60_000);
    expect(all.every((l) => l.op === 'change')).toBe(true);
    expect(all.filter((l) => l.op === 'change').map((l) => (l as { to: string }).to)).toEqual(rewritten);
  });
});

describe('R1.3 topics', () => {
  it('reads article, paragraph and named topics, and refuses others naming the field', () => {
    expect(parseTopic('article:7')).toEqual({ kind: 'article', key: 'article:7', article: 7, paragraph: null });
    expect(parseTopic('第７条第２項')).toMatchObject({ key: 'article:7.2' });
    expect(parseTopic('第十条')).toMatchObject({ key: 'article:10' });
    expect(parseTopic('offsite_cycle')).toEqual({ kind: 'named', key: 'offsite_cycle' });
    for (const bad of ['weather', 'article:0', 'article:x', '']) {
      expect(() => parseTopic(bad)).toThrow(/topic/);
    }
  });
});
