import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import { bi, type Bilingual } from '../core/i18n.js';
import { formatJapanDateTime, startOfJapanDay } from '../core/japan-time.js';
import type { CustomerMonthStatistics, IncidentStat } from './statistics.js';

/*
 * R12.4: the monthly report per customer, as a standalone HTML page (Japanese first, English
 * second, inline SVG charts each followed by the same figures as a table, no script and no
 * external resource) and as an A4 PDF with Noto Sans JP embedded and a drawn bar chart. Both are
 * drawn from the statistics JSON, which stays the record.
 */

const NUMBER = new Intl.NumberFormat('ja-JP', { maximumFractionDigits: 2 });
const DASH = '—';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const num = (n: number | null) => (n === null ? DASH : NUMBER.format(n));
const pct = (n: number | null) => (n === null ? DASH : `${n.toFixed(3)}%`);
const when = (iso: string | null) => (iso ? formatJapanDateTime(new Date(iso)) : DASH);

export function monthLabel(month: string): Bilingual {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const en = new Date(Date.UTC(y, m - 1, 1)).toLocaleString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
  return bi(`${y}年${m}月`, en);
}

const SEVERITY = { critical: bi('重大', 'critical'), major: bi('重要', 'major'), minor: bi('軽微', 'minor') } as const;
const SLA_STATE: Record<string, Bilingual> = { met: bi('達成', 'met'), breached: bi('超過', 'breached'), running: bi('継続中', 'running') };

function liableLabel(i: IncidentStat): Bilingual {
  if (i.liability.liable === true) return bi('該当', 'liable');
  if (i.liability.liable === 'pending') return bi('判定中', 'pending');
  return bi('非該当', 'not liable');
}

const causeLabel = (code: string, label: Bilingual | null) => label ?? (code === 'unspecified' ? bi('未分類', 'unspecified') : bi(code, code));

export function reportTitle(s: CustomerMonthStatistics): Bilingual {
  const m = monthLabel(s.month);
  return bi(`月次稼働報告書 ${m.ja}`, `Monthly service report, ${m.en}`);
}

// ───────────────────────────── HTML ─────────────────────────────

const biHtml = (t: Bilingual) => `${esc(t.ja)}<span class="en" lang="en">${esc(t.en)}</span>`;

function table(caption: Bilingual, head: Bilingual[], rows: string[][], numeric: number[] = []): string {
  const th = head.map((h) => `<th scope="col">${biHtml(h)}</th>`).join('');
  const body = rows.length
    ? rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td${numeric.includes(i) ? ' class="num"' : ''}>${c}</td>`)).join('')}</tr>`).join('\n')
    : `<tr><td colspan="${head.length}">${biHtml(bi('該当なし', 'none'))}</td></tr>`;
  return `<table class="data"><caption>${biHtml(caption)}</caption><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

/** The lower end of the availability axis: 99 % unless a day went lower. */
function axisFloor(s: CustomerMonthStatistics): number {
  const lows = s.daily.flatMap((d) => (d.availabilityPct === null ? [] : [d.availabilityPct]));
  const min = lows.length ? Math.min(...lows) : 100;
  return min >= 99 ? 99 : Math.max(0, Math.floor(min / 5) * 5 - (min % 5 === 0 ? 5 : 0));
}

function dailyChartSvg(s: CustomerMonthStatistics): string {
  const W = 720;
  const H = 220;
  const left = 44;
  const bottom = 28;
  const top = 12;
  const floor = axisFloor(s);
  const plotH = H - top - bottom;
  const bw = (W - left - 8) / s.daily.length;
  const y = (p: number) => top + plotH * (1 - (Math.max(p, floor) - floor) / (100 - floor));
  const bars = s.daily
    .map((d, i) => {
      const x = left + i * bw + 1;
      const day = Number(d.date.slice(8));
      const label = `<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${H - 12}" font-size="9" text-anchor="middle">${day}</text>`;
      if (d.availabilityPct === null) return label;
      // A day with outage keeps a visible sliver even at 0 %.
      const yy = Math.min(y(d.availabilityPct), d.outageMinutes > 0 ? top + plotH - 2 : Infinity);
      const fill = d.outageMinutes > 0 ? '#c0392b' : d.plannedMinutes > 0 ? '#7f8c8d' : '#2e7d4f';
      return `<rect x="${x.toFixed(1)}" y="${yy.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${fill}"><title>${esc(d.date)}: ${pct(d.availabilityPct)}</title></rect>${label}`;
    })
    .join('');
  const ticks = [floor, (floor + 100) / 2, 100]
    .map((p) => `<line x1="${left}" x2="${W - 8}" y1="${y(p).toFixed(1)}" y2="${y(p).toFixed(1)}" stroke="#c9d0d8"/><text x="${left - 4}" y="${(y(p) + 3).toFixed(1)}" font-size="9" text-anchor="end">${p}%</text>`)
    .join('');
  return `<figure>
<svg role="img" aria-labelledby="daily-title daily-desc" viewBox="0 0 ${W} ${H}" width="100%" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">
<title id="daily-title">日別稼働率 / Daily availability</title>
<desc id="daily-desc">${esc(`${s.daily.length}日分の棒グラフ。縦軸 ${floor}%〜100%。赤は障害停止あり、灰は計画停止あり。 Bar chart of ${s.daily.length} days, axis ${floor}–100 %; red: outage, grey: planned stop.`)}</desc>
${ticks}${bars}
</svg>
<figcaption>${biHtml(bi('日別稼働率（表形式は下記）', 'Daily availability (the same figures as a table below)'))}</figcaption>
</figure>`;
}

