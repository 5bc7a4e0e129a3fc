import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { listCustomers } from '../contracts/customers.js';
import { actorOf } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import { instant } from '../http/route-kit.js';
import { BREACH_STATUSES, getBreach, listBreaches, NOTICE_STAGES, recordBreachNotice, updateBreach } from '../incidents/breach-clock.js';
import { monthLabel } from '../incidents/report-render.js';
import { japanMonthOf, providerMonthStatistics } from '../incidents/statistics.js';
import { horizontalBars } from './charts.js';
import { consoleKit, uuidParam, type PageFn } from './console-kit.js';
import { consoleForm } from './console-terms.js';
import { html } from './html.js';
import { fmtTime, type T } from './i18n.js';
import { checked, field, form, jstInstant, str, toJstLocal, type FormData, type WebDeps } from './kit.js';
import { breachCustomerHtml, breachFactsHtml, incidentStatTable, monthsBetween } from './portal-reports.js';
import { doneNote } from './shell.js';

const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
const text = z.string().trim().max(4000).refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), { error: 'must not contain control characters' });
const detailsBody = z.object({ status: z.enum(BREACH_STATUSES), unauthorisedPurpose: z.boolean(), cause: text, secondaryDamage: text, countermeasures: text, contact: text });
const customerBody = z.object({
  customerId: z.uuid(),
  dataItems: z.array(z.string().trim().min(1).max(200)).max(50),
  peopleCount: z.number().int().min(0).max(1_000_000_000).nullable(),
  peopleEstimated: z.boolean(),
  sensitive: z.boolean(),
  financialRisk: z.boolean(),
  advancedMeasures: z.boolean(),
  protectionNote: text,
});
const noticeBody = z.object({ customerId: z.uuid(), stage: z.enum(NOTICE_STAGES), at: instant.optional() });

const DONE = (t: T) => ({ saved: t('記録しました。', 'Saved.') });

/** An optional whole number from a form field: empty → null, otherwise the number (NaN is refused by the schema). */
const intOrNull = (v: string | undefined): number | null => (v === undefined ? null : /^\d+$/.test(v.trim()) ? Number(v.trim()) : Number.NaN);

