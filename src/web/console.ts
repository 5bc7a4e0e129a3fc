import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  contractView,
  extendTerm,
  fileTerminationNotice,
  findContract,
  issueBreachNotice,
  listBreachNotices,
  listContracts,
  listTerminationNotices,
  recordBreachCured,
  resumeContract,
  setLinkedContractEnd,
  setMonthlyFee,
  suspendContract,
  terminateForBreach,
  terminateImmediately,
} from '../contracts/contracts.js';
import { listCustomers, type CustomerView } from '../contracts/customers.js';
import { breachNoticeBody, extendTermBody, feeBody, linkedEndBody, noteBody, suspendBody, terminateBody, terminationNoticeBody } from '../contracts/routes.js';
import { END_REASONS, IMMEDIATE_GROUNDS, SUSPENSION_REASONS, SUSPENSION_REASON_CODES } from '../contracts/vocabulary.js';
import { listAudit } from '../core/audit/audit-log.js';
import { actorOf, hasOperatorRole, requireOperatorRole, type OperatorRole } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import { addDays, japanDateOf, startOfJapanDay } from '../core/japan-time.js';
import { gatewayStatistics } from '../gateway/events.js';
import { listGatewayEvents, listMisuseFlags } from '../gateway/records.js';
import { assessIncident, getIncident, LIABILITY_EXCLUSIONS, LIABILITY_EXCLUSION_CODES, listIncidents, MILESTONES, openIncident, recordMilestone } from '../incidents/incidents.js';
import { assessmentBody, milestoneBody, openIncidentBody } from '../incidents/incident-routes.js';
import { emergencyStopBody, plannedStopBody, stopNoteBody } from '../incidents/routes.js';
import { cancelPlannedStop, EMERGENCY_CAUSES, EMERGENCY_CAUSE_CODES, endStop, listStops, PLANNED_REASONS, PLANNED_REASON_CODES, schedulePlannedStop, startEmergencyStop, stopView } from '../incidents/stops.js';
import { horizontalBars, stackedBars } from './charts.js';
import { html, type Html } from './html.js';
import { fmtDate, fmtTime, type T } from './i18n.js';
import { checked, checkCsrf, field, form, jstInstant, list, refusalState, requireHuman, seeOther, str, toJstLocal, validate, type FormData, type FormState, type Human, type WebDeps } from './kit.js';
import type { NavItem } from './layout.js';
import { consoleMoreNav } from './nav-more.js';
import { contractFacts, incidentTable } from './portal.js';
import { actionButton, doneNote, pageContext, shell, type PageContext } from './shell.js';

type Operator = Extract<Human, { kind: 'operator' }>;
type PageFn = (req: FastifyRequest, reply: FastifyReply, p: Operator, state?: FormState, status?: number) => Promise<FastifyReply>;

const DONE = (t: T): Record<string, string> => ({ saved: t('記録しました。', 'Saved.') });

export function nav(pc: PageContext): NavItem[] {
  const { t } = pc;
  return [
    { href: '/console', label: t('概要', 'Overview') },
    { href: '/console/customers', label: t('お客様と契約', 'Customers and contracts') },
    { href: '/console/incidents', label: t('障害', 'Incidents') },
    { href: '/console/stops', label: t('計画停止・緊急停止', 'Stops') },
    { href: '/console/monitors', label: t('監視', 'Monitors') },
    { href: '/console/hardware', label: t('ハードウェア', 'Hardware') },
    { href: '/console/rounds', label: t('目視巡回', 'Visual rounds') },
    { href: '/console/components', label: t('公開コンポーネント', 'Status components') },
    { href: '/console/webhooks', label: t('Webhook', 'Webhooks') },
    { href: '/console/backups', label: t('バックアップ', 'Backups') },
    { href: '/console/gateway', label: t('IDS・海外・不正利用', 'IDS, abroad, misuse') },
    { href: '/console/audit', label: t('監査ログ', 'Audit log') },
    ...consoleMoreNav(pc),
  ];
}

const customerName = (customers: CustomerView[], id: string | null) => (id ? customers.find((c) => c.id === id)?.name ?? id : '—');
const labelOptions = (labels: Record<string, { ja: string; en: string }>, locale: Locale) => Object.entries(labels).map(([value, l]) => ({ value, label: l[locale] }));

