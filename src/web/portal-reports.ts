import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { listContracts } from '../contracts/contracts.js';
import { errors } from '../core/errors.js';
import { getBreach, listBreaches, type BreachCustomerView, type BreachView, type StageState } from '../incidents/breach-clock.js';
import { monthLabel } from '../incidents/report-render.js';
import { customerMonthStatistics, japanMonthOf, type CustomerMonthStatistics, type IncidentStat } from '../incidents/statistics.js';
import { horizontalBars, stackedBars } from './charts.js';
import { html, type Html } from './html.js';
import { fmtTime, type T } from './i18n.js';
import { requireHuman, type Human, type WebDeps } from './kit.js';
import { nav } from './portal.js';
import { pageContext, shell, type PageContext } from './shell.js';

type Customer = Extract<Human, { kind: 'customer_user' }>;

const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;

/** Months from `first` (YYYY-MM) to `last`, newest first. */
export function monthsBetween(first: string, last: string): string[] {
  const out: string[] = [];
  let [y, m] = first.split('-').map(Number) as [number, number];
  for (let guard = 0; guard < 1200; guard++) {
    const mm = `${y}-${String(m).padStart(2, '0')}`;
    if (mm > last) break;
    out.push(mm);
    m++;
    if (m > 12) {
      m = 1;
      y++;
    }
  }
  return out.reverse();
}

const pctText = (n: number | null) => (n === null ? '—' : `${n.toFixed(3)}%`);
const minutes = (n: number | null, t: T) => (n === null ? '—' : `${n} ${t('分', 'min')}`);

/** R8.3, R12.4: a month's figures with charts (availability per day, incidents by severity and cause). */
export function monthFigures(s: { daily: CustomerMonthStatistics['daily']; availability: CustomerMonthStatistics['availability']; summary: CustomerMonthStatistics['summary'] }, pc: PageContext): Html {
  const { t } = pc;
  const days = s.daily.map((d) => d.date);
  const sum = s.summary;
  const causes = Object.entries(sum.byCause).filter(([, n]) => n > 0);
  return html`<dl class="facts" data-testid="month-figures">
<dt>${t('稼働率（計画停止を除く）', 'Availability (planned stops excluded)')}</dt><dd data-testid="availability">${pctText(s.availability.availabilityPct)}</dd>
<dt>${t('停止時間', 'Outage')}</dt><dd>${minutes(s.availability.outageMinutes, t)}</dd>
<dt>${t('一部機能の障害', 'Degraded')}</dt><dd>${minutes(s.availability.degradedMinutes, t)}</dd>
<dt>${t('計画停止', 'Planned stops')}</dt><dd>${minutes(s.availability.plannedMinutes, t)}</dd>
<dt>${t('障害の件数', 'Incidents')}</dt><dd data-testid="incident-count">${sum.count}</dd>
<dt>${t('検知までの時間（平均・最大）', 'Time to detect (average, max)')}</dt><dd>${minutes(sum.timeToDetect.averageMinutes, t)} · ${minutes(sum.timeToDetect.maxMinutes, t)}</dd>
<dt>${t('復旧までの時間（平均・最大）', 'Time to restore (average, max)')}</dt><dd>${minutes(sum.timeToRestore.averageMinutes, t)} · ${minutes(sum.timeToRestore.maxMinutes, t)}${sum.timeToRestore.unresolved ? t(`（未復旧 ${sum.timeToRestore.unresolved}件）`, ` (${sum.timeToRestore.unresolved} unresolved)`) : ''}</dd>
<dt>${t('SLA目標の未達（検知1時間・復旧24時間）', 'SLA targets missed (detect 1 h, restore 24 h)')}</dt><dd data-testid="sla-breaches">${sum.slaBreaches.detection} · ${sum.slaBreaches.restoration}</dd>
<dt>${t('賠償責任（該当・判定中）', 'Liability (liable, pending)')}</dt><dd data-testid="liability">${sum.liability.liable} · ${sum.liability.pending}</dd>
</dl>
<h3>${t('日ごとの停止・障害・計画停止（分）', 'Outage, degraded and planned minutes per day')}</h3>
${stackedBars(days, [
  { name: t('停止', 'Outage'), color: '#b00020', values: s.daily.map((d) => d.outageMinutes) },
  { name: t('一部障害', 'Degraded'), color: '#8a5a00', values: s.daily.map((d) => d.degradedMinutes) },
  { name: t('計画停止', 'Planned'), color: '#1f4e99', values: s.daily.map((d) => d.plannedMinutes) },
], t(`日ごとの停止時間（分）。月の稼働率 ${pctText(s.availability.availabilityPct)}`, `Minutes of outage per day; availability for the month ${pctText(s.availability.availabilityPct)}`))}
<details><summary>${t('日ごとの稼働率（表）', 'Availability per day (table)')}</summary><div class="table-wrap"><table><thead><tr><th scope="col">${t('日付', 'Date')}</th><th scope="col">${t('稼働率', 'Availability')}</th><th scope="col">${t('停止（分）', 'Outage (min)')}</th><th scope="col">${t('計画停止（分）', 'Planned (min)')}</th></tr></thead>
<tbody>${s.daily.map((d) => html`<tr><td>${d.date}</td><td>${pctText(d.availabilityPct)}</td><td>${d.outageMinutes}</td><td>${d.plannedMinutes}</td></tr>`)}</tbody></table></div></details>
<h3>${t('重大度ごとの障害', 'Incidents by severity')}</h3>
${horizontalBars([
  { label: t('重大', 'critical'), value: sum.bySeverity.critical },
  { label: t('重要', 'major'), value: sum.bySeverity.major },
  { label: t('軽微', 'minor'), value: sum.bySeverity.minor },
], t(`重大度ごとの障害の件数（合計${sum.count}件）`, `Incidents by severity (${sum.count} in all)`), '#b00020')}
${causes.length ? html`<h3>${t('原因ごとの障害', 'Incidents by cause')}</h3>${horizontalBars(causes.map(([label, value]) => ({ label, value })), t('原因ごとの障害の件数', 'Incidents by cause'), '#1f4e99')}` : ''}`;
}