export function registerConsoleReports(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const { operator, pcOf, page } = consoleKit(app, deps);

  // ---- SLA and liability report per month, provider-wide (R8.3, R20, R12.4) -------------------
  app.get('/console/reports', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, 'admin', 'operator', 'support', 'billing');
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const now = japanMonthOf(ctx.clock.now());
    const asked = str(req.query as FormData, 'month');
    const month = asked && MONTH_RE.test(asked) && asked <= now && asked >= '2000-01' ? asked : now;
    const s = await providerMonthStatistics(ctx.db, ctx.clock, month);
    const recent = monthsBetween(monthsBetween('2000-01', now).at(23) ?? '2000-01', now);
    const lowest = [...s.customers].sort((a, b) => (a.availabilityPct ?? 100) - (b.availabilityPct ?? 100)).slice(0, 20);
    return page(reply, pc, t(`SLA・賠償責任報告 ${monthLabel(month).ja}`, `SLA and liability report, ${monthLabel(month).en}`), `/console/reports?month=${month}`, html`
<form class="stack" method="get" action="/console/reports"><div><label for="report-month">${t('月', 'Month')}</label><select id="report-month" name="month">${recent.map((m) => html`<option value="${m}"${m === month ? html` selected` : ''}>${monthLabel(m)[locale]}</option>`)}</select></div><div><button type="submit">${t('表示', 'Show')}</button></div></form>
<dl class="facts" data-testid="provider-figures">
<dt>${t('お客様の稼働率（平均・最低）', 'Customer availability (average, lowest)')}</dt><dd>${s.availability.averagePct === null ? '—' : `${s.availability.averagePct.toFixed(3)}%`} · ${s.availability.minPct === null ? '—' : `${s.availability.minPct.toFixed(3)}%`}</dd>
<dt>${t('99.9%未満のお客様', 'Customers below 99.9 %')}</dt><dd>${s.availability.customersBelow99_9}</dd>
<dt>${t('この月の個人データ漏えい等（判明・確定）', 'Personal-data breaches learned of (all, confirmed)')}</dt><dd>${s.breaches.learnedInMonth} · ${s.breaches.confirmed}</dd>
</dl>
<h2>${t('障害とSLA', 'Incidents and the SLA')}</h2>
<dl class="facts"><dt>${t('障害の件数', 'Incidents')}</dt><dd data-testid="provider-incidents">${s.summary.count}</dd>
<dt>${t('SLA目標の未達（検知・復旧）', 'SLA targets missed (detect, restore)')}</dt><dd>${s.summary.slaBreaches.detection} · ${s.summary.slaBreaches.restoration}</dd>
<dt>${t('賠償責任（該当・判定中）', 'Liability (liable, pending)')}</dt><dd data-testid="provider-liability">${s.summary.liability.liable} · ${s.summary.liability.pending}</dd></dl>
${horizontalBars([
  { label: t('重大', 'critical'), value: s.summary.bySeverity.critical },
  { label: t('重要', 'major'), value: s.summary.bySeverity.major },
  { label: t('軽微', 'minor'), value: s.summary.bySeverity.minor },
], t(`重大度ごとの障害の件数（合計${s.summary.count}件）`, `Incidents by severity (${s.summary.count} in all)`), '#b00020')}
${incidentStatTable(s.incidents, pc)}
<h2>${t('お客様ごとの稼働率（低い順・最大20件）', 'Availability per customer (lowest first, up to 20)')}</h2>
${lowest.length ? horizontalBars(lowest.map((c) => ({ label: c.name, value: Math.round((c.outageMinutes ?? 0) * 10) / 10 })), t('お客様ごとの停止時間（分）', 'Outage minutes per customer'), '#b00020') : ''}
${s.customers.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('稼働率', 'Availability')}</th><th scope="col">${t('停止（分）', 'Outage (min)')}</th><th scope="col">${t('障害', 'Incidents')}</th><th scope="col">${t('報告書', 'Report')}</th></tr></thead>
<tbody>${s.customers.map((c) => html`<tr><td>${c.name}</td><td>${c.availabilityPct === null ? '—' : `${c.availabilityPct.toFixed(3)}%`}</td><td>${c.outageMinutes}</td><td>${c.incidents}</td><td><a href="/api/v1/customers/${c.id}/reports/${month}.html">HTML</a> · <a href="/api/v1/customers/${c.id}/reports/${month}.pdf">PDF</a></td></tr>`)}</tbody></table></div>` : html`<p>${t('お客様はいません。', 'No customers.')}</p>`}`);
  });

  // ---- the personal-data breach clock (APPI Art. 26; decision 0020) ----------------------------
  app.get('/console/breaches', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, 'admin', 'operator', 'support');
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const list = await listBreaches(ctx.db, ctx.clock);
    const customers = await listCustomers(ctx.db);
    const name = (id: string) => customers.find((c) => c.id === id)?.name ?? id;
    const stage = (s: string) => (s === 'done' ? t('済み', 'done') : s === 'overdue' ? t('期限超過', 'overdue') : s === 'due_soon' ? t('期限が近い', 'due soon') : t('期限内', 'open'));
    return page(reply, pc, t('個人データの漏えい等', 'Personal-data breaches'), '/console/breaches', html`<p class="hint">${t('漏えい等の記録は障害の画面から登録します（API: POST /incidents/{id}/breach）。速報・確報の期限はお客様ごとに数えます。', 'A breach is marked from its incident (API: POST /incidents/{id}/breach). Deadlines run per affected customer.')}</p>
${list.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('判明', 'Learned of')}</th><th scope="col">${t('種類・状態', 'Kind, status')}</th><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('速報の期限', 'Preliminary due')}</th><th scope="col">${t('確報の期限', 'Final due')}</th></tr></thead>
<tbody>${list.flatMap((b) => b.customers.map((c) => html`<tr><td><a href="/console/breaches/${b.id}">${fmtTime(b.learnedAt, locale)}</a></td><td>${b.kinds.map((k) => k.label[locale]).join('・')} · ${b.status}</td><td>${name(c.customerId)}</td><td>${fmtTime(c.deadlines.preliminary.targetAt, locale)} · <strong>${stage(c.deadlines.preliminary.state)}</strong></td><td>${fmtTime(c.deadlines.final.dueAt, locale)} · <strong>${stage(c.deadlines.final.state)}</strong></td></tr>`))}</tbody></table></div>` : html`<p>${t('記録はありません。', 'Nothing recorded.')}</p>`}`);
  });

  const breachPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const b = await getBreach(ctx.db, ctx.clock, uuidParam(req, 'breachId'));
    const customers = await listCustomers(ctx.db);
    const name = (id: string) => customers.find((c) => c.id === id)?.name ?? id;
    const yesNo = (v: boolean) => (v ? 'on' : undefined);
    const details = form({
      id: 'details',
      action: `/console/breaches/${b.id}/details`,
      csrf: pc.csrf,
      submit: t('保存する', 'Save'),
      state,
      locale,
      fields: html`${field('details', { name: 'status', label: t('状態', 'Status'), type: 'select', value: b.status, options: [{ value: 'suspected', label: t('疑い', 'suspected') }, { value: 'confirmed', label: t('確定', 'confirmed') }, { value: 'ruled_out', label: t('該当せず', 'ruled out') }] }, state)}
${field('details', { name: 'unauthorisedPurpose', label: t('不正の目的をもって行われたおそれ（確報は60日以内）', 'Possibly for an unauthorised purpose (final report within 60 days)'), type: 'checkbox', value: yesNo(b.unauthorisedPurpose) }, state)}
${field('details', { name: 'cause', label: t('原因', 'Cause'), type: 'textarea', value: b.cause }, state)}
${field('details', { name: 'secondaryDamage', label: t('二次被害またはそのおそれ', 'Secondary damage'), type: 'textarea', value: b.secondaryDamage }, state)}
${field('details', { name: 'countermeasures', label: t('再発防止策・本人への対応', 'Countermeasures'), type: 'textarea', value: b.countermeasures }, state)}
${field('details', { name: 'contact', label: t('問合せ窓口', 'Contact'), type: 'textarea', value: b.contact }, state)}`,
    });
    const perCustomer = b.customers.map((c) => {
      const fid = `customer-${c.customerId}`;
      const nid = `notice-${c.customerId}`;
      const next = c.notices.preliminary ? (c.notices.final ? null : 'final') : 'preliminary';
      return html`${breachCustomerHtml(b, c, pc, name(c.customerId))}
<details class="action"${state?.form === fid ? html` open` : ''}><summary>${t('このお客様の報告内容を記入する', "Fill in this customer's report")}</summary>${form({
        id: fid,
        action: `/console/breaches/${b.id}/customers`,
        csrf: pc.csrf,
        submit: t('保存する', 'Save'),
        state,
        locale,
        fields: html`<input type="hidden" name="customerId" value="${c.customerId}">
${field(fid, { name: 'dataItems', label: t('個人データの項目（1行に1つ）', 'Personal data involved (one per line)'), type: 'textarea', value: c.dataItems.join('\n') }, state)}
${field(fid, { name: 'peopleCount', label: t('本人の数（不明なら空欄）', 'Number of people (empty if unknown)'), type: 'number', inputmode: 'numeric', value: c.people.count === null ? undefined : String(c.people.count) }, state)}
${field(fid, { name: 'peopleEstimated', label: t('推定値', 'Estimate'), type: 'checkbox', value: yesNo(c.people.estimated) }, state)}
${field(fid, { name: 'sensitive', label: t('要配慮個人情報を含む（第7条第1号）', 'Includes sensitive data (Art. 7(i))'), type: 'checkbox', value: yesNo(c.sensitive) }, state)}
${field(fid, { name: 'financialRisk', label: t('財産的被害のおそれ（第7条第2号）', 'Risk of financial damage (Art. 7(ii))'), type: 'checkbox', value: yesNo(c.financialRisk) }, state)}
${field(fid, { name: 'advancedMeasures', label: t('高度な暗号化その他の措置', 'Advanced measures such as strong encryption'), type: 'checkbox', value: yesNo(c.advancedMeasures) }, state)}
${field(fid, { name: 'protectionNote', label: t('保護措置の内容', 'Protection in place'), type: 'textarea', value: c.protectionNote }, state)}`,
      })}</details>
${next ? form({
  id: nid,
  action: `/console/breaches/${b.id}/notices`,
  csrf: pc.csrf,
  submit: next === 'preliminary' ? t('速報を記録する', 'Record the preliminary report') : t('確報を記録する', 'Record the final report'),
  state,
  locale,
  fields: html`<input type="hidden" name="customerId" value="${c.customerId}"><input type="hidden" name="stage" value="${next}">
${field(nid, { name: 'at', label: t('報告した日時（日本時間・空欄なら現在）', 'When it was given (Japan time; empty: now)'), type: 'datetime-local', hint: t(`例: ${toJstLocal(ctx.clock.now())}`, `e.g. ${toJstLocal(ctx.clock.now())}`) }, state)}`,
}) : ''}`;
    });
    return page(reply, pc, t('個人データの漏えい等', 'Personal-data breach'), `/console/breaches/${b.id}`, html`${doneNote(req, DONE(t))}
<p><a href="/console/breaches">${t('一覧に戻る', 'Back to the list')}</a> · <a href="/console/incidents/${b.incidentId}">${t('障害', 'Incident')}</a> · ${t('判明', 'Learned of')} ${fmtTime(b.learnedAt, locale)}</p>
${breachFactsHtml(b, pc)}
<details class="action"${state?.form === 'details' ? html` open` : ''}><summary>${t('報告の内容を記入する', 'Fill in the report')}</summary>${details}</details>
<h2>${t('お客様ごとの期限と報告', 'Deadlines and reports per customer')}</h2>${perCustomer}`, status);
  };
  app.get('/console/breaches/:breachId', { schema: { hide: true } }, async (req, reply) => breachPage(req, reply, operator(req, 'admin', 'operator', 'support')));

  consoleForm(app, deps, '/console/breaches/:breachId/details', {
    form: () => 'details',
    roles: ['admin', 'operator'],
    schema: detailsBody,
    input: (f) => ({ status: str(f, 'status'), unauthorisedPurpose: checked(f, 'unauthorisedPurpose'), cause: str(f, 'cause') ?? '', secondaryDamage: str(f, 'secondaryDamage') ?? '', countermeasures: str(f, 'countermeasures') ?? '', contact: str(f, 'contact') ?? '' }),
    run: async (d, p, req) => {
      const id = uuidParam(req, 'breachId');
      await updateBreach(ctx.db, ctx.clock, actorOf(p), id, d);
      return `/console/breaches/${id}?done=saved`;
    },
    page: breachPage,
  });

  consoleForm(app, deps, '/console/breaches/:breachId/customers', {
    form: (req) => `customer-${str((req.body ?? {}) as FormData, 'customerId') ?? ''}`,
    roles: ['admin', 'operator'],
    schema: customerBody,
    input: (f) => ({
      customerId: str(f, 'customerId') ?? '',
      dataItems: (str(f, 'dataItems') ?? '').split(/\r?\n/).map((s) => s.trim()).filter(Boolean),
      peopleCount: intOrNull(str(f, 'peopleCount')),
      peopleEstimated: checked(f, 'peopleEstimated'),
      sensitive: checked(f, 'sensitive'),
      financialRisk: checked(f, 'financialRisk'),
      advancedMeasures: checked(f, 'advancedMeasures'),
      protectionNote: str(f, 'protectionNote') ?? '',
    }),
    run: async (d, p, req) => {
      const id = uuidParam(req, 'breachId');
      const b = await getBreach(ctx.db, ctx.clock, id);
      if (!b.customers.some((c) => c.customerId === d.customerId)) throw errors.invalidField('customerId', 'この漏えい等の対象のお客様ではありません。', 'is not a customer affected by this breach');
      await updateBreach(ctx.db, ctx.clock, actorOf(p), id, { customers: [d] });
      return `/console/breaches/${id}?done=saved`;
    },
    page: breachPage,
  });

  consoleForm(app, deps, '/console/breaches/:breachId/notices', {
    form: (req) => `notice-${str((req.body ?? {}) as FormData, 'customerId') ?? ''}`,
    roles: ['admin', 'operator'],
    schema: noticeBody,
    input: (f) => ({ customerId: str(f, 'customerId') ?? '', stage: str(f, 'stage'), at: jstInstant(str(f, 'at')) }),
    run: async (d, p, req) => {
      const id = uuidParam(req, 'breachId');
      await recordBreachNotice(ctx.db, ctx.clock, actorOf(p), id, { customerId: d.customerId, stage: d.stage, ...(d.at ? { at: new Date(d.at) } : {}) });
      return `/console/breaches/${id}?done=saved`;
    },
    page: breachPage,
  });
}