function timelineSvg(s: CustomerMonthStatistics): string {
  const W = 720;
  const rowH = 18;
  const left = 8;
  const start = Date.parse(s.period.start);
  const end = Date.parse(s.period.end);
  const measured = Date.parse(s.period.measuredUntil);
  const x = (t: number) => left + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * (W - left - 8);
  const items = [
    ...s.incidents.map((i) => ({ label: i.title, from: Date.parse(i.occurredAt), to: i.recoveredAt ? Date.parse(i.recoveredAt) : measured, fill: i.entirelyUnusable ? '#c0392b' : '#e67e22' })),
    ...s.stops.map((st) => ({ label: `${st.reasonLabel.ja} (${st.kind === 'planned' ? '計画停止' : '緊急停止'})`, from: Date.parse(st.startsAt), to: st.endsAt ? Date.parse(st.endsAt) : measured, fill: st.kind === 'planned' ? '#7f8c8d' : '#8e44ad' })),
  ];
  const H = 30 + Math.max(1, items.length) * rowH;
  const days = s.daily
    .filter((_, i) => i % 5 === 0)
    .map((d) => {
      const t = startOfJapanDay(d.date).getTime();
      return `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="0" y2="${H - 14}" stroke="#e1e5ea"/><text x="${x(t).toFixed(1)}" y="${H - 3}" font-size="9">${Number(d.date.slice(8))}</text>`;
    })
    .join('');
  const rows = items
    .map((it, i) => {
      const x1 = x(it.from);
      const w = Math.max(2, x(it.to) - x1);
      return `<rect x="${x1.toFixed(1)}" y="${8 + i * rowH}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${it.fill}"><title>${esc(it.label)}</title></rect>`;
    })
    .join('');
  return `<figure>
<svg role="img" aria-labelledby="tl-title tl-desc" viewBox="0 0 ${W} ${H}" width="100%" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">
<title id="tl-title">障害・停止のタイムライン / Incidents and stops timeline</title>
<desc id="tl-desc">${esc(`${items.length}件。赤: 全面停止の障害、橙: その他の障害、灰: 計画停止、紫: 緊急停止。 ${items.length} items; red: outage incident, orange: other incident, grey: planned stop, purple: emergency stop.`)}</desc>
${days}${rows}
</svg>
<figcaption>${biHtml(bi('障害・停止のタイムライン（表形式は下記）', 'Timeline of incidents and stops (tables below)'))}</figcaption>
</figure>`;
}

