import type { DbOrTx } from '../core/db/database.js';
import { getCustomer } from '../contracts/customers.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { formatJapanDate, formatJapanDateTime, startOfJapanDay } from '../core/japan-time.js';
import { CHANNEL_LABELS, noticeRowsFor, type NoticeChannel, type NoticeRow } from './notices.js';
import { notifiedAt } from './notifications.js';
import { articleTitle, renderArticle, renderParagraph, type TermsDocument } from './parser.js';
import { assertTopicExists, parseTopic, topicLabel, topicsGoverning, type Topic } from './topics.js';
import { documentOf, publishedVersionRows } from './versions.js';

/**
 * R1.3: "which text governs topic X for customer C at time T".
 *
 * 1. The terms version in force for C at T: among published versions, the one with the latest
 *    effective date whose effective date has begun (00:00 JST) and which had reached C by T — a
 *    change takes effect for a customer when notified to it (Art. 2.2, R2.1).
 * 2. Notices on X (a paragraph topic also hears notices on its whole article) addressed to all
 *    customers or to C, published and effective at or before T. A notice prevails over the terms;
 *    among notices the later notified prevails whatever the channel — support site or Support
 *    Guide (Art. 1.3). Ties fall to the later effective time, then the id, so the answer is stable.
 *
 * The answer is the governing text and the chain of sources, each with the reason it governs, is
 * overridden, or is not in force yet. Nothing addressed only to other customers appears in it.
 */

export type SourceStatus = 'governs' | 'overridden' | 'pending';

export interface GoverningSource {
  kind: 'terms' | 'notice';
  id: string;
  label: Bilingual;
  channel: NoticeChannel | null;
  topic: string;
  /** Terms: 00:00 JST of the effective date; notice: its effective time. */
  effectiveAt: string;
  /** When it reached the customer (portal display or e-mail sent), null if not yet. */
  notifiedAt: string | null;
  /** The later of the two: from when it applies to this customer. */
  appliesFrom: string | null;
  status: SourceStatus;
  reason: Bilingual;
  text: { ja: string; en: string | null } | null;
}

export interface GoverningAnswer {
  topic: string;
  topicLabel: Bilingual;
  customerId: string;
  at: string;
  /** The source whose text governs; null when nothing applies (no terms in force, no notice). */
  governing: GoverningSource | null;
  termsVersion: { id: string; edition: string; effectiveDate: string } | null;
  /** Lowest precedence first: the terms, then the notices in order of notification, then what is not in force yet. */
  chain: GoverningSource[];
}

function termsText(doc: TermsDocument, topic: Topic): string | null {
  if (topic.kind === 'named') return null;
  const a = doc.articles.find((x) => x.number === topic.article);
  if (!a) return null;
  if (topic.paragraph === null) return renderArticle(a);
  const p = a.paragraphs.find((x) => x.number === topic.paragraph);
  return p ? `${articleTitle(a)}\n${renderParagraph(p)}` : null;
}

const later = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);
const noticeLabel = (n: NoticeRow) => {
  const ch = CHANNEL_LABELS[n.channel];
  const where = n.channel === 'support_guide' ? bi(`${ch.ja}（${n.guide_edition}）`, `${ch.en} (${n.guide_edition})`) : ch;
  return bi(`お知らせ「${n.title_ja}」（${where.ja}）`, `notice "${n.title_en ?? n.title_ja}" (${where.en})`);
};