export function registerConsole(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const operator = (req: FastifyRequest, ...roles: OperatorRole[]): Operator => {
    const p = requireHuman(req, 'console') as Operator;
    if (roles.length) requireOperatorRole(p, ...roles);
    return p;
  };
  const pcOf = (req: FastifyRequest, reply: FastifyReply, p: Operator) => pageContext(deps, req, reply, p);
  const page = (reply: FastifyReply, pc: PageContext, title: string, path: string, body: Html, status = 200, head?: Html) =>
    shell(reply, pc, { face: 'console', nav: nav(pc), title, path, body, status, ...(head ? { head } : {}) });

  /**
   * One form POST: CSRF, role, the API's zod schema, the domain function; a refusal re-renders the
   * page with the messages next to the fields, success redirects (POST → redirect → GET).
   */
  function action<S extends z.ZodType>(
    path: string,
    opts: { form: (req: FastifyRequest) => string; roles: OperatorRole[]; schema: S; input: (f: FormData) => unknown; run: (data: z.output<S>, p: Operator, req: FastifyRequest) => Promise<unknown>; page: PageFn; redirect: (req: FastifyRequest) => string; status?: boolean },
  ): void {
    app.post(path, { schema: { hide: true } }, async (req, reply) => {
      const p = operator(req);
      const f = (req.body ?? {}) as FormData;
      checkCsrf(deps.csrf, req, f);
      requireOperatorRole(p, ...opts.roles);
      const locale = pcOf(req, reply, p).locale;
      const formId = opts.form(req);
      const parsed = validate(opts.schema, opts.input(f), locale);
      if (!parsed.ok) return opts.page(req, reply, p, { form: formId, values: f, errors: parsed.errors }, 400);
      try {
        await opts.run(parsed.data, p, req);
      } catch (err) {
        if (err instanceof HokanError && err.httpStatus < 500 && err.code !== 'not_found') return opts.page(req, reply, p, refusalState(formId, f, err, locale), err.httpStatus);
        throw err;
      }
      if (opts.status) deps.statusChanged();
      return seeOther(reply, opts.redirect(req));
    });
  }
  const param = (req: FastifyRequest, name: string): string => {
    const v = (req.params as Record<string, string>)[name] ?? '';
    if (!z.uuid().safeParse(v).success) throw errors.notFound('ID', v);
    return v;
  };

  // ---- overview ---------------------------------------------------------------------------
  app.get('/console', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const now = ctx.clock.now();
    const incidents = (await listIncidents(ctx.db, ctx.clock)).filter((i) => !i.times.recovered);
    const stops = (await listStops(ctx.db)).map((s) => stopView(s, now)).filter((s) => s.state === 'in_progress' || s.state === 'scheduled');
    const contracts = await listContracts(ctx.db);
    const by = (s: string) => contracts.filter((c) => c.status === s).length;
    return page(reply, pc, t('概要', 'Overview'), '/console', html`
<section class="panel"><h2>${t('対応中の障害', 'Open incidents')}</h2>${incidents.length ? html`<ul>${incidents.map((i) => html`<li><a href="/console/incidents/${i.id}">${i.title}</a> · ${fmtTime(i.times.occurred, locale)} · ${t('経過', 'elapsed')} ${i.sla.restoration.hours} ${t('時間', 'h')}${i.sla.restoration.alertsDue.length ? html` · <strong>${t('24時間目標に注意', '24 h target at risk')}</strong>` : ''}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}</section>
<section class="panel"><h2>${t('停止（実施中・予定）', 'Stops (now and scheduled)')}</h2>${stops.length ? html`<ul>${stops.map((s) => html`<li>${s.kind === 'planned' ? t('計画停止', 'planned') : t('緊急停止', 'emergency')} · ${s.reasonLabel[locale]} · ${fmtTime(s.startsAt, locale)} · ${s.state}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}</section>
<section class="panel"><h2>${t('契約', 'Contracts')}</h2><p>${t('有効', 'active')} ${by('active')} · ${t('利用停止中', 'suspended')} ${by('suspended')} · ${t('終了', 'ended')} ${by('ended')}</p></section>`);
  });

  // ---- customers and contracts with every lifecycle action --------------------------------
  app.get('/console/customers', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const customers = await listCustomers(ctx.db);
    const contracts = await listContracts(ctx.db);
    return page(reply, pc, t('お客様と契約', 'Customers and contracts'), '/console/customers', html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('契約', 'Contract')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('期間', 'Term')}</th></tr></thead>
<tbody>${customers.map((c) => {
  const mine = contracts.filter((k) => k.customer_id === c.id);
  return html`<tr><td>${c.name}<br><span class="muted">${c.code}</span></td><td>${mine.map((k) => html`<a href="/console/contracts/${k.id}">${k.contract_number}</a><br>`)}</td><td>${mine.map((k) => html`${contractView(k, p).statusLabel[locale]}<br>`)}</td><td>${mine.map((k) => html`${k.term_start} – ${k.term_end}<br>`)}</td></tr>`;
})}</tbody></table></div>`);
  });

  const contractPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const id = param(req, 'contractId');
    const row = await findContract(ctx.db, id);
    if (!row) throw errors.notFound('契約 / contract', id);
    const v = contractView(row, p);
    const customers = await listCustomers(ctx.db);
    const breaches = await listBreachNotices(ctx.db, id);
    const notices = await listTerminationNotices(ctx.db, id);
    const history = await listAudit(ctx.db, { subjectType: 'contract', subjectId: id, limit: 200 });
    const base = `/console/contracts/${id}`;
    const f = (name: string) => `${name}-${id}`;
    const noteField = (formId: string, label = t('理由・備考（記録されます）', 'Reason / note (recorded)')) => field(formId, { name: 'note', label, type: 'textarea', required: true }, state);
    const open = (formId: string) => (state?.form === formId ? html` open` : '');
    const ended = v.status === 'ended';
    const isOp = hasOperatorRole(p, 'admin', 'operator');
    const body = html`${doneNote(req, DONE(t))}
<p>${customerName(customers, v.customerId)}</p>
<section class="panel">${contractFacts(v, pc)}</section>
${!ended && isOp ? html`<h2>${t('契約の操作', 'Lifecycle actions')}</h2>
${v.status === 'active' ? html`<details class="action"${open(f('suspend'))}><summary>${t('利用停止（第11条）', 'Suspend (Art. 11)')}</summary>${form({ id: f('suspend'), action: `${base}/suspend`, csrf: pc.csrf, submit: t('利用を停止する', 'Suspend'), danger: true, state, locale, fields: html`${field(f('suspend'), { name: 'reason', label: t('事由', 'Ground'), type: 'select', options: labelOptions(SUSPENSION_REASONS, locale) }, state)}${noteField(f('suspend'))}<p class="hint">${t('データは保持されます。', 'The data is kept.')}</p>` })}</details>` : ''}
${v.status === 'suspended' ? html`<details class="action"${open(f('resume'))}><summary>${t('利用停止の解除', 'Lift the suspension')}</summary>${form({ id: f('resume'), action: `${base}/resume`, csrf: pc.csrf, submit: t('解除する', 'Resume'), state, locale, fields: noteField(f('resume')) })}</details>` : ''}
<details class="action"${open(f('breach'))}><summary>${t('違反の催告（第22条第1項）', 'Breach notice (Art. 22.1)')}</summary>${form({ id: f('breach'), action: `${base}/breach-notices`, csrf: pc.csrf, submit: t('催告を記録する', 'Record the notice'), state, locale, fields: html`${field(f('breach'), { name: 'description', label: t('違反の内容', 'The breach'), type: 'textarea', required: true }, state)}${field(f('breach'), { name: 'cureDeadline', label: t('是正期限（日本時間）', 'Cure deadline (Japan time)'), type: 'datetime-local', required: true }, state)}` })}</details>
<details class="action"${open(f('terminate'))}><summary>${t('契約の解除（管理者）', 'Terminate (admin)')}</summary>${form({ id: f('terminate'), action: `${base}/terminate`, csrf: pc.csrf, submit: t('契約を解除する', 'Terminate'), danger: true, state, locale, fields: html`
${field(f('terminate'), { name: 'ground', label: t('解除の根拠', 'Ground'), type: 'select', options: [...breaches.filter((b) => !b.curedAt).map((b) => ({ value: `breach:${b.id}`, label: t(`是正されない違反（期限 ${fmtTime(b.cureDeadline, 'ja')}）`, `uncured breach (deadline ${fmtTime(b.cureDeadline, 'en')})`) })), ...IMMEDIATE_GROUNDS.map((g) => ({ value: g, label: END_REASONS[g][locale] }))] }, state)}
${noteField(f('terminate'))}` })}</details>
<details class="action"${open(f('term'))}><summary>${t('契約期間の延長（第21条）', 'Extend the term (Art. 21)')}</summary>${form({ id: f('term'), action: `${base}/term`, csrf: pc.csrf, submit: t('延長する', 'Extend'), state, locale, fields: html`${field(f('term'), { name: 'termEnd', label: t('新しい終了日', 'New end date'), type: 'date', value: v.term.end, required: true }, state)}${noteField(f('term'))}` })}</details>
${(['system-use', 'support'] as const).map((k) => html`<details class="action"${open(f(`linked-${k}`))}><summary>${k === 'system-use' ? t('システム利用契約の終了日（第22条第4項）', 'End of the system-use contract (Art. 22.4)') : t('サポート契約の終了日（第22条第4項）', 'End of the support contract (Art. 22.4)')}</summary>${form({ id: f(`linked-${k}`), action: `${base}/linked/${k}`, csrf: pc.csrf, submit: t('記録する', 'Record'), state, locale, fields: html`${field(f(`linked-${k}`), { name: 'endDate', label: t('終了日（空欄で取消）', 'End date (empty to clear)'), type: 'date', value: (k === 'system-use' ? v.linkedContracts.systemUse.endDate : v.linkedContracts.support.endDate) ?? '' }, state)}${noteField(f(`linked-${k}`))}` })}</details>`)}
<details class="action"${open(f('notice'))}><summary>${t('お客様の書面による解約通知を記録（第22条第3項）', "Record the customer's written termination notice (Art. 22.3)")}</summary>${form({ id: f('notice'), action: `${base}/termination-notice`, csrf: pc.csrf, submit: t('記録する', 'Record'), state, locale, fields: html`${field(f('notice'), { name: 'endDate', label: t('終了日（空欄なら最も早い日）', 'End date (empty: the earliest)'), type: 'date' }, state)}${field(f('notice'), { name: 'note', label: t('備考', 'Note'), type: 'textarea' }, state)}` })}</details>` : ''}
${!ended && hasOperatorRole(p, 'billing') ? html`<details class="action"${open(f('fee'))}><summary>${t('月額利用料金（請求担当）', 'Monthly fee (billing)')}</summary>${form({ id: f('fee'), action: `${base}/fee`, csrf: pc.csrf, submit: t('設定する', 'Set'), state, locale, fields: html`${field(f('fee'), { name: 'monthlyFeeYen', label: t('月額（円）', 'Monthly (yen)'), type: 'number', inputmode: 'numeric', value: v.monthlyFeeYen === null || v.monthlyFeeYen === undefined ? '' : String(v.monthlyFeeYen), required: true }, state)}${noteField(f('fee'))}` })}</details>` : ''}
<h2>${t('違反の催告', 'Breach notices')}</h2>
${breaches.length ? html`<ul>${breaches.map((b) => html`<li>${fmtTime(b.issuedAt, locale)} · ${b.description} · ${t('期限', 'deadline')} ${fmtTime(b.cureDeadline, locale)} · ${b.curedAt ? html`${t('是正済み', 'cured')} ${fmtTime(b.curedAt, locale)}` : !ended && isOp ? html`<details class="action"${open(f(`cure-${b.id}`))}><summary>${t('是正を記録', 'Record the cure')}</summary>${form({ id: f(`cure-${b.id}`), action: `${base}/breach-notices/${b.id}/cure`, csrf: pc.csrf, submit: t('記録する', 'Record'), state, locale, fields: noteField(f(`cure-${b.id}`)) })}</details>` : t('未是正', 'not cured')}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}
<h2>${t('解約通知', 'Termination notices')}</h2>
${notices.length ? html`<ul>${notices.map((n) => html`<li>${fmtTime(n.receivedAt, locale)} · ${t('終了日', 'ends')} ${fmtDate(n.endDate, locale)}${n.note ? html` · ${n.note}` : ''}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}
<h2>${t('履歴', 'History')}</h2>
<div class="table-wrap"><table><thead><tr><th scope="col">${t('日時', 'When')}</th><th scope="col">${t('操作', 'Action')}</th><th scope="col">${t('実行者', 'By')}</th><th scope="col">${t('理由', 'Reason')}</th></tr></thead><tbody>${history.map((e) => html`<tr><td>${fmtTime(e.at, locale)}</td><td>${e.action}</td><td>${e.actor.label}</td><td>${e.reason ?? ''}</td></tr>`)}</tbody></table></div>`;
    return page(reply, pc, `${t('契約', 'Contract')} ${v.contractNumber}`, '/console/customers', body, status);
  };
  app.get('/console/contracts/:contractId', { schema: { hide: true } }, async (req, reply) => contractPage(req, reply, operator(req)));
  const cid = (req: FastifyRequest) => param(req, 'contractId');
  const back = (req: FastifyRequest) => `/console/contracts/${cid(req)}?done=saved`;
  const ops: OperatorRole[] = ['admin', 'operator'];
  const noteInput = (f: FormData) => ({ note: str(f, 'note') ?? '' });
  action('/console/contracts/:contractId/suspend', { form: (r) => `suspend-${cid(r)}`, roles: ops, schema: suspendBody, input: (f) => ({ reason: str(f, 'reason') ?? '', note: str(f, 'note') ?? '' }), run: (d, p, r) => suspendContract(ctx.db, ctx.clock, actorOf(p), cid(r), d), page: contractPage, redirect: back });
  action('/console/contracts/:contractId/resume', { form: (r) => `resume-${cid(r)}`, roles: ops, schema: noteBody, input: noteInput, run: (d, p, r) => resumeContract(ctx.db, ctx.clock, actorOf(p), cid(r), d), page: contractPage, redirect: back });
  action('/console/contracts/:contractId/breach-notices', { form: (r) => `breach-${cid(r)}`, roles: ops, schema: breachNoticeBody, input: (f) => ({ description: str(f, 'description') ?? '', cureDeadline: jstInstant(str(f, 'cureDeadline')) ?? '' }), run: (d, p, r) => issueBreachNotice(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, cid(r), { description: d.description, cureDeadline: new Date(d.cureDeadline) }), page: contractPage, redirect: back });
  action('/console/contracts/:contractId/breach-notices/:noticeId/cure', { form: (r) => `cure-${param(r, 'noticeId')}-${cid(r)}`, roles: ops, schema: noteBody, input: noteInput, run: (d, p, r) => recordBreachCured(ctx.db, ctx.clock, actorOf(p), cid(r), param(r, 'noticeId'), d), page: contractPage, redirect: back });
  action('/console/contracts/:contractId/terminate', {
    form: (r) => `terminate-${cid(r)}`,
    roles: ['admin'],
    schema: terminateBody,
    input: (f) => {
      const g = str(f, 'ground') ?? '';
      return g.startsWith('breach:') ? { kind: 'breach', breachNoticeId: g.slice(7), note: str(f, 'note') ?? '' } : { kind: 'immediate', ground: g, note: str(f, 'note') ?? '' };
    },
    run: (d, p, r) => (d.kind === 'breach' ? terminateForBreach(ctx.db, ctx.clock, actorOf(p), cid(r), { breachNoticeId: d.breachNoticeId, note: d.note }) : terminateImmediately(ctx.db, ctx.clock, actorOf(p), cid(r), { ground: d.ground, note: d.note })),
    page: contractPage,
    redirect: back,
  });
  action('/console/contracts/:contractId/term', { form: (r) => `term-${cid(r)}`, roles: ops, schema: extendTermBody, input: (f) => ({ termEnd: str(f, 'termEnd') ?? '', note: str(f, 'note') ?? '' }), run: (d, p, r) => extendTerm(ctx.db, ctx.clock, actorOf(p), cid(r), d), page: contractPage, redirect: back });
  for (const k of ['system-use', 'support'] as const) {
    action(`/console/contracts/:contractId/linked/${k}`, { form: (r) => `linked-${k}-${cid(r)}`, roles: ops, schema: linkedEndBody, input: (f) => ({ endDate: str(f, 'endDate') ?? null, note: str(f, 'note') ?? '' }), run: (d, p, r) => setLinkedContractEnd(ctx.db, ctx.clock, actorOf(p), cid(r), { linked: k === 'system-use' ? 'system_use' : 'support', ...d }), page: contractPage, redirect: back });
  }
  action('/console/contracts/:contractId/termination-notice', {
    form: (r) => `notice-${cid(r)}`,
    roles: ops,
    schema: terminationNoticeBody,
    input: (f) => ({ endDate: str(f, 'endDate'), note: str(f, 'note') ?? '' }),
    run: async (d, p, r) => {
      const row = await findContract(ctx.db, cid(r));
      if (row && d.endDate !== undefined && d.endDate > row.term_end) throw errors.invalidField('endDate', `契約期間の終了日（${row.term_end}）より後の日付は指定できません。`, `must not be after the end of the term (${row.term_end})`);
      return fileTerminationNotice(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, cid(r), { endDate: d.endDate, note: d.note });
    },
    page: contractPage,
    redirect: back,
  });
  action('/console/contracts/:contractId/fee', { form: (r) => `fee-${cid(r)}`, roles: ['billing'], schema: feeBody, input: (f) => ({ monthlyFeeYen: str(f, 'monthlyFeeYen') === undefined ? undefined : Number(str(f, 'monthlyFeeYen')), note: str(f, 'note') ?? '' }), run: (d, p, r) => setMonthlyFee(ctx.db, ctx.clock, actorOf(p), cid(r), d), page: contractPage, redirect: back });

  // ---- incidents (R8.1, R8.3, R20) ----------------------------------------------------------
  const incidentsPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const incidents = await listIncidents(ctx.db, ctx.clock);
    const customers = await listCustomers(ctx.db);
    const canWrite = hasOperatorRole(p, 'admin', 'operator');
    return page(reply, pc, t('障害', 'Incidents'), '/console/incidents', html`${doneNote(req, DONE(t))}
${canWrite ? html`<details class="action"${state?.form === 'open-incident' ? html` open` : ''}><summary>${t('障害を登録する', 'Open an incident')}</summary>
${form({ id: 'open-incident', action: '/console/incidents', csrf: pc.csrf, submit: t('登録する', 'Open'), state, locale, fields: html`
${field('open-incident', { name: 'title', label: t('件名（ステータスページに表示されます）', 'Title (shown on the status page)'), required: true }, state)}
${field('open-incident', { name: 'severity', label: t('重大度', 'Severity'), type: 'select', options: [{ value: 'critical', label: t('重大（全面停止）', 'critical (outage)') }, { value: 'major', label: t('重要', 'major') }, { value: 'minor', label: t('軽微', 'minor') }] }, state)}
${field('open-incident', { name: 'cause', label: t('原因（第7条第3項）', 'Cause (Art. 7.3)'), type: 'select', options: [{ value: '', label: t('未定', 'not known yet') }, ...labelOptions(EMERGENCY_CAUSES, locale)] }, state)}
${field('open-incident', { name: 'occurredAt', label: t('発生日時（日本時間）', 'Occurred at (Japan time)'), type: 'datetime-local', value: toJstLocal(ctx.clock.now()), required: true }, state)}
${field('open-incident', { name: 'detectedAt', label: t('検知日時（空欄なら今）', 'Detected at (empty: now)'), type: 'datetime-local' }, state)}
${field('open-incident', { name: 'customerIds', label: t('対象のお客様（選ばなければ全員）', 'Customers affected (none selected: all)'), type: 'select-multiple', options: customers.map((c) => ({ value: c.id, label: c.name })) }, state)}
${field('open-incident', { name: 'entirelyUnusable', label: t('サービスが全く利用できない', 'The service is entirely unusable'), type: 'checkbox' }, state)}` })}</details>` : ''}
${incidentTable(incidents, pc, (i) => `/console/incidents/${i.id}`)}`, status);
  };
  app.get('/console/incidents', { schema: { hide: true } }, async (req, reply) => incidentsPage(req, reply, operator(req)));
  action('/console/incidents', {
    form: () => 'open-incident',
    roles: ops,
    schema: openIncidentBody,
    status: true,
    input: (f) => {
      const ids = list(f, 'customerIds');
      return { title: str(f, 'title') ?? '', severity: str(f, 'severity') ?? '', cause: str(f, 'cause') ?? null, occurredAt: jstInstant(str(f, 'occurredAt')) ?? '', detectedAt: jstInstant(str(f, 'detectedAt')), ...(ids.length ? { customerIds: ids } : {}), entirelyUnusable: checked(f, 'entirelyUnusable') };
    },
    run: (b, p) =>
      openIncident(ctx.db, ctx.clock, actorOf(p), { title: b.title, severity: b.severity, cause: b.cause ?? null, occurredAt: new Date(b.occurredAt), ...(b.detectedAt ? { detectedAt: new Date(b.detectedAt) } : {}), ...(b.customerIds ? { customerIds: b.customerIds } : {}), ...(b.entirelyUnusable !== undefined ? { entirelyUnusable: b.entirelyUnusable } : {}) }),
    page: incidentsPage,
    redirect: () => '/console/incidents?done=saved',
  });

  const MILESTONE_LABEL = { first_notice: ['第一報（発生の通知）', 'First notice (that it occurred)'], recovered: ['復旧', 'Recovered'], recovery_notice: ['復旧の通知', 'Recovery notice'], report: ['詳細報告の公開', 'Detailed report published'] } as const;
  const incidentPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const i = await getIncident(ctx.db, ctx.clock, param(req, 'incidentId'));
    const base = `/console/incidents/${i.id}`;
    const times = { first_notice: i.times.firstNotice, recovered: i.times.recovered, recovery_notice: i.times.recoveryNotice, report: i.times.report };
    const remaining = MILESTONES.filter((m) => !times[m]);
    return page(reply, pc, i.title, '/console/incidents', html`${doneNote(req, DONE(t))}
${incidentTable([i], pc)}
<p><a href="${base}/notices">${t('お知らせ（第一報・続報・復旧報・報告書）を掲載する', 'Post notices (first, update, recovery, report)')}</a></p>
<dl class="facts">
<dt>${t('原因', 'Cause')}</dt><dd>${i.causeLabel ? i.causeLabel[locale] : t('未定', 'not known')}</dd>
${MILESTONES.map((m) => html`<dt>${t(MILESTONE_LABEL[m][0], MILESTONE_LABEL[m][1])}</dt><dd>${fmtTime(times[m], locale)}</dd>`)}
</dl>
${remaining.length && hasOperatorRole(p, 'admin', 'operator') ? html`<h2>${t('経過を記録する（第8条）', 'Record a milestone (Art. 8)')}</h2>${form({ id: 'milestone', action: `${base}/milestones`, csrf: pc.csrf, submit: t('記録する', 'Record'), state, locale, fields: html`
${field('milestone', { name: 'milestone', label: t('段階', 'Milestone'), type: 'select', options: remaining.map((m) => ({ value: m, label: t(MILESTONE_LABEL[m][0], MILESTONE_LABEL[m][1]) })) }, state)}
${field('milestone', { name: 'at', label: t('日時（空欄なら今）', 'When (empty: now)'), type: 'datetime-local' }, state)}` })}` : ''}
${hasOperatorRole(p, 'admin') ? html`<h2>${t('賠償責任の評価（第20条）', 'Liability assessment (Art. 20)')}</h2>${form({ id: 'assess', action: `${base}/assessment`, csrf: pc.csrf, submit: t('評価を記録する', 'Record the assessment'), state, locale, fields: html`
${field('assess', { name: 'entirelyUnusable', label: t('サービスが全く利用できなかった', 'The service was entirely unusable'), type: 'checkbox' }, state)}
${field('assess', { name: 'providerFault', label: t('弊社の責に帰すべき事由による', "Caused by the provider's fault"), type: 'checkbox', value: 'on' }, state)}
${field('assess', { name: 'exclusion', label: t('免責事由（第20条第2項）', 'Exclusion (Art. 20.2)'), type: 'select', options: [{ value: '', label: t('なし', 'none') }, ...LIABILITY_EXCLUSION_CODES.map((c) => ({ value: c, label: LIABILITY_EXCLUSIONS[c][locale] }))] }, state)}
${field('assess', { name: 'note', label: t('判断の理由（記録されます）', 'Reasoning (recorded)'), type: 'textarea', required: true }, state)}` })}` : ''}`, status);
  };
  app.get('/console/incidents/:incidentId', { schema: { hide: true } }, async (req, reply) => incidentPage(req, reply, operator(req)));
  const iid = (req: FastifyRequest) => param(req, 'incidentId');
  action('/console/incidents/:incidentId/milestones', { form: () => 'milestone', roles: ops, status: true, schema: milestoneBody, input: (f) => ({ milestone: str(f, 'milestone') ?? '', at: jstInstant(str(f, 'at')) }), run: (d, p, r) => recordMilestone(ctx.db, ctx.clock, actorOf(p), iid(r), d.milestone, d.at ? new Date(d.at) : undefined), page: incidentPage, redirect: (r) => `/console/incidents/${iid(r)}?done=saved` });
  action('/console/incidents/:incidentId/assessment', { form: () => 'assess', roles: ['admin'], schema: assessmentBody, input: (f) => ({ entirelyUnusable: checked(f, 'entirelyUnusable'), providerFault: checked(f, 'providerFault'), exclusion: str(f, 'exclusion') ?? null, note: str(f, 'note') ?? '' }), run: (d, p, r) => assessIncident(ctx.db, ctx.clock, actorOf(p), iid(r), d), page: incidentPage, redirect: (r) => `/console/incidents/${iid(r)}?done=saved` });

  // ---- planned and emergency stops (R7.2–R7.4) -----------------------------------------------
  const stopsPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const now = ctx.clock.now();
    const stops = (await listStops(ctx.db)).map((s) => stopView(s, now));
    const customers = await listCustomers(ctx.db);
    const canWrite = hasOperatorRole(p, 'admin', 'operator');
    const custField = (formId: string) => field(formId, { name: 'customerIds', label: t('対象のお客様（選ばなければ全員）', 'Customers (none selected: all)'), type: 'select-multiple', options: customers.map((c) => ({ value: c.id, label: c.name })) }, state);
    const lead = ctx.config.plannedStopLeadDays;
    return page(reply, pc, t('計画停止・緊急停止', 'Planned and emergency stops'), '/console/stops', html`${doneNote(req, DONE(t))}
<div class="table-wrap"><table><thead><tr><th scope="col">${t('種類', 'Kind')}</th><th scope="col">${t('理由', 'Reason')}</th><th scope="col">${t('期間', 'Period')}</th><th scope="col">${t('対象', 'Scope')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('操作', 'Actions')}</th></tr></thead>
<tbody>${stops.map((s) => html`<tr><td>${s.kind === 'planned' ? t('計画停止', 'planned') : t('緊急停止', 'emergency')}</td><td>${s.reasonLabel[locale]}<br>${s.description}${s.overrideReason ? html`<br><span class="muted">${t('通知期間短縮の理由', 'Short-notice reason')}: ${s.overrideReason}</span>` : ''}</td><td>${fmtTime(s.startsAt, locale)} – ${s.endsAt ? fmtTime(s.endsAt, locale) : t('未定', 'open')}</td><td>${s.scope.allCustomers ? t('全員', 'all') : s.scope.customerIds.map((c) => customerName(customers, c)).join('、')}</td><td>${s.state}</td>
<td>${canWrite && s.state === 'in_progress' ? actionButton(pc, `/console/stops/${s.id}/end`, t('終了する', 'End now'), { note: t('コンソールから終了', 'ended from the console') }) : ''}${canWrite && s.state === 'scheduled' ? actionButton(pc, `/console/stops/${s.id}/cancel`, t('取り消す', 'Cancel'), { note: t('コンソールから取消', 'cancelled from the console') }, true) : ''}</td></tr>`)}</tbody></table></div>
${canWrite ? html`<details class="action"${state?.form === 'planned' ? html` open` : ''}><summary>${t('計画停止を予定する（第7条第2項）', 'Schedule a planned stop (Art. 7.2)')}</summary>
${form({ id: 'planned', action: '/console/stops/planned', csrf: pc.csrf, submit: t('予定する', 'Schedule'), state, locale, fields: html`
${field('planned', { name: 'reason', label: t('理由', 'Reason'), type: 'select', options: labelOptions(PLANNED_REASONS, locale) }, state)}
${field('planned', { name: 'description', label: t('お客様への説明', 'Description for customers'), type: 'textarea', required: true }, state)}
${field('planned', { name: 'startsAt', label: t('開始（日本時間）', 'Starts (Japan time)'), type: 'datetime-local', required: true, hint: t(`通知から開始まで${lead}日以上必要です。`, `At least ${lead} days' notice is required.`) }, state)}
${field('planned', { name: 'endsAt', label: t('終了（日本時間）', 'Ends (Japan time)'), type: 'datetime-local', required: true }, state)}
${custField('planned')}
${field('planned', { name: 'overrideReason', label: t('通知期間を短縮する理由（管理者のみ）', 'Reason for shorter notice (admins only)'), type: 'textarea', hint: t('空欄なら通常の通知期間が必要です。', 'Leave empty to require the normal notice period.') }, state)}` })}</details>
<details class="action"${state?.form === 'emergency' ? html` open` : ''}><summary>${t('緊急停止（第7条第3項）', 'Emergency stop (Art. 7.3)')}</summary>
${form({ id: 'emergency', action: '/console/stops/emergency', csrf: pc.csrf, submit: t('直ちに停止する', 'Stop now'), danger: true, state, locale, fields: html`
${field('emergency', { name: 'cause', label: t('原因', 'Cause'), type: 'select', options: labelOptions(EMERGENCY_CAUSES, locale) }, state)}
${field('emergency', { name: 'description', label: t('お客様への説明', 'Description for customers'), type: 'textarea', required: true }, state)}
${custField('emergency')}` })}</details>` : ''}`, status);
  };
  app.get('/console/stops', { schema: { hide: true } }, async (req, reply) => stopsPage(req, reply, operator(req)));
  action('/console/stops/planned', {
    form: () => 'planned',
    roles: ops,
    status: true,
    schema: plannedStopBody,
    input: (f) => {
      const ids = list(f, 'customerIds');
      const override = str(f, 'overrideReason');
      return { reason: str(f, 'reason') ?? '', description: str(f, 'description') ?? '', startsAt: jstInstant(str(f, 'startsAt')) ?? '', endsAt: jstInstant(str(f, 'endsAt')) ?? '', ...(ids.length ? { customerIds: ids } : {}), ...(override ? { override: { reason: override } } : {}) };
    },
    run: (b, p) => {
      if (b.override && !hasOperatorRole(p, 'admin')) throw errors.invalidField('overrideReason', '計画停止の通知期間の短縮は管理者のみが承認できます。', 'only an admin may shorten the notice of a planned stop');
      return schedulePlannedStop(ctx.db, ctx.clock, actorOf(p), { reason: b.reason, description: b.description, startsAt: new Date(b.startsAt), endsAt: new Date(b.endsAt), ...(b.customerIds ? { customerIds: b.customerIds } : {}), ...(b.override ? { override: b.override } : {}) }, { minLeadDays: ctx.config.plannedStopLeadDays });
    },
    page: stopsPage,
    redirect: () => '/console/stops?done=saved',
  });
  action('/console/stops/emergency', {
    form: () => 'emergency',
    roles: ops,
    status: true,
    schema: emergencyStopBody,
    input: (f) => {
      const ids = list(f, 'customerIds');
      return { cause: str(f, 'cause') ?? '', description: str(f, 'description') ?? '', ...(ids.length ? { customerIds: ids } : {}) };
    },
    run: (b, p) => startEmergencyStop(ctx.db, ctx.clock, actorOf(p), { cause: b.cause, description: b.description, ...(b.customerIds ? { customerIds: b.customerIds } : {}), ...(b.incidentId ? { incidentId: b.incidentId } : {}) }),
    page: stopsPage,
    redirect: () => '/console/stops?done=saved',
  });
  action('/console/stops/:stopId/end', { form: () => 'end', roles: ops, status: true, schema: stopNoteBody, input: (f) => ({ note: str(f, 'note') ?? '' }), run: (d, p, r) => endStop(ctx.db, ctx.clock, actorOf(p), param(r, 'stopId'), d), page: stopsPage, redirect: () => '/console/stops?done=saved' });
  action('/console/stops/:stopId/cancel', { form: () => 'cancel', roles: ops, status: true, schema: stopNoteBody, input: (f) => ({ note: str(f, 'note') ?? '' }), run: (d, p, r) => cancelPlannedStop(ctx.db, ctx.clock, actorOf(p), param(r, 'stopId'), d), page: stopsPage, redirect: () => '/console/stops?done=saved' });

  // The backups pages (R10.1–R10.4) are in console-backups.ts.

  // ---- IDS events and statistics, refusals from abroad, misuse flags (R4.1, R12.2, R11.1③) --
  app.get('/console/gateway', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, 'admin', 'operator', 'support');
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    await ctx.gateway?.events.flush();
    const today = japanDateOf(ctx.clock.now());
    const from = addDays(today, -29);
    const stats = await gatewayStatistics(ctx.db, { from: startOfJapanDay(from), to: startOfJapanDay(addDays(today, 1)) });
    const days = Array.from({ length: 30 }, (_, i) => addDays(from, i));
    const KINDS = [
      { kind: 'ids', name: t('IDS検知', 'IDS findings'), color: '#b00020' },
      { kind: 'abroad_refused', name: t('海外からの拒否', 'Refused from abroad'), color: '#1f4e99' },
      { kind: 'misuse', name: t('不正利用', 'Misuse'), color: '#8a5a00' },
      { kind: 'admission_rejected', name: t('混雑時の制限', 'Congestion refusals'), color: '#4a4a4a' },
    ];
    const series = KINDS.map((k) => ({ name: k.name, color: k.color, values: days.map((d) => stats.byDay.filter((x) => x.day === d && x.kind === k.kind).reduce((s, x) => s + x.count, 0)) }));
    const total = series.reduce((s, x) => s + x.values.reduce((a, b) => a + b, 0), 0);
    const idsByClass = new Map<string, number>();
    for (const r of stats.byKindAndClass.filter((r) => r.kind === 'ids')) idsByClass.set(r.class, (idsByClass.get(r.class) ?? 0) + r.count);
    const customers = await listCustomers(ctx.db);
    const abroad = await listGatewayEvents(ctx.db, { kind: 'abroad_refused', limit: 50 });
    const flags = await listMisuseFlags(ctx.db, { limit: 100 });
    return page(reply, pc, t('IDS・海外からの利用・不正利用', 'IDS, use from abroad, misuse'), '/console/gateway', html`
<h2>${t('過去30日間の記録', 'The last 30 days')}</h2>
${stackedBars(days, series, t(`日ごとの拒否・検知の件数（30日間で合計${total}件）`, `Refusals and findings per day (${total} in 30 days)`))}
<h2>${t('IDS: 分類ごとの件数', 'IDS findings by class')}</h2>
${idsByClass.size ? horizontalBars([...idsByClass].map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value), t('IDSの分類ごとの件数（30日間）', 'IDS findings by class (30 days)'), '#b00020') : html`<p>${t('ありません。', 'None.')}</p>`}
<h2>${t('海外からの利用の拒否（最新50件）', 'Refused from abroad (latest 50)')}</h2>
${abroad.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('日時', 'When')}</th><th scope="col">${t('国', 'Country')}</th><th scope="col">${t('送信元', 'Source')}</th><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('パス', 'Path')}</th></tr></thead><tbody>${abroad.map((e) => html`<tr><td>${fmtTime(e.at, locale)}</td><td>${e.country ?? '—'}</td><td>${e.sourceIp ?? '—'}</td><td>${customerName(customers, e.customerId)}</td><td>${e.method ?? ''} ${e.path ?? ''}</td></tr>`)}</tbody></table></div>` : html`<p>${t('ありません。', 'None.')}</p>`}
<h2>${t('不正利用の記録', 'Misuse flags')}</h2>
${flags.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('日時', 'When')}</th><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('種類', 'Kind')}</th><th scope="col">${t('対応', 'Action')}</th><th scope="col">${t('内容', 'Detail')}</th></tr></thead><tbody>${flags.map((f) => html`<tr><td>${fmtTime(f.createdAt, locale)}</td><td>${customerName(customers, f.customerId)}</td><td>${f.kind}</td><td>${f.action}</td><td>${f.detail}</td></tr>`)}</tbody></table></div>` : html`<p>${t('ありません。', 'None.')}</p>`}`);
  });

  // ---- the audit log ------------------------------------------------------------------------
  app.get('/console/audit', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, 'admin', 'support');
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const q = req.query as FormData;
    const after = Number(str(q, 'after') ?? '0');
    const entries = await listAudit(ctx.db, { afterSeq: Number.isSafeInteger(after) && after >= 0 ? after : 0, limit: 100 });
    const last = entries.at(-1);
    return page(reply, pc, t('監査ログ', 'Audit log'), '/console/audit', html`<p class="hint">${t('追記のみ・ハッシュ連鎖で改ざんを検出できます（hokan audit verify）。古い順に100件ずつ表示します。', 'Append-only and hash-chained: tampering is detected by hokan audit verify. Oldest first, 100 at a time.')}</p>
<div class="table-wrap"><table><thead><tr><th scope="col">#</th><th scope="col">${t('日時', 'When')}</th><th scope="col">${t('実行者', 'Actor')}</th><th scope="col">${t('操作', 'Action')}</th><th scope="col">${t('対象', 'Subject')}</th><th scope="col">${t('理由', 'Reason')}</th></tr></thead>
<tbody>${entries.map((e) => html`<tr><td>${e.seq}</td><td>${fmtTime(e.at, locale)}</td><td>${e.actor.label}</td><td>${e.action}</td><td>${e.subjectType} ${e.subjectId}</td><td>${e.reason ?? ''}</td></tr>`)}</tbody></table></div>
${entries.length === 100 && last ? html`<p><a href="/console/audit?after=${last.seq}">${t('次の100件', 'Next 100')}</a></p>` : ''}`);
  });
}
