import { HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { isValidDate } from '../core/japan-time.js';

/**
 * R1.1: the parser for Japanese terms documents (利用規約) as the provider writes them, e.g.
 * `../shared/spec/terms-of-use.ja.txt`: an optional 【title】, optional chapters (第N章), articles
 * 第N条（見出し）, numbered paragraphs (1. / ２　/ a first unnumbered paragraph), items (① / （１） /
 * 一), the closing 以上, and the supplementary provisions (附則) whose edition lines
 * (第一版 2018年6月 1日 … 第六、五版 2021年8月16日) become the edition history.
 *
 * The provider's file is Markdown-touched in places ("- ① …", "- ### 4. …", a paragraph continued
 * on an unnumbered line after a blank line); those forms are read as what they mean. Anything that
 * breaks the numbering or cannot belong anywhere is refused with its line number.
 */

export interface TermsItem {
  number: number;
  /** As written: ①, （１）, 一 … */
  marker: string;
  text: string;
  line: number;
}

export interface TermsParagraph {
  number: number;
  /** False for a first paragraph written without a number (common in Japanese terms). */
  numbered: boolean;
  /** The paragraph's text; an unnumbered line continuing it is a further line. */
  text: string;
  line: number;
  items: TermsItem[];
}

export interface TermsArticle {
  number: number;
  heading: string;
  chapter: number | null;
  line: number;
  paragraphs: TermsParagraph[];
}

export interface TermsChapter {
  number: number;
  title: string;
  line: number;
}

export type EditionKind = 'established' | 'revised' | 'enforced';

export interface EditionEntry {
  /** As written, e.g. 第六、五版. */
  ordinal: string;
  /** The edition as a label: "1", "6.5". */
  label: string;
  date: string;
  kind: EditionKind;
  line: number;
}

export interface TermsDocument {
  title: string | null;
  preamble: string[];
  chapters: TermsChapter[];
  articles: TermsArticle[];
  closing: string | null;
  /** R1.1: the edition history from the 附則, oldest first. */
  history: EditionEntry[];
  /** Lines of the 附則 that are not edition entries, kept verbatim. */
  supplementaryNotes: string[];
}

/** A document that cannot be read, with the line (1-based) where reading stopped. */
export class TermsParseError extends HokanError {
  readonly line: number;

  constructor(line: number, ja: string, en: string) {
    super('validation_failed', bi(`利用規約の${line}行目: ${ja}`, `terms document line ${line}: ${en}`), [{ path: 'text', message: `line ${line}: ${en}` }]);
    this.name = 'TermsParseError';
    this.line = line;
  }
}

const KANJI_DIGITS: Record<string, number> = { 〇: 0, 零: 0, 一: 1, 二: 2, 三: 3, 四: 4, 五: 5, 六: 6, 七: 7, 八: 8, 九: 9 };

/** Full-width digits to ASCII; nothing else changes (NFKC would also turn ① into 1). */
export function asciiDigits(s: string): string {
  return s.replace(/[０-９]/g, (d) => String(d.charCodeAt(0) - 0xff10));
}

/** 一 → 1, 十二 → 12, 二十四 → 24, 百 → 100; ASCII or full-width digits as they are. */
export function parseJapaneseNumber(s: string): number | null {
  const t = asciiDigits(s.trim());
  if (/^\d+$/.test(t)) return Number(t);
  if (!/^[〇零一二三四五六七八九十百]+$/.test(t)) return null;
  let total = 0;
  let current = 0;
  for (const ch of t) {
    if (ch === '百') {
      total += (current || 1) * 100;
      current = 0;
    } else if (ch === '十') {
      total += (current || 1) * 10;
      current = 0;
    } else {
      current = current * 10 + KANJI_DIGITS[ch]!;
    }
  }
  return total + current;
}

const NUM = '[0-9０-９]+|[〇一二三四五六七八九十百]+';
const CHAPTER_RE = new RegExp(`^第\\s*(${NUM})\\s*章(?:[\\s　]*[（(](.+)[)）]|[\\s　]+(.+))?$`);
const ARTICLE_RE = new RegExp(`^第\\s*(${NUM})\\s*条\\s*[（(](.+)[)）]$`);
const BARE_ARTICLE_RE = new RegExp(`^第\\s*(${NUM})\\s*条$`);
const PARAGRAPH_RE = /^([0-9０-９]{1,3})(?:[.．]\s*|[\s　]+)(\S.*)$/;
const CIRCLED_RE = /^([\u2460-\u2473])[\s　]*(.*)$/;
const PAREN_ITEM_RE = /^[（(]([0-9０-９]{1,3})[)）][\s　]*(.*)$/;
const KANJI_ITEM_RE = /^([一二三四五六七八九十]{1,3})[\s　、]+(\S.*)$/;
const CLOSING_RE = /^以\s*上$/;
const SUPPLEMENTARY_RE = /^附\s*則[\s　]*[：:]?[\s　]*(.*)$/;
const EDITION_RE = /^(第\s*([0-9〇一二三四五六七八九十百、．.]+)\s*版)[\s　]*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日[\s　]*(制定|改定|改訂|施行)?$/;
const DATED_RE = /^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日[\s　]*(制定|改定|改訂|施行)$/;
const TITLE_RE = /^【(.+)】$/;

const KIND_OF: Record<string, EditionKind> = { 制定: 'established', 改定: 'revised', 改訂: 'revised', 施行: 'enforced' };
export const EDITION_KIND_JA: Record<EditionKind, string> = { established: '制定', revised: '改定', enforced: '施行' };

/** 六、五 → "6.5"; 一 → "1"; 12 → "12". */
function editionLabel(ordinalDigits: string, line: number): string {
  const parts = asciiDigits(ordinalDigits).split(/[、．.]/);
  const nums = parts.map((p) => parseJapaneseNumber(p));
  if (nums.some((n) => n === null)) throw new TermsParseError(line, `版の番号「${ordinalDigits}」を読めません。`, `cannot read the edition number "${ordinalDigits}"`);
  return nums.join('.');
}

function circledNumber(ch: string): number {
  return ch.codePointAt(0)! - 0x2460 + 1;
}

type Section = 'preamble' | 'body' | 'closing' | 'supplementary';

interface ItemMatch {
  number: number;
  marker: string;
  style: 'circled' | 'paren' | 'kanji';
  text: string;
}

function matchItem(t: string): ItemMatch | null {
  let m = CIRCLED_RE.exec(t);
  if (m) return { number: circledNumber(m[1]!), marker: m[1]!, style: 'circled', text: m[2]!.trim() };
  m = PAREN_ITEM_RE.exec(t);
  if (m) return { number: Number(asciiDigits(m[1]!)), marker: m[0].slice(0, m[0].length - m[2]!.length).trim(), style: 'paren', text: m[2]!.trim() };
  m = KANJI_ITEM_RE.exec(t);
  if (m) return { number: parseJapaneseNumber(m[1]!)!, marker: m[1]!, style: 'kanji', text: m[2]!.trim() };
  return null;
}

function itemStyle(marker: string): ItemMatch['style'] {
  return CIRCLED_RE.test(marker) ? 'circled' : /^[（(]/.test(marker) ? 'paren' : 'kanji';
}

/** Parses a terms document; throws TermsParseError naming the line of the first problem. */
export function parseTermsDocument(source: string): TermsDocument {
  const text = source.replace(/^\uFEFF/, '');
  if (text.trim() === '') throw new TermsParseError(1, '本文が空です。', 'the document is empty');
  const lines = text.split(/\r\n|\r|\n/);
  const doc: TermsDocument = { title: null, preamble: [], chapters: [], articles: [], closing: null, history: [], supplementaryNotes: [] };
  let section: Section = 'preamble';
  let article: TermsArticle | null = null;
  let paragraph: TermsParagraph | null = null;
  let chapter: number | null = null;

  const nextParagraph = (lineNo: number, number: number, numbered: boolean, body: string): void => {
    if (!article) throw new TermsParseError(lineNo, '最初の条（第1条）より前に項があります。', 'a paragraph before the first article (第1条)');
    const expected = article.paragraphs.length + 1;
    if (number !== expected) {
      throw new TermsParseError(lineNo, `第${article.number}条の第${expected}項が来るはずのところに第${number}項があります。`, `article ${article.number}: expected paragraph ${expected}, found ${number}`);
    }
    paragraph = { number, numbered, text: body, line: lineNo, items: [] };
    article.paragraphs.push(paragraph);
  };

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const t = raw.trim();
    if (t === '') continue;
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(raw)) throw new TermsParseError(lineNo, '制御文字が含まれています。', 'the line contains control characters');

    const supp = SUPPLEMENTARY_RE.exec(t);
    if (supp && section !== 'supplementary') {
      if (doc.articles.length === 0) throw new TermsParseError(lineNo, '条より前に附則があります。', 'the 附則 comes before any article');
      section = 'supplementary';
      article = null;
      paragraph = null;
      if (supp[1]) readSupplementaryLine(doc, supp[1].trim(), lineNo);
      continue;
    }
    if (section === 'supplementary') {
      readSupplementaryLine(doc, t, lineNo);
      continue;
    }
    if (CLOSING_RE.test(t)) {
      if (doc.articles.length === 0) throw new TermsParseError(lineNo, '条より前に「以上」があります。', '"以上" comes before any article');
      if (section === 'closing') throw new TermsParseError(lineNo, '「以上」が二度あります。', '"以上" appears twice');
      section = 'closing';
      doc.closing = t;
      article = null;
      paragraph = null;
      continue;
    }
    if (section === 'closing') {
      throw new TermsParseError(lineNo, '「以上」の後、附則の外に本文があります。', 'text after "以上" outside the 附則');
    }

    const ch = CHAPTER_RE.exec(t);
    if (ch) {
      const number = parseJapaneseNumber(ch[1]!)!;
      const expected = doc.chapters.length + 1;
      if (number !== expected) throw new TermsParseError(lineNo, `第${expected}章が来るはずのところに第${number}章があります。`, `expected chapter ${expected}, found ${number}`);
      doc.chapters.push({ number, title: (ch[2] ?? ch[3] ?? '').trim(), line: lineNo });
      chapter = number;
      section = 'body';
      article = null;
      paragraph = null;
      continue;
    }

    const art = ARTICLE_RE.exec(t);
    if (art) {
      const number = parseJapaneseNumber(art[1]!)!;
      const expected = doc.articles.length + 1;
      if (number !== expected) throw new TermsParseError(lineNo, `第${expected}条が来るはずのところに第${number}条があります。`, `expected article ${expected}, found article ${number}`);
      const heading = art[2]!.trim();
      if (heading === '') throw new TermsParseError(lineNo, `第${number}条の見出しが空です。`, `article ${number} has an empty heading`);
      article = { number, heading, chapter, line: lineNo, paragraphs: [] };
      doc.articles.push(article);
      paragraph = null;
      section = 'body';
      continue;
    }
    const bare = BARE_ARTICLE_RE.exec(t);
    if (bare) throw new TermsParseError(lineNo, `${t} に見出し（括弧書き）がありません。`, `${t} has no heading in parentheses`);

    if (section === 'preamble') {
      const title = TITLE_RE.exec(t);
      if (title && doc.title === null && doc.preamble.length === 0) {
        doc.title = title[1]!.trim();
        continue;
      }
      // A numbered paragraph or an item cannot come before the first article.
      const stripped = stripMarkdown(t);
      if (PARAGRAPH_RE.test(stripped) || matchItem(stripped)) {
        throw new TermsParseError(lineNo, '最初の条（第1条）より前に項または号があります。', 'a paragraph or item before the first article (第1条)');
      }
      doc.preamble.push(t);
      continue;
    }

    // Inside an article (section 'body').
    if (!article) throw new TermsParseError(lineNo, '章の見出しの後、条の前に本文があります。', 'text after a chapter heading and before its first article');
    const s = stripMarkdown(t);
    const item = matchItem(s);
    if (item) {
      if (!paragraph) nextParagraph(lineNo, 1, false, '');
      const p = paragraph as unknown as TermsParagraph;
      const prev = p.items.at(-1);
      const expected = prev ? prev.number + 1 : 1;
      if (prev && itemStyle(prev.marker) !== item.style) {
        throw new TermsParseError(lineNo, `号の書式が途中で変わっています（${prev.marker} の後に ${item.marker}）。`, `item style changes within a paragraph (${prev.marker} then ${item.marker})`);
      }
      if (item.number !== expected) {
        throw new TermsParseError(lineNo, `第${article.number}条第${p.number}項の第${expected}号が来るはずのところに ${item.marker} があります。`, `article ${article.number} paragraph ${p.number}: expected item ${expected}, found ${item.marker}`);
      }
      if (item.text === '') throw new TermsParseError(lineNo, `${item.marker} の本文が空です。`, `item ${item.marker} has no text`);
      p.items.push({ number: item.number, marker: item.marker, text: item.text, line: lineNo });
      continue;
    }
    const para = PARAGRAPH_RE.exec(s);
    if (para) {
      nextParagraph(lineNo, Number(asciiDigits(para[1]!)), true, para[2]!.trim());
      continue;
    }
    // An unnumbered line: the article's first paragraph, or the current paragraph continued.
    if (!paragraph) nextParagraph(lineNo, 1, false, s);
    else {
      const p = paragraph as TermsParagraph;
      p.text = p.text === '' ? s : `${p.text}\n${s}`;
    }
  }

  if (doc.articles.length === 0) throw new TermsParseError(1, '条（第1条（見出し））が一つもありません。', 'no article (第1条（見出し）) found');
  for (const a of doc.articles) {
    if (a.paragraphs.length === 0) throw new TermsParseError(a.line, `第${a.number}条に本文がありません。`, `article ${a.number} has no text`);
  }
  return doc;
}