export async function governingText(db: DbOrTx, query: { topic: string; customerId: string; at: Date }): Promise<GoverningAnswer> {
  const topic = parseTopic(query.topic);
  const T = query.at;
  const versions = await publishedVersionRows(db);
  assertTopicExists(topic, versions.map(documentOf));
  await getCustomer(db, query.customerId);
  const t = T.getTime();

  // 1. The terms version in force for the customer at T.
  const known = versions.filter((v) => v.published_at!.getTime() <= t);
  const vNotified = await notifiedAt(db, query.customerId, 'terms_version', known.map((v) => v.id));
  const assessed = known.map((v) => {
    // Registered after publication: the support-site posting is the notice (Art. 1.2).
    const n = vNotified.get(v.id) ?? v.published_at!;
    const notified = n.getTime() <= t ? n : null;
    const effective = startOfJapanDay(v.effective_date);
    return { v, effective, notified, appliesFrom: notified ? later(effective, notified) : null };
  });
  const inForce = assessed.filter((x) => x.appliesFrom !== null && x.appliesFrom.getTime() <= t);
  const current = inForce.sort((a, b) => a.v.effective_date.localeCompare(b.v.effective_date) || a.v.published_at!.getTime() - b.v.published_at!.getTime()).at(-1) ?? null;
  const pending: GoverningSource[] = [];
  for (const x of assessed) {
    if (inForce.includes(x)) continue;
    pending.push({
      kind: 'terms',
      id: x.v.id,
      label: bi(`利用規約 ${x.v.edition}`, `terms of use, edition ${x.v.edition}`),
      channel: null,
      topic: topic.key,
      effectiveAt: x.effective.toISOString(),
      notifiedAt: x.notified?.toISOString() ?? null,
      appliesFrom: x.appliesFrom?.toISOString() ?? null,
      status: 'pending',
      reason: x.notified
        ? bi(`施行日（${formatJapanDate(x.v.effective_date)}）前です。`, `Not yet effective: it applies from ${x.v.effective_date} (Japan).`)
        : bi('お客様への通知前のため、まだ効力を生じていません（第2条第2項）。', 'Not yet notified to the customer, so not yet in force (Art. 2.2).'),
      text: null,
    });
  }

  // 2. Notices addressed to the customer on the topic.
  const rows = (await noticeRowsFor(db, query.customerId, topicsGoverning(topic))).filter((n) => n.published_at!.getTime() <= t);
  const nNotified = await notifiedAt(db, query.customerId, 'notice', rows.map((n) => n.id));
  const notices = rows.map((n) => {
    const nt = nNotified.get(n.id) ?? n.published_at!;
    const notified = nt.getTime() <= t ? nt : n.published_at!;
    return { n, notified, appliesFrom: later(n.effective_at, notified) };
  });
  const applicable = notices
    .filter((x) => x.appliesFrom.getTime() <= t)
    .sort((a, b) => a.notified.getTime() - b.notified.getTime() || a.n.effective_at.getTime() - b.n.effective_at.getTime() || a.n.id.localeCompare(b.n.id));
  for (const x of notices) {
    if (applicable.includes(x)) continue;
    pending.push({
      kind: 'notice',
      id: x.n.id,
      label: noticeLabel(x.n),
      channel: x.n.channel,
      topic: x.n.topic,
      effectiveAt: x.n.effective_at.toISOString(),
      notifiedAt: x.notified.toISOString(),
      appliesFrom: x.appliesFrom.toISOString(),
      status: 'pending',
      reason: bi(`発効日時（${formatJapanDateTime(x.n.effective_at)}）前です。`, `Not yet effective: it applies from ${x.n.effective_at.toISOString()}.`),
      text: { ja: x.n.body_ja, en: x.n.body_en },
    });
  }

  const chain: GoverningSource[] = [];
  const top = applicable.at(-1);
  if (current) {
    const doc = documentOf(current.v);
    const text = termsText(doc, topic);
    const label = topic.kind === 'named' ? bi(`利用規約 ${current.v.edition}`, `terms of use, edition ${current.v.edition}`) : bi(`利用規約 ${current.v.edition} ${topicLabel(topic, doc).ja}`, `terms of use, edition ${current.v.edition}, ${topicLabel(topic, doc).en}`);
    const inForceSince = bi(`施行日 ${formatJapanDate(current.v.effective_date)}、お客様への通知 ${formatJapanDateTime(current.notified!)}`, `effective ${current.v.effective_date}, notified ${current.notified!.toISOString()}`);
    const silent = text === null ? bi(topic.kind === 'named' ? 'この事項は弊社が別に定めるものとしています。' : 'この版には該当する条項がありません。', topic.kind === 'named' ? 'The terms leave this to the provider to set separately.' : 'This version has no such clause.') : null;
    chain.push({
      kind: 'terms',
      id: current.v.id,
      label,
      channel: null,
      topic: topic.key,
      effectiveAt: current.effective.toISOString(),
      notifiedAt: current.notified!.toISOString(),
      appliesFrom: current.appliesFrom!.toISOString(),
      status: top ? 'overridden' : 'governs',
      reason: top
        ? bi(`${noticeLabel(top.n).ja}が本規約に優先します（第1条第3項）。${silent?.ja ?? ''}`, `${noticeLabel(top.n).en} prevails over the terms (Art. 1.3).${silent ? ` ${silent.en}` : ''}`)
        : bi(`この時点で適用されている利用規約です（${inForceSince.ja}。第2条第2項）。この事項に関するお知らせはありません。${silent?.ja ?? ''}`, `The terms in force at this time (${inForceSince.en}; Art. 2.2). No notice addresses this topic.${silent ? ` ${silent.en}` : ''}`),
      text: text === null ? null : { ja: text, en: null },
    });
  }
  applicable.forEach((x, i) => {
    const next = applicable[i + 1];
    const audience = x.n.all_customers ? bi('全てのお客様宛て', 'addressed to all customers') : bi('お客様宛て', 'addressed to this customer');
    chain.push({
      kind: 'notice',
      id: x.n.id,
      label: noticeLabel(x.n),
      channel: x.n.channel,
      topic: x.n.topic,
      effectiveAt: x.n.effective_at.toISOString(),
      notifiedAt: x.notified.toISOString(),
      appliesFrom: x.appliesFrom.toISOString(),
      status: next ? 'overridden' : 'governs',
      reason: next
        ? bi(`後に通知された${noticeLabel(next.n).ja}（${formatJapanDateTime(next.notified)}）が優先します（第1条第3項）。`, `The later notified ${noticeLabel(next.n).en} (${next.notified.toISOString()}) prevails (Art. 1.3).`)
        : bi(
            `${audience.ja}で、この時点で最も後に通知されたお知らせです（${formatJapanDateTime(x.notified)}通知）。お知らせは本規約に優先します（第1条第3項）。`,
            `${audience.en}; the latest notified at this time (${x.notified.toISOString()}). A notice prevails over the terms (Art. 1.3).`,
          ),
      text: { ja: x.n.body_ja, en: x.n.body_en },
    });
  });
  chain.push(...pending);

  return {
    topic: topic.key,
    topicLabel: topicLabel(topic, current ? documentOf(current.v) : versions.at(-1) ? documentOf(versions.at(-1)!) : null),
    customerId: query.customerId,
    at: T.toISOString(),
    governing: chain.find((s) => s.status === 'governs') ?? null,
    termsVersion: current ? { id: current.v.id, edition: current.v.edition, effectiveDate: current.v.effective_date } : null,
    chain,
  };
}
