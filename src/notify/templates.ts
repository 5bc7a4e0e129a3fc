import { errors } from '../core/errors.js';
import { bi, type Bilingual, type Locale } from '../core/i18n.js';
import { formatJapanDateTime, formatJapanDateTimeEn, formatJapanPeriodApprox, formatJapanTimeApprox } from '../core/japan-time.js';

/**
 * R8.1, R8.2: incident and stop notices as Japanese practice writes them — 【重要】 subjects,
 * 第一報 → 第二報 … → 最終報 (復旧), then the 障害報告書 with cause, impact, timeline and
 * countermeasures; times as 2026年11月24日(火) 10:00頃. Each notice is written in Japanese and
 * English; a contact reads the language it chose first and the other after it.
 */

export const INCIDENT_STAGES = ['first', 'update', 'recovery', 'report'] as const;
export type IncidentStage = (typeof INCIDENT_STAGES)[number];
export type StopStage = 'stop_planned' | 'stop_reminder' | 'stop_emergency';

export interface TimelineEntry {
  at: Date;
  text: Bilingual;
}

/** What an operator gives for a notice; which fields are required depends on the stage. */
export interface NoticeFields {
  /** Current situation, in the operator's words (optional on every stage). */
  details?: Bilingual | undefined;
  /** When the next update is expected (first and update stages). */
  nextUpdateAt?: Date | undefined;
  /** Recovery: when service resumed, if the incident has no recovery time yet. */
  recoveredAt?: Date | undefined;
  /** Report (required), recovery (optional). */
  cause?: Bilingual | undefined;
  impact?: Bilingual | undefined;
  timeline?: TimelineEntry[] | undefined;
  countermeasures?: Bilingual | undefined;
}

export interface IncidentFacts {
  title: string;
  occurredAt: Date;
  recoveredAt: Date | null;
  /** Names of the affected components; empty: the service as a whole. */
  components: Bilingual[];
}

export interface RenderedNotice {
  subject: Bilingual;
  body: Bilingual;
  label: Bilingual;
}

const KANJI_DIGITS = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

/** 1 → 一, 2 → 二, 10 → 十, 12 → 十二, 20 → 二十, 99 → 九十九 (larger: Arabic digits). */
export function kanjiNumber(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 99) return String(n);
  if (n < 10) return KANJI_DIGITS[n]!;
  const tens = Math.floor(n / 10);
  const ones = n % 10;
  return `${tens === 1 ? '' : KANJI_DIGITS[tens]}十${ones ? KANJI_DIGITS[ones] : ''}`;
}