export function incidentStatTable(list: IncidentStat[], pc: PageContext): Html {
  const { t, locale } = pc;
  if (!list.length) return html`<p>${t('この月の障害はありません。', 'No incidents in this month.')}</p>`;
  const sla = (s: string) => (s === 'met' ? t('達成', 'met') : s === 'breached' ? t('未達', 'breached') : t('経過中', 'running'));
  return html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('障害', 'Incident')}</th><th scope="col">${t('発生', 'Occurred')}</th><th scope="col">${t('復旧', 'Recovered')}</th><th scope="col">${t('検知', 'Detection')}</th><th scope="col">${t('復旧目標', 'Restoration')}</th><th scope="col">${t('賠償責任', 'Liability')}</th></tr></thead>
<tbody>${list.map((i) => html`<tr><td>${i.title}</td><td>${fmtTime(i.occurredAt, locale)}</td><td>${i.recoveredAt ? fmtTime(i.recoveredAt, locale) : t('対応中', 'ongoing')}</td><td>${sla(i.sla.detection)} (${i.detectMinutes} ${t('分', 'min')})</td><td>${sla(i.sla.restoration)}</td><td>${i.liability.liable === 'pending' ? t('判定待ち', 'pending') : i.liability.liable ? t('賠償責任あり', 'liable') : t('賠償責任なし', 'not liable')}</td></tr>`)}</tbody></table></div>`;
}

const STAGE = (t: T): Record<StageState, string> => ({ done: t('済み', 'done'), open: t('期限内', 'open'), due_soon: t('期限が近い', 'due soon'), overdue: t('期限超過', 'overdue') });

/** One customer's part of a breach record: deadlines, what was reported, what is still missing. */
export function breachCustomerHtml(_b: BreachView, c: BreachCustomerView, pc: PageContext, customerName?: string): Html {
  const { t, locale } = pc;
  const stage = STAGE(t);
  return html`<section class="panel" data-testid="breach-customer">${customerName ? html`<h3>${customerName}</h3>` : ''}
