import { errors } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { asciiDigits, articleTitle, parseJapaneseNumber, type TermsDocument } from './parser.js';

/**
 * What a notice (お知らせ) is about, and what "which text governs topic X" asks (R1.3): an article
 * (`article:7`), a paragraph (`article:7.2`), or one of the matters the terms leave to the
 * provider to set separately (弊社が別に定める …), which only notices fill.
 */
export const NAMED_TOPICS = {
  client_environment: bi('クライアント環境（第6条第1項「弊社が別に定める」）', 'client environment (Art. 6.1, "as the provider separately sets")'),
  planned_stop_schedule: bi('計画停止の予定（第7条第2項）', 'planned stop schedule (Art. 7.2)'),
  support_service: bi('サポートサービスの提供方法および提供時間（第9条第1項）', 'how and when support is given (Art. 9.1)'),
  offsite_cycle: bi('バックアップデータの遠隔地疎開の周期（第10条第1項）', 'the cycle of moving backups to the remote site (Art. 10.1)'),
  security_policies: bi('情報セキュリティ方針・個人情報保護方針・カスタマーハラスメントに対する行動指針（第15条第1項④）', 'information security, privacy and customer-harassment policies (Art. 15.1 ④)'),
  fees: bi('利用料金', 'fees'),
} as const satisfies Record<string, Bilingual>;
export type NamedTopic = keyof typeof NAMED_TOPICS;
export const NAMED_TOPIC_CODES = Object.keys(NAMED_TOPICS) as [NamedTopic, ...NamedTopic[]];

export type Topic =
  | { kind: 'article'; key: string; article: number; paragraph: number | null }
  | { kind: 'named'; key: NamedTopic };

const ARTICLE_KEY_RE = /^article:(\d{1,3})(?:\.(\d{1,3}))?$/;
const ARTICLE_JA_RE = /^第\s*([0-9０-９]+|[一二三四五六七八九十百]+)\s*条(?:\s*第\s*([0-9０-９]+|[一二三四五六七八九十]+)\s*項)?$/;

const unknownTopic = (raw: string, why: string, whyJa: string) =>
  errors.invalidField('topic', `「${raw}」は不明なトピックです。${whyJa}`, `unknown topic "${raw}": ${why}`);

/** Reads a topic key: article:7, article:7.2, 第7条, 第7条第2項, or a named topic. Format only. */
export function parseTopic(raw: string): Topic {
  const t = raw.trim();
  if ((NAMED_TOPIC_CODES as string[]).includes(t)) return { kind: 'named', key: t as NamedTopic };
  let article: number | null = null;
  let paragraph: number | null = null;
  const k = ARTICLE_KEY_RE.exec(t);
  if (k) {
    article = Number(k[1]);
    paragraph = k[2] ? Number(k[2]) : null;
  } else {
    const j = ARTICLE_JA_RE.exec(asciiDigits(t));
    if (j) {
      article = parseJapaneseNumber(j[1]!);
      paragraph = j[2] ? parseJapaneseNumber(j[2]) : null;
    }
  }
  if (article === null || article < 1 || (paragraph !== null && paragraph < 1)) {
    throw unknownTopic(t, `use article:N, article:N.P (or 第N条, 第N条第P項) or one of ${NAMED_TOPIC_CODES.join(', ')}`, `article:N、article:N.P（第N条、第N条第P項）または ${NAMED_TOPIC_CODES.join('、')} を指定してください。`);
  }
  return { kind: 'article', key: paragraph === null ? `article:${article}` : `article:${article}.${paragraph}`, article, paragraph };
}

/** The topic must name an article (and paragraph) of at least one terms version. */
export function assertTopicExists(topic: Topic, documents: readonly TermsDocument[]): void {
  if (topic.kind === 'named') return;
  const found = documents.some((d) => {
    const a = d.articles.find((x) => x.number === topic.article);
    return a !== undefined && (topic.paragraph === null || a.paragraphs.some((p) => p.number === topic.paragraph));
  });
  if (!found) {
    const what = topic.paragraph === null ? `第${topic.article}条` : `第${topic.article}条第${topic.paragraph}項`;
    throw unknownTopic(topic.key, `no terms version has ${topic.key}`, `${what}はどの版の利用規約にもありません。`);
  }
}

/** A readable label for a topic, from a document when it has the article. */
export function topicLabel(topic: Topic, doc?: TermsDocument | null): Bilingual {
  if (topic.kind === 'named') return NAMED_TOPICS[topic.key];
  const a = doc?.articles.find((x) => x.number === topic.article);
  const title = a ? articleTitle(a) : `第${topic.article}条`;
  return topic.paragraph === null ? bi(title, `Art. ${topic.article}${a ? ` (${a.heading})` : ''}`) : bi(`${title}第${topic.paragraph}項`, `Art. ${topic.article}.${topic.paragraph}${a ? ` (${a.heading})` : ''}`);
}

/** The notice topics that speak to a query topic: a paragraph is also governed by notices on its whole article. */
export function topicsGoverning(topic: Topic): string[] {
  if (topic.kind === 'article' && topic.paragraph !== null) return [topic.key, `article:${topic.article}`];
  return [topic.key];
}