function ordinalEn(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${s}`;
}

/** 第一報, 第二報 … / 1st report, 2nd report …; 最終報（復旧報）; 障害報告. */
export function stageLabel(stage: IncidentStage, seq: number): Bilingual {
  switch (stage) {
    case 'first':
    case 'update':
      return bi(`第${kanjiNumber(seq)}報`, `${ordinalEn(seq)} report`);
    case 'recovery':
      return bi('最終報（復旧報）', 'Final report (recovery)');
    case 'report':
      return bi('障害報告', 'Incident report');
  }
}

export function incidentSubject(stage: IncidentStage, seq: number): Bilingual {
  switch (stage) {
    case 'first':
    case 'update':
      return bi(`【重要】障害通知（第${kanjiNumber(seq)}報）`, `[Important] Incident notice (${ordinalEn(seq)} report)`);
    case 'recovery':
      return bi('【重要】障害復旧通知（最終報）', '[Important] Recovery notice (final report)');
    case 'report':
      return bi('【重要】障害報告書', '[Important] Incident report');
  }
}

const scopeJa = (c: Bilingual[]) => (c.length ? c.map((x) => x.ja).join('、') : '本サービス全体');
const scopeEn = (c: Bilingual[]) => (c.length ? c.map((x) => x.en).join(', ') : 'the service as a whole');

/** Checks the fields a stage needs; a missing one is refused with its name. */
export function checkNoticeFields(stage: IncidentStage, f: NoticeFields, facts: IncidentFacts): void {
  if (stage === 'report') {
    const missing = (['cause', 'impact', 'countermeasures'] as const).filter((k) => !f[k] || !f[k]!.ja.trim() || !f[k]!.en.trim());
    if (!f.timeline || f.timeline.length === 0) missing.push('timeline' as never);
    if (missing.length) {
      throw errors.validation(missing.map((m) => ({ path: m, message: `required for the report stage (${m} in Japanese and English)` })));
    }
  }
  if (stage === 'recovery' && !facts.recoveredAt && !f.recoveredAt) {
    throw errors.invalidField('recoveredAt', '復旧日時を指定してください（障害は未復旧です）。', 'give the time of recovery (the incident has none yet)');
  }
}

export function renderIncidentNotice(stage: IncidentStage, seq: number, facts: IncidentFacts, f: NoticeFields, ctx: { providerName: string; statusUrl: string }): RenderedNotice {
  const subject = incidentSubject(stage, seq);
  const label = stageLabel(stage, seq);
  const since = formatJapanTimeApprox(facts.occurredAt);
  const sinceEn = `about ${formatJapanDateTimeEn(facts.occurredAt)}`;
  const recoveredAt = facts.recoveredAt ?? f.recoveredAt ?? null;
  const ja: string[] = ['お客様各位', '', `平素より${ctx.providerName}のサービスをご利用いただき、誠にありがとうございます。`];
  const en: string[] = ['Dear customer,', '', `Thank you for using the services of ${ctx.providerName}.`];
  const details = (label: string, text: string | undefined, out: string[]) => {
    if (text && text.trim()) out.push(`■ ${label}`, text.trim(), '');
  };
  if (stage === 'first' || stage === 'update') {
    ja.push(
      stage === 'first' ? '下記のとおり障害が発生しておりますので、第一報としてお知らせいたします。' : `下記の障害について、第${kanjiNumber(seq)}報としてお知らせいたします。`,
      'ご利用の皆様には多大なるご迷惑をおかけしておりますことを、深くお詫び申し上げます。',
      '',
      `■ 発生日時: ${since}`,
      `■ 影響範囲: ${scopeJa(facts.components)}`,
      `■ 事象: ${facts.title}`,
      `■ 状況: ${recoveredAt ? `${formatJapanTimeApprox(recoveredAt)}に復旧しております。` : '復旧に向けて対応中です。'}`,
      '',
    );
    en.push(
      stage === 'first' ? 'We are writing to inform you, as a first report, of the following incident.' : `This is the ${ordinalEn(seq)} report on the following incident.`,
      'We sincerely apologise for the inconvenience caused.',
      '',
      `- Occurred: ${sinceEn}`,
      `- Affected: ${scopeEn(facts.components)}`,
      `- What happened: ${facts.title}`,
      `- Status: ${recoveredAt ? `service resumed at about ${formatJapanDateTimeEn(recoveredAt)}.` : 'we are working to restore the service.'}`,
      '',
    );
    details('詳細', f.details?.ja, ja);
    details('Details', f.details?.en, en);
    if (f.nextUpdateAt) {
      ja.push(`■ 次回のご報告: ${formatJapanTimeApprox(f.nextUpdateAt)}（予定）`, '');
      en.push(`- Next update: about ${formatJapanDateTimeEn(f.nextUpdateAt)} (planned)`, '');
    }
    ja.push('詳細が判明し次第、続報にてお知らせいたします。');
    en.push('We will inform you again as soon as we know more.');
  } else if (stage === 'recovery') {
    const period = formatJapanPeriodApprox(facts.occurredAt, recoveredAt);
    ja.push(
      '先にお知らせしておりました障害は、下記のとおり復旧いたしましたのでお知らせいたします。',
      'ご利用の皆様には多大なるご迷惑をおかけしましたことを、深くお詫び申し上げます。',
      '',
      `■ 障害期間: ${period}`,
      `■ 復旧日時: ${formatJapanTimeApprox(recoveredAt!)}`,
      `■ 影響範囲: ${scopeJa(facts.components)}`,
      `■ 事象: ${facts.title}`,
      '',
    );
    en.push(
      'The incident we reported earlier has been resolved.',
      'We sincerely apologise for the inconvenience caused.',
      '',
      `- Period: about ${formatJapanDateTimeEn(facts.occurredAt)} to ${formatJapanDateTimeEn(recoveredAt!)}`,
      `- Resumed: about ${formatJapanDateTimeEn(recoveredAt!)}`,
      `- Affected: ${scopeEn(facts.components)}`,
      `- What happened: ${facts.title}`,
      '',
    );
    details('原因', f.cause?.ja, ja);
    details('Cause', f.cause?.en, en);
    details('詳細', f.details?.ja, ja);
    details('Details', f.details?.en, en);
    ja.push('原因と再発防止策は、障害報告書にて改めてご報告いたします。');
    en.push('We will send a detailed report with the cause and countermeasures.');
  } else {
    const period = formatJapanPeriodApprox(facts.occurredAt, recoveredAt);
    ja.push('下記の障害について、ご報告いたします。改めて、多大なるご迷惑をおかけしましたことを深くお詫び申し上げます。', '', `■ 件名: ${facts.title}`, `■ 障害期間: ${period}`, `■ 影響範囲: ${scopeJa(facts.components)}`, '');
    en.push('This is our report on the following incident. Once again, we sincerely apologise for the inconvenience caused.', '', `- Incident: ${facts.title}`, `- Period: about ${formatJapanDateTimeEn(facts.occurredAt)}${recoveredAt ? ` to ${formatJapanDateTimeEn(recoveredAt)}` : ''}`, `- Affected: ${scopeEn(facts.components)}`, '');
    details('1. 影響', f.impact?.ja, ja);
    details('1. Impact', f.impact?.en, en);
    details('2. 原因', f.cause?.ja, ja);
    details('2. Cause', f.cause?.en, en);
    ja.push('■ 3. 経緯');
    en.push('3. Timeline');
    for (const t of [...(f.timeline ?? [])].sort((a, b) => a.at.getTime() - b.at.getTime())) {
      ja.push(`・${formatJapanTimeApprox(t.at)}　${t.text.ja}`);
      en.push(`- ${formatJapanDateTimeEn(t.at)}: ${t.text.en}`);
    }
    ja.push('');
    en.push('');
    details('4. 再発防止策', f.countermeasures?.ja, ja);
    details('4. Countermeasures', f.countermeasures?.en, en);
    details('補足', f.details?.ja, ja);
    details('Notes', f.details?.en, en);
  }
  ja.push(`障害情報ページ: ${ctx.statusUrl}`, '', ctx.providerName);
  en.push(`Status page: ${ctx.statusUrl}`, '', ctx.providerName);
  return { subject, body: bi(ja.join('\n'), en.join('\n')), label };
}

export interface StopFacts {
  kind: 'planned' | 'emergency';
  reason: Bilingual;
  description: string;
  startsAt: Date;
  endsAt: Date | null;
  components: Bilingual[];
}

export function renderStopNotice(stage: StopStage, s: StopFacts, ctx: { providerName: string; statusUrl: string }): RenderedNotice {
  const periodJa = s.endsAt ? `${formatJapanDateTime(s.startsAt).replace(/ JST$/, '')}〜${formatJapanDateTime(s.endsAt).replace(/ JST$/, '')}` : `${formatJapanDateTime(s.startsAt).replace(/ JST$/, '')}〜（終了時刻未定）`;
  const periodEn = s.endsAt ? `${formatJapanDateTimeEn(s.startsAt)} to ${formatJapanDateTimeEn(s.endsAt)}` : `from ${formatJapanDateTimeEn(s.startsAt)} (end not yet known)`;
  let subject: Bilingual;
  let label: Bilingual;
  let leadJa: string;
  let leadEn: string;
  if (stage === 'stop_emergency') {
    subject = bi('【緊急】サービス緊急停止のお知らせ', '[Urgent] Emergency stop of the service');
    label = bi('緊急停止', 'Emergency stop');
    leadJa = '利用規約に基づき、下記のとおりサービスを緊急に停止いたしましたのでお知らせいたします。ご迷惑をおかけしますことを深くお詫び申し上げます。';
    leadEn = 'Under the terms of use, we have stopped the service in an emergency as follows. We sincerely apologise for the inconvenience.';
  } else if (stage === 'stop_reminder') {
    subject = bi('【重要】【再送】計画停止のお知らせ（開始前のご案内）', '[Important] Reminder: planned stop of the service');
    label = bi('計画停止（事前のご案内）', 'Planned stop (reminder)');
    leadJa = '先にお知らせしております計画停止が近づきましたので、改めてご案内いたします。';
    leadEn = 'The planned stop we announced earlier is approaching; here is a reminder.';
  } else {
    subject = bi('【重要】計画停止のお知らせ', '[Important] Planned stop of the service');
    label = bi('計画停止', 'Planned stop');
    leadJa = '利用規約に基づき、下記のとおりサービスを計画停止いたしますので、事前にお知らせいたします。ご不便をおかけしますが、ご理解を賜りますようお願い申し上げます。';
    leadEn = 'Under the terms of use, we give notice that the service will be stopped as follows. We apologise for the inconvenience.';
  }
  const ja = [
    'お客様各位',
    '',
    leadJa,
    '',
    `■ 停止期間: ${periodJa}`,
    `■ ${s.kind === 'planned' ? '理由' : '原因'}: ${s.reason.ja}`,
    `■ 影響範囲: ${scopeJa(s.components)}`,
    `■ 内容: ${s.description}`,
    '',
    '停止中はサービスをご利用いただけません（データAPIは 503 とともに再開予定時刻をお返しします）。',
    `障害情報ページ: ${ctx.statusUrl}`,
    '',
    ctx.providerName,
  ];
  const en = [
    'Dear customer,',
    '',
    leadEn,
    '',
    `- Period: ${periodEn}`,
    `- ${s.kind === 'planned' ? 'Reason' : 'Cause'}: ${s.reason.en}`,
    `- Affected: ${scopeEn(s.components)}`,
    `- Details: ${s.description}`,
    '',
    'While stopped, the service cannot be used (the data API answers 503 with the expected time to retry).',
    `Status page: ${ctx.statusUrl}`,
    '',
    ctx.providerName,
  ];
  return { subject, body: bi(ja.join('\n'), en.join('\n')), label };
}

/** The e-mail a recipient gets: the language it chose first, then the other. */
export function composeEmail(notice: { subject: Bilingual; body: Bilingual }, lang: Locale, footer?: Bilingual): { subject: string; text: string } {
  const other: Locale = lang === 'ja' ? 'en' : 'ja';
  const sep = lang === 'ja' ? '―――――― English follows ――――――' : '―――――― 以下、日本語 ――――――';
  const parts = [notice.body[lang], '', sep, '', notice.body[other]];
  if (footer) parts.push('', '--', footer[lang], footer[other]);
  return { subject: notice.subject[lang], text: `${parts.join('\n')}\n` };
}