<dl class="facts">
<dt>${t('弊社が知った時刻', 'Provider learned of it')}</dt><dd>${fmtTime(c.learnedAt, locale)}</dd>
<dt>${t('個人データの項目', 'Personal data involved')}</dt><dd>${c.dataItems.length ? c.dataItems.join('、') : t('未記入', 'not yet filled in')}</dd>
<dt>${t('本人の数', 'People affected')}</dt><dd>${c.people.count === null ? t('不明', 'unknown') : `${c.people.count}${c.people.estimated ? t('（推定）', ' (estimate)') : ''}`}</dd>
<dt>${t('報告対象か（施行規則第7条）', 'Reportable (Rules Art. 7)')}</dt><dd>${c.reportability.reportable === 'yes' ? t('該当', 'yes') : c.reportability.reportable === 'no' ? t('非該当', 'no') : t('未確定', 'undetermined')} — ${c.reportability.reason[locale]}</dd>
<dt>${t('速報の期限', 'Preliminary report due')}</dt><dd data-testid="preliminary-due">${fmtTime(c.deadlines.preliminary.targetAt, locale)}（${t('遅くとも', 'at the latest')} ${fmtTime(c.deadlines.preliminary.latestAt, locale)}）· <strong>${stage[c.deadlines.preliminary.state]}</strong><br><span class="hint">${c.deadlines.preliminary.rule[locale]}</span></dd>
<dt>${t('速報', 'Preliminary report')}</dt><dd data-testid="preliminary-at">${c.notices.preliminary ? `${fmtTime(c.notices.preliminary.at, locale)} · ${c.notices.preliminary.by}` : t('未実施', 'not yet given')}</dd>
<dt>${t('確報の期限', 'Final report due')}</dt><dd data-testid="final-due">${fmtTime(c.deadlines.final.dueAt, locale)} · <strong>${stage[c.deadlines.final.state]}</strong><br><span class="hint">${c.deadlines.final.rule[locale]}</span></dd>
<dt>${t('確報', 'Final report')}</dt><dd>${c.notices.final ? `${fmtTime(c.notices.final.at, locale)} · ${c.notices.final.by}` : t('未実施', 'not yet given')}</dd>
${c.missing.length ? html`<dt>${t('未記入の項目', 'Still missing')}</dt><dd>${c.missing.join(', ')}</dd>` : ''}
</dl></section>`;
}

export function breachFactsHtml(b: BreachView, pc: PageContext): Html {
  const { t, locale } = pc;
  const status = b.status === 'suspected' ? t('疑い', 'suspected') : b.status === 'confirmed' ? t('確定', 'confirmed') : t('該当せず', 'ruled out');
  const text = (s: string) => (s ? html`<span class="diff-line">${s}</span>` : t('未記入', 'not yet filled in'));
  return html`<dl class="facts">
<dt>${t('種類', 'Kind')}</dt><dd>${b.kinds.map((k) => k.label[locale]).join('・')}</dd>
<dt>${t('状態', 'Status')}</dt><dd data-testid="breach-status">${status}</dd>
<dt>${t('発生', 'Began')}</dt><dd>${fmtTime(b.beganAt, locale)}</dd>
<dt>${t('不正の目的のおそれ', 'Possibly for an unauthorised purpose')}</dt><dd>${b.unauthorisedPurpose ? t('あり', 'yes') : t('なし', 'no')}</dd>
<dt>${t('原因', 'Cause')}</dt><dd>${text(b.cause)}</dd>
<dt>${t('二次被害', 'Secondary damage')}</dt><dd>${text(b.secondaryDamage)}</dd>
<dt>${t('再発防止策・本人への対応', 'Countermeasures')}</dt><dd>${text(b.countermeasures)}</dd>
<dt>${t('問合せ窓口', 'Contact')}</dt><dd>${text(b.contact)}</dd>
</dl>
${b.timeline.length ? html`<h3>${t('経緯', 'Timeline')}</h3><ul>${b.timeline.map((e) => html`<li>${fmtTime(e.at, locale)} · ${e.event}</li>`)}</ul>` : ''}`;
}

export function registerPortalReports(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const customer = (req: FastifyRequest) => requireHuman(req, 'portal') as Customer;
  const pcOf = (req: FastifyRequest, reply: FastifyReply, p: Customer) => pageContext(deps, req, reply, p);

  /** Months since the earliest contract start (or the customer's first month) to this month. */
  const monthsOf = async (p: Customer): Promise<string[]> => {
    const contracts = await listContracts(ctx.db, { customerId: p.customerId });
    const starts = contracts.map((c) => c.term_start).sort();
    const now = japanMonthOf(ctx.clock.now());
    const first = starts[0]?.slice(0, 7) ?? now;
    return monthsBetween(first < '2000-01' ? '2000-01' : first, now);
  };

  // ---- monthly reports (R12.4) ----------------------------------------------------------------
  app.get('/portal/reports', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const months = await monthsOf(p);
    const base = `/api/v1/customers/${p.customerId}/reports`;
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('月次報告', 'Monthly reports'),
      path: '/portal/reports',
      body: html`<p class="hint">${t('毎月の稼働率、障害、停止、SLAの達成状況と賠償責任の判定です（第8条・第20条）。', 'Each month: availability, incidents, stops, the SLA targets and liability findings (Art. 8, 20).')}</p>