const CSS = `
body { margin: 0; background: #f4f6f9; color: #1b1f24; font-family: "Noto Sans JP", "Hiragino Sans", "Yu Gothic", "Meiryo", sans-serif; font-size: 10pt; line-height: 1.6; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 2.5rem; background: #fff; }
h1 { margin: 0; font-size: 18pt; color: #1f3a5f; }
h1 .en, h2 .en { display: block; font-size: .6em; font-weight: normal; }
h2 { margin: 1.6em 0 .5em; border-bottom: 1.5px solid #1f3a5f; font-size: 12pt; color: #1f3a5f; }
.en { color: #3f4750; }
td .en, th .en, caption .en, dt .en, figcaption .en { display: block; font-size: .85em; }
dl.kpi { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: .6rem; margin: 1rem 0; }
dl.kpi div { border: 1px solid #c9d0d8; padding: .4rem .6rem; }
dl.kpi dt { font-size: .85em; } dl.kpi dd { margin: 0; font-size: 14pt; font-weight: bold; }
table.data { width: 100%; border-collapse: collapse; margin: .6rem 0; font-size: .9em; }
table.data th, table.data td { border: 1px solid #c9d0d8; padding: .25em .45em; text-align: left; vertical-align: top; }
table.data thead th { background: #e8edf3; }
table.data caption { text-align: left; font-weight: bold; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figcaption { font-size: .85em; }
p.note { font-size: .88em; color: #58606a; }
@media print { body { background: #fff; } main { padding: 0; } }
`;