/** Markdown touches in the provider's file: a list dash and heading hashes before a paragraph or item. */
function stripMarkdown(t: string): string {
  return t.replace(/^[-*・][\s　]+/, '').replace(/^#{1,6}[\s　]+/, '');
}

function readSupplementaryLine(doc: TermsDocument, t: string, lineNo: number): void {
  const norm = asciiDigits(t);
  let entry: EditionEntry | null = null;
  const e = EDITION_RE.exec(norm);
  if (e) {
    const date = isoDate(e[3]!, e[4]!, e[5]!, lineNo);
    const kind = e[6] ? KIND_OF[e[6]]! : doc.history.length === 0 ? 'established' : 'revised';
    entry = { ordinal: e[1]!.replace(/\s+/g, ''), label: editionLabel(e[2]!, lineNo), date, kind, line: lineNo };
  } else {
    const d = DATED_RE.exec(norm);
    if (d) {
      const date = isoDate(d[1]!, d[2]!, d[3]!, lineNo);
      entry = { ordinal: d[4]!, label: date, date, kind: KIND_OF[d[4]!]!, line: lineNo };
    }
  }
  if (!entry) {
    // A line that opens like an edition entry but does not read as one is a mistake, not a note.
    if (/^第\s*\S{1,8}?\s*版/.test(norm) || /^\d{4}\s*年/.test(norm)) {
      throw new TermsParseError(lineNo, `附則の版の行「${t}」を読めません（例: 第二版 2018年7月10日）。`, `cannot read the 附則 edition line "${t}" (e.g. 第二版 2018年7月10日)`);
    }
    doc.supplementaryNotes.push(t);
    return;
  }
  const prev = doc.history.at(-1);
  if (prev && entry.date < prev.date) {
    throw new TermsParseError(lineNo, `${entry.ordinal}（${entry.date}）が前の${prev.ordinal}（${prev.date}）より前の日付です。`, `${entry.ordinal} (${entry.date}) is dated before the previous ${prev.ordinal} (${prev.date})`);
  }
  if (doc.history.some((h) => h.label === entry.label)) throw new TermsParseError(lineNo, `${entry.ordinal} が二度あります。`, `${entry.ordinal} appears twice`);
  doc.history.push(entry);
}

function isoDate(y: string, m: string, d: string, lineNo: number): string {
  const date = `${y}-${m.padStart(2, '0')}-${d.padStart(2, '0')}`;
  if (!isValidDate(date)) throw new TermsParseError(lineNo, `${y}年${m}月${d}日は存在しない日付です。`, `${y}-${m}-${d} is not a calendar date`);
  return date;
}

/** 第7条（サービス提供時間帯） */
export function articleTitle(a: Pick<TermsArticle, 'number' | 'heading'>): string {
  return `第${a.number}条（${a.heading}）`;
}

function paragraphLines(p: TermsParagraph): string[] {
  const [first = '', ...rest] = p.text.split('\n');
  const head = p.numbered ? `${p.number}. ${first}` : first;
  return [head, ...rest, ...p.items.map((it) => `  ${it.marker} ${it.text}`)].filter((l, i) => i > 0 || l !== '');
}

/** One paragraph as text lines (its items indented). */
export function renderParagraph(p: TermsParagraph): string {
  return paragraphLines(p).join('\n');
}

/** One article as text: its title line, then each paragraph and item on its own line. */
export function renderArticle(a: TermsArticle): string {
  return [articleTitle(a), ...a.paragraphs.flatMap(paragraphLines)].join('\n');
}

function japaneseDate(iso: string): string {
  const [y, m, d] = iso.split('-').map(Number);
  return `${y}年${m}月${d}日`;
}

/** The whole document in canonical form; parsing it again gives the same structure. */
export function renderTermsDocument(doc: TermsDocument): string {
  const out: string[] = [];
  if (doc.title) out.push(`【${doc.title}】`, '');
  if (doc.preamble.length) out.push(...doc.preamble, '');
  let chapter: number | null = null;
  for (const a of doc.articles) {
    if (a.chapter !== null && a.chapter !== chapter) {
      const c = doc.chapters.find((x) => x.number === a.chapter)!;
      out.push(`第${c.number}章${c.title ? ` ${c.title}` : ''}`, '');
      chapter = a.chapter;
    }
    // A blank line between paragraphs: an unnumbered continuation line must not be read as the next paragraph.
    out.push(articleTitle(a), '', ...a.paragraphs.flatMap((p) => [...paragraphLines(p), '']));
  }
  if (doc.closing) out.push(doc.closing, '');
  if (doc.history.length || doc.supplementaryNotes.length) {
    out.push('附則');
    for (const h of doc.history) out.push(h.ordinal.startsWith('第') ? `${h.ordinal} ${japaneseDate(h.date)} ${EDITION_KIND_JA[h.kind]}` : `${japaneseDate(h.date)} ${h.ordinal}`);
    out.push(...doc.supplementaryNotes);
  }
  return `${out.join('\n')}\n`;
}