<div class="table-wrap"><table><thead><tr><th scope="col">${t('月', 'Month')}</th><th scope="col">${t('報告書', 'Report')}</th></tr></thead>
<tbody>${months.map((m) => html`<tr><td><a href="/portal/reports/${m}">${monthLabel(m)[locale]}</a></td><td><a href="${base}/${m}.html">HTML</a> · <a href="${base}/${m}.pdf">PDF</a></td></tr>`)}</tbody></table></div>`,
    });
  });

  app.get('/portal/reports/:month', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const month = (req.params as { month: string }).month;
    if (!MONTH_RE.test(month) || !(await monthsOf(p)).includes(month)) throw errors.notFound('月次報告 / monthly report', month);
    const s = await customerMonthStatistics(ctx.db, ctx.clock, p.customerId, month);
    const base = `/api/v1/customers/${p.customerId}/reports/${month}`;
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t(`月次報告 ${monthLabel(month).ja}`, `Monthly report, ${monthLabel(month).en}`),
      path: `/portal/reports/${month}`,
      body: html`<p><a href="/portal/reports">${t('月次報告の一覧', 'All monthly reports')}</a> · <a href="${base}.html">${t('報告書（HTML）', 'Report (HTML)')}</a> · <a href="${base}.pdf">${t('報告書（PDF）', 'Report (PDF)')}</a></p>
<p class="hint">${t('集計時点', 'Figures as of')} ${fmtTime(s.period.measuredUntil, locale)}</p>
${monthFigures(s, pc)}
<h2>${t('障害', 'Incidents')}</h2>${incidentStatTable(s.incidents, pc)}
<h2>${t('停止', 'Stops')}</h2>
${s.stops.length ? html`<ul>${s.stops.map((x) => html`<li>${x.kind === 'planned' ? t('計画停止', 'planned') : t('緊急停止', 'emergency')} · ${x.reasonLabel[locale]} · ${fmtTime(x.startsAt, locale)} – ${fmtTime(x.endsAt, locale)} · ${x.minutesInMonth} ${t('分', 'min')}</li>`)}</ul>` : html`<p>${t('この月の停止はありません。', 'No stops in this month.')}</p>`}
${s.breaches.learnedInMonth ? html`<p><a href="/portal/breaches">${t(`この月に判明した個人データ漏えい等: ${s.breaches.learnedInMonth}件`, `Personal-data breaches learned of in this month: ${s.breaches.learnedInMonth}`)}</a></p>` : ''}`,
    });
  });

  // ---- personal-data breaches affecting this customer (APPI Art. 26) -------------------------
  app.get('/portal/breaches', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const list = await listBreaches(ctx.db, ctx.clock, p.customerId);
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('個人データの漏えい等', 'Personal-data breaches'),
      path: '/portal/breaches',
      body: html`<p class="hint">${t('お客様のデータに関わる漏えい・滅失・毀損（おそれを含む）について、弊社からの速報・確報の期限と報告内容です（個人情報保護法第26条、施行規則第8条）。', 'Leaks, losses or damage (suspected too) involving your data: when the provider must report to you and what it reported (APPI Art. 26, Rules Art. 8).')}</p>
${list.length ? list.map((b) => html`<section class="panel"><h2><a href="/portal/breaches/${b.id}">${b.kinds.map((k) => k.label[locale]).join('・')} · ${fmtTime(b.learnedAt, locale)}</a></h2>${b.customers.map((c) => breachCustomerHtml(b, c, pc))}</section>`) : html`<p>${t('記録はありません。', 'Nothing recorded.')}</p>`}`,
    });
  });

  app.get('/portal/breaches/:breachId', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const id = (req.params as { breachId: string }).breachId;
    if (!z.uuid().safeParse(id).success) throw errors.notFound('個人データ漏えい等 / personal-data breach', id);
    const b = await getBreach(ctx.db, ctx.clock, id, p.customerId);
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('個人データの漏えい等', 'Personal-data breach'),
      path: `/portal/breaches/${b.id}`,
      body: html`<p><a href="/portal/breaches">${t('一覧に戻る', 'Back to the list')}</a> · ${t('判明', 'Learned of')} ${fmtTime(b.learnedAt, locale)}</p>
${breachFactsHtml(b, pc)}
<h2>${t('お客様への報告', 'Reports to you')}</h2>${b.customers.map((c) => breachCustomerHtml(b, c, pc))}`,
    });
  });
}