export function renderReportHtml(s: CustomerMonthStatistics): string {
  const title = reportTitle(s);
  const a = s.availability;
  const sum = s.summary;
  const kpi = (label: Bilingual, value: string) => `<div><dt>${biHtml(label)}</dt><dd>${esc(value)}</dd></div>`;
  const kpis = [
    kpi(bi('稼働率', 'Availability'), pct(a.availabilityPct)),
    kpi(bi('障害による停止（分）', 'Outage (min)'), num(a.outageMinutes)),
    kpi(bi('性能低下・一部障害（分）', 'Degraded (min)'), num(a.degradedMinutes)),
    kpi(bi('計画停止（分・稼働率の対象外）', 'Planned stops (min, not counted)'), num(a.plannedMinutes)),
    kpi(bi('障害件数', 'Incidents'), String(sum.count)),
    kpi(bi('検知までの時間 平均/最大（分）', 'Time to detect avg/max (min)'), `${num(sum.timeToDetect.averageMinutes)} / ${num(sum.timeToDetect.maxMinutes)}`),
    kpi(bi('復旧までの時間 平均/最大（分）', 'Time to restore avg/max (min)'), `${num(sum.timeToRestore.averageMinutes)} / ${num(sum.timeToRestore.maxMinutes)}`),
    kpi(bi('目標超過（検知1時間/復旧24時間）', 'SLA breaches (detect 1 h / restore 24 h)'), `${sum.slaBreaches.detection} / ${sum.slaBreaches.restoration}`),
  ].join('');
  const dailyRows = s.daily.map((d) => [esc(d.date), pct(d.availabilityPct), num(d.outageMinutes), num(d.degradedMinutes), num(d.plannedMinutes)]);
  const incidentRows = s.incidents.map((i) => [
    esc(i.title),
    biHtml(SEVERITY[i.severity]),
    biHtml(causeLabel(i.cause, i.causeLabel)),
    esc(when(i.occurredAt)),
    esc(when(i.detectedAt)),
    esc(when(i.recoveredAt)),
    num(i.detectMinutes),
    num(i.restoreMinutes),
    `${biHtml(SLA_STATE[i.sla.detection]!)} / ${biHtml(SLA_STATE[i.sla.restoration]!)}`,
  ]);
  const causeRows = Object.entries(sum.byCause).filter(([, n]) => n > 0).map(([code, n]) => [biHtml(causeLabel(code, s.incidents.find((i) => i.cause === code)?.causeLabel ?? null)), String(n)]);
  const severityRows = (Object.keys(sum.bySeverity) as Array<keyof typeof SEVERITY>).map((k) => [biHtml(SEVERITY[k]), String(sum.bySeverity[k])]);
  const stopRows = s.stops.map((st) => [biHtml(st.kind === 'planned' ? bi('計画停止', 'planned') : bi('緊急停止', 'emergency')), biHtml(st.reasonLabel), esc(when(st.startsAt)), esc(when(st.endsAt)), num(st.minutesInMonth)]);
  const liabilityRows = s.incidents.map((i) => [esc(i.title), biHtml(liableLabel(i)), i.liability.reasons.map(biHtml).join('<br>')]);
  const resources =
    s.resources !== null && s.resources.length === 0
      ? `<p class="note">${biHtml(bi('資源の推移: この期間にハードウェアの計測値はありません。', 'Resource trends: no hardware samples in this period.'))}</p>`
      : s.resources === null
      ? `<p class="note">${biHtml(bi('資源の推移: このレポートにはハードウェア監視のデータが接続されていません。', 'Resource trends: no hardware monitoring data is connected to this report.'))}</p>`
      : s.resources.map((r) => table(bi(`${r.name}（${r.unit}）`, `${r.name} (${r.unit})`), [bi('時刻', 'Time'), bi('値', 'Value')], r.points.map((p) => [esc(when(p.at)), num(p.value)]), [1])).join('\n');
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title.ja)} / ${esc(title.en)} — ${esc(s.customer.name)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header><h1>${biHtml(title)}</h1>
<p>${esc(s.customer.name)}（${esc(s.customer.code)}）<br>${biHtml(bi(`対象期間: ${when(s.period.start)} 〜 ${when(s.period.end)}（計測は ${when(s.period.measuredUntil)} まで）`, `Period ${s.period.start} – ${s.period.end} (measured until ${s.period.measuredUntil})`))}</p></header>
<section><h2>${biHtml(bi('概要', 'Summary'))}</h2><dl class="kpi">${kpis}</dl>
<p class="note">${biHtml(bi('稼働率 =（計測時間 − 計画停止 − 障害による停止）÷（計測時間 − 計画停止）。計画停止（利用規約第7条）は別に表示し稼働率の計算から除きます。緊急停止と「全く利用できない」障害は停止として数え、その他の障害は性能低下として表示します。重なる時間は一度だけ数えます。', 'Availability = (measured − planned − outage) ÷ (measured − planned). Planned stops (Art. 7) are shown apart and left out; emergency stops and incidents that made the service entirely unusable count as outage; other incidents are shown as degraded time. Overlapping time counts once.'))}</p></section>
<section><h2>${biHtml(bi('日別稼働率', 'Daily availability'))}</h2>
${dailyChartSvg(s)}
${table(bi('日別稼働率（表）', 'Daily availability (table)'), [bi('日付', 'Date'), bi('稼働率', 'Availability'), bi('停止（分）', 'Outage (min)'), bi('性能低下（分）', 'Degraded (min)'), bi('計画停止（分）', 'Planned (min)')], dailyRows, [1, 2, 3, 4])}</section>
<section><h2>${biHtml(bi('障害と停止', 'Incidents and stops'))}</h2>
${timelineSvg(s)}
${table(bi('障害一覧', 'Incidents'), [bi('件名', 'Title'), bi('重大度', 'Severity'), bi('原因', 'Cause'), bi('発生', 'Occurred'), bi('検知', 'Detected'), bi('復旧', 'Recovered'), bi('検知まで（分）', 'Detect (min)'), bi('復旧まで（分）', 'Restore (min)'), bi('目標 検知/復旧', 'SLA detect/restore')], incidentRows, [6, 7])}
${table(bi('停止一覧', 'Stops'), [bi('種類', 'Kind'), bi('理由・原因', 'Reason or cause'), bi('開始', 'Start'), bi('終了', 'End'), bi('当月の時間（分）', 'Minutes this month')], stopRows, [4])}
${table(bi('原因別件数', 'Incidents by cause'), [bi('原因', 'Cause'), bi('件数', 'Count')], causeRows, [1])}
${table(bi('重大度別件数', 'Incidents by severity'), [bi('重大度', 'Severity'), bi('件数', 'Count')], severityRows, [1])}</section>
<section><h2>${biHtml(bi('損害賠償の判定（利用規約第20条）', 'Liability findings (Art. 20)'))}</h2>
${table(bi('障害ごとの判定と理由', 'Finding and reasons per incident'), [bi('件名', 'Title'), bi('判定', 'Finding'), bi('理由', 'Reasons')], liabilityRows)}</section>
<section><h2>${biHtml(bi('資源の推移', 'Resource trends'))}</h2>${resources}</section>
<footer><p class="note">${biHtml(bi(`作成日時 ${when(s.generatedAt)}。数値は作成時点の記録に基づきます。`, `Generated ${s.generatedAt}; figures reflect the records at that time.`))}</p></footer>
</main>
</body>
</html>
`;
}

// ───────────────────────────── PDF ─────────────────────────────

const requireHere = createRequire(import.meta.url);
let fontCache: { regular: Buffer; bold: Buffer } | undefined;
/** Noto Sans JP as static TrueType, as the deletion certificate uses: subsets carry a ToUnicode map. */
function fonts(): { regular: Buffer; bold: Buffer } {
  fontCache ??= {
    regular: readFileSync(requireHere.resolve('@expo-google-fonts/noto-sans-jp/400Regular/NotoSansJP_400Regular.ttf')),
    bold: readFileSync(requireHere.resolve('@expo-google-fonts/noto-sans-jp/700Bold/NotoSansJP_700Bold.ttf')),
  };
  return fontCache;
}

export async function renderReportPdf(s: CustomerMonthStatistics): Promise<Buffer> {
  const title = reportTitle(s);
  const { regular, bold } = fonts();
  const generated = new Date(s.generatedAt);
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: 50, bottom: 50, left: 48, right: 48 },
    pdfVersion: '1.7',
    lang: 'ja-JP',
    displayTitle: true,
    info: { Title: `${title.ja} / ${title.en}`, Subject: `${s.customer.code} ${s.customer.name}`, Creator: 'hokan', CreationDate: generated, ModDate: generated },
  });
  const chunks: Uint8Array[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (c: Uint8Array) => chunks.push(c));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
  doc.registerFont('R', regular);
  doc.registerFont('B', bold);
  const width = doc.page.width - 96;
  const heading = (t: Bilingual) => {
    doc.moveDown(0.8).font('B').fontSize(12).fillColor('#1f3a5f').text(t.ja, { continued: true }).font('R').fontSize(9).text(`  ${t.en}`);
    doc.fillColor('#1b1f24').moveDown(0.2);
  };
  const line = (label: Bilingual, value: string) => doc.font('R').fontSize(9.5).text(`${label.ja} / ${label.en}: ${value}`, { width });

  doc.font('B').fontSize(17).fillColor('#1f3a5f').text(title.ja);
  doc.font('R').fontSize(10).text(title.en);
  doc.fillColor('#1b1f24').fontSize(10).text(`${s.customer.name}（${s.customer.code}）`);
  doc.fontSize(8.5).text(`${when(s.period.start)} 〜 ${when(s.period.end)}  (measured until ${when(s.period.measuredUntil)})`);

  heading(bi('概要', 'Summary'));
  const a = s.availability;
  const sum = s.summary;
  line(bi('稼働率', 'Availability'), pct(a.availabilityPct));
  line(bi('障害による停止', 'Outage'), `${num(a.outageMinutes)} 分 / min`);
  line(bi('性能低下・一部障害', 'Degraded'), `${num(a.degradedMinutes)} 分 / min`);
  line(bi('計画停止（稼働率の対象外）', 'Planned stops (not counted)'), `${num(a.plannedMinutes)} 分 / min`);
  line(bi('障害件数', 'Incidents'), String(sum.count));
  line(bi('検知までの時間 平均/最大', 'Time to detect avg/max'), `${num(sum.timeToDetect.averageMinutes)} / ${num(sum.timeToDetect.maxMinutes)} 分 / min`);
  line(bi('復旧までの時間 平均/最大', 'Time to restore avg/max'), `${num(sum.timeToRestore.averageMinutes)} / ${num(sum.timeToRestore.maxMinutes)} 分 / min`);
  line(bi('目標超過 検知/復旧', 'SLA breaches detect/restore'), `${sum.slaBreaches.detection} / ${sum.slaBreaches.restoration}`);
  line(bi('損害賠償の対象となりうる障害', 'Incidents found liable or pending'), `${sum.liability.liable} / ${sum.liability.pending}`);

  heading(bi('日別稼働率', 'Daily availability'));
  const chartTop = doc.y + 4;
  const chartH = 120;
  const axisLeft = doc.page.margins.left + 34;
  const chartW = width - 34;
  const floor = axisFloor(s);
  const bw = chartW / s.daily.length;
  const yOf = (p: number) => chartTop + chartH * (1 - (Math.max(p, floor) - floor) / (100 - floor));
  doc.font('R').fontSize(7);
  for (const p of [floor, (floor + 100) / 2, 100]) {
    doc.moveTo(axisLeft, yOf(p)).lineTo(axisLeft + chartW, yOf(p)).lineWidth(0.4).strokeColor('#c9d0d8').stroke();
    doc.fillColor('#58606a').text(`${p}%`, doc.page.margins.left, yOf(p) - 4, { width: 30, align: 'right', lineBreak: false });
  }
  s.daily.forEach((d, i) => {
    const x = axisLeft + i * bw + 0.8;
    if (d.availabilityPct !== null) {
      const y = Math.min(yOf(d.availabilityPct), d.outageMinutes > 0 ? chartTop + chartH - 1.5 : Infinity);
      doc.rect(x, y, Math.max(1, bw - 1.6), chartTop + chartH - y).fill(d.outageMinutes > 0 ? '#c0392b' : d.plannedMinutes > 0 ? '#7f8c8d' : '#2e7d4f');
    }
    if (i % 2 === 0) doc.fillColor('#58606a').text(String(Number(d.date.slice(8))), x - 2, chartTop + chartH + 2, { width: bw + 4, align: 'center', lineBreak: false });
  });
  doc.fillColor('#1b1f24');
  doc.x = doc.page.margins.left;
  doc.y = chartTop + chartH + 14;
  doc.font('R').fontSize(7.5).text('赤: 障害による停止あり　灰: 計画停止あり　緑: 停止なし / red: outage, grey: planned stop, green: none', { width });

  heading(bi('障害一覧', 'Incidents'));
  if (s.incidents.length === 0) doc.font('R').fontSize(9.5).text('該当なし / none');
  for (const i of s.incidents) {
    doc.font('B').fontSize(9.5).text(`${i.title}（${SEVERITY[i.severity].ja} / ${SEVERITY[i.severity].en}）`, { width });
    doc.font('R').fontSize(8.5).text(
      [
        `原因 / cause: ${causeLabel(i.cause, i.causeLabel).ja} / ${causeLabel(i.cause, i.causeLabel).en}`,
        `発生 ${when(i.occurredAt)}　検知 ${when(i.detectedAt)}　復旧 ${when(i.recoveredAt)}`,
        `検知まで ${num(i.detectMinutes)} 分 / detect ${num(i.detectMinutes)} min　復旧まで ${num(i.restoreMinutes)} 分 / restore ${num(i.restoreMinutes)} min　目標 / SLA: ${SLA_STATE[i.sla.detection]!.ja} / ${SLA_STATE[i.sla.restoration]!.ja}`,
        `賠償判定 / liability: ${liableLabel(i).ja} / ${liableLabel(i).en}`,
      ].join('\n'),
      { width },
    );
    doc.moveDown(0.3);
  }

  heading(bi('原因別・重大度別', 'By cause and severity'));
  const causes = Object.entries(sum.byCause).filter(([, n]) => n > 0);
  doc.font('R').fontSize(9.5).text(causes.length ? causes.map(([c, n]) => `${causeLabel(c, s.incidents.find((i) => i.cause === c)?.causeLabel ?? null).ja}: ${n}`).join('　') : '該当なし / none', { width });
  doc.text((Object.keys(sum.bySeverity) as Array<keyof typeof SEVERITY>).map((k) => `${SEVERITY[k].ja} / ${SEVERITY[k].en}: ${sum.bySeverity[k]}`).join('　'), { width });

  heading(bi('停止', 'Stops'));
  if (s.stops.length === 0) doc.font('R').fontSize(9.5).text('該当なし / none');
  for (const st of s.stops) {
    doc.font('R').fontSize(8.5).text(`${st.kind === 'planned' ? '計画停止 / planned' : '緊急停止 / emergency'}　${st.reasonLabel.ja}　${when(st.startsAt)} 〜 ${when(st.endsAt)}　${num(st.minutesInMonth)} 分 / min`, { width });
  }
  doc.moveDown(0.8).font('R').fontSize(7.5).fillColor('#58606a').text(`作成日時 / generated ${when(s.generatedAt)}`, { width });
  doc.end();
  return done;
}
