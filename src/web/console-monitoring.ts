import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { listAudit } from '../core/audit/audit-log.js';
import { actorOf, hasOperatorRole, type OperatorRole } from '../core/auth/principal.js';
import type { Locale } from '../core/i18n.js';
import { instant } from '../http/route-kit.js';
import { listAlerts, METRIC_LABELS } from '../monitoring/hardware-alerts.js';
import { getHostRow, hostView, listHosts, registerHost, retireHost } from '../monitoring/hardware-hosts.js';
import { METRICS, type SampleMetric } from '../monitoring/hardware-metrics.js';
import { ruleBody } from '../monitoring/hardware-routes.js';
import { COMPARISONS, createRule, deleteRule, listRules, RULE_SEVERITIES } from '../monitoring/hardware-rules.js';
import { latestSample, querySeries } from '../monitoring/hardware-samples.js';
import { createMonitor, deleteMonitor, getMonitor, listMonitors, MONITOR_KINDS, monitorInput, monitorResults, updateMonitor, type MonitorKind, type MonitorView } from '../monitoring/monitors.js';
import { checklistBody, checklistItem } from '../monitoring/round-routes.js';
import { createChecklist, getChecklist, listChecklists, listRounds, recordRound, roundDueStates, type ChecklistView } from '../monitoring/rounds.js';
import { lineChart } from './charts-line.js';
import { consoleKit, fieldMessage, num, type Operator, type PageFn } from './console-kit.js';
import { html, type Html } from './html.js';
import { fmtTime, type T } from './i18n.js';
import { checked, field, form, jstInstant, list, str, type FormData, type FormState, type WebDeps } from './kit.js';
import { actionButton, doneNote, type PageContext } from './shell.js';

/*
 * R12.3 in the operator console: service monitors (②) with latency and state history, hardware
 * (①) with charts from the agents' samples, threshold rules and alerts, and the visual rounds (③).
 * Every write goes through the monitoring domain's functions (validation, audit entry).
 */

const KIND_LABEL: Record<MonitorKind, [string, string]> = {
  http: ['HTTP(S)', 'HTTP(S)'],
  tcp: ['TCPポート', 'TCP port'],
  dns: ['DNS', 'DNS'],
  tls: ['TLS証明書', 'TLS certificate'],
  heartbeat: ['ハートビート（定期ジョブ）', 'Heartbeat (periodic job)'],
  database: ['データベース', 'Database'],
  backup_freshness: ['バックアップの鮮度', 'Backup freshness'],
  offsite_lag: ['遠隔地コピーの遅れ', 'Remote-copy lag'],
};
const STATE_LABEL: Record<MonitorView['state'], [string, string]> = { up: ['正常', 'up'], down: ['停止', 'down'], unknown: ['未確認', 'unknown'] };
const DONE = (t: T): Record<string, string> => ({ saved: t('記録しました。', 'Saved.'), deleted: t('削除しました。', 'Deleted.') });
const WRITE: OperatorRole[] = ['admin', 'operator'];
const READ: OperatorRole[] = ['admin', 'operator', 'support'];

/** The monitor form's fields → the API's monitor input (empty fields → the schema's defaults). */
function monitorFormInput(f: FormData, fixedKind?: MonitorKind): unknown {
  const s = (n: string) => str(f, n);
  const kind = fixedKind ?? s('kind') ?? '';
  const common = {
    kind,
    name: s('name') ?? '',
    intervalSeconds: num(s('intervalSeconds')),
    timeoutMs: num(s('timeoutMs')),
    retries: num(s('retries')),
    severity: s('severity'),
    component: s('component') ?? '',
    enabled: checked(f, 'enabled'),
  };
  switch (kind) {
    case 'http':
      return { ...common, url: s('url') ?? '', method: s('method'), expectedStatus: s('expectedStatus') ? s('expectedStatus')!.split(/[\s,]+/).filter(Boolean).map(Number) : undefined, keyword: s('keyword') ?? null, maxLatencyMs: num(s('maxLatencyMs')) ?? null };
    case 'tcp':
      return { ...common, host: s('host') ?? '', port: num(s('port')) };
    case 'dns':
      return { ...common, hostname: s('hostname') ?? '', recordType: s('recordType'), server: s('server') ?? null, expectedAddress: s('expectedAddress') ?? null };
    case 'tls':
      return { ...common, host: s('host') ?? '', port: num(s('port')), servername: s('servername') ?? null, minDaysLeft: num(s('minDaysLeft')) };
    case 'heartbeat':
      return { ...common, graceSeconds: num(s('graceSeconds')) };
    case 'backup_freshness':
      return { ...common, maxAgeHours: num(s('maxAgeHours')) };
    case 'offsite_lag':
      return { ...common, maxLagHours: num(s('maxLagHours')) ?? null };
    default:
      return common;
  }
}

/** A monitor's definition as form values (the edit form starts from them). */
function monitorValues(m: MonitorView): Record<string, string> {
  const t = m.target as unknown as Record<string, unknown>;
  const v: Record<string, string> = { name: m.name, intervalSeconds: String(m.intervalSeconds), timeoutMs: String(m.timeoutMs), retries: String(m.retries), severity: m.severity, component: m.component };
  for (const [k, x] of Object.entries(t)) {
    if (k === 'kind' || x === null || x === undefined) continue;
    v[k] = Array.isArray(x) ? x.join(', ') : String(x);
  }
  return v;
}

function monitorFields(pc: PageContext, id: string, state: FormState | undefined, kind: MonitorKind | null, values: Record<string, string> = {}, enabled = true): Html {
  const { t } = pc;
  const f = (name: string, label: string, extra: Partial<Parameters<typeof field>[1]> = {}) => field(id, { name, label, value: values[name], ...extra }, state);
  const show = (k: MonitorKind) => kind === null || kind === k;
  const group = (k: MonitorKind, body: Html) => (show(k) ? html`<fieldset><legend>${t(`${KIND_LABEL[k][0]}の設定`, `${KIND_LABEL[k][1]} settings`)}</legend>${body}</fieldset>` : '');
  return html`
${kind === null ? field(id, { name: 'kind', label: t('種類', 'Kind'), type: 'select', options: MONITOR_KINDS.map((k) => ({ value: k, label: t(KIND_LABEL[k][0], KIND_LABEL[k][1]) })) }, state) : ''}
${f('name', t('名前', 'Name'), { required: true })}
${f('component', t('コンポーネント（ステータスページのキー）', 'Component (status page key)'), { required: true, value: values['component'] ?? 'service', hint: t('英小文字・数字・. _ - の64文字以内', 'a-z 0-9 . _ -, up to 64') })}
${f('intervalSeconds', t('監視間隔（秒）', 'Interval (seconds)'), { type: 'number', inputmode: 'numeric', required: true, value: values['intervalSeconds'] ?? '60' })}
${f('timeoutMs', t('タイムアウト（ミリ秒）', 'Timeout (ms)'), { type: 'number', inputmode: 'numeric', value: values['timeoutMs'] ?? '10000' })}
${f('retries', t('停止と判定するまでの再試行回数', 'Retries before down'), { type: 'number', inputmode: 'numeric', value: values['retries'] ?? '1' })}
${f('severity', t('障害の重大度', 'Incident severity'), { type: 'select', value: values['severity'] ?? 'major', options: [{ value: 'critical', label: t('重大', 'critical') }, { value: 'major', label: t('重要', 'major') }, { value: 'minor', label: t('軽微', 'minor') }] })}
${field(id, { name: 'enabled', label: t('有効', 'Enabled'), type: 'checkbox', value: enabled ? 'on' : '' }, state)}
${group('http', html`${f('url', 'URL')}${f('method', t('メソッド', 'Method'), { type: 'select', options: [{ value: 'GET', label: 'GET' }, { value: 'HEAD', label: 'HEAD' }] })}${f('expectedStatus', t('正常とするステータス（カンマ区切り）', 'Expected status codes (comma-separated)'), { value: values['expectedStatus'] ?? '200' })}${f('keyword', t('応答に含まれるべき文字列', 'Keyword expected in the response'))}${f('maxLatencyMs', t('許容する応答時間（ミリ秒）', 'Maximum latency (ms)'), { type: 'number' })}`)}
${show('tcp') || show('tls') ? html`<fieldset><legend>${t('TCP・TLSの接続先', 'TCP / TLS endpoint')}</legend>${f('host', t('ホスト', 'Host'))}${f('port', t('ポート', 'Port'), { type: 'number', inputmode: 'numeric' })}</fieldset>` : ''}
${group('dns', html`${f('hostname', t('名前解決するホスト名', 'Host name to resolve'))}${f('recordType', t('レコード', 'Record type'), { type: 'select', options: [{ value: 'A', label: 'A' }, { value: 'AAAA', label: 'AAAA' }] })}${f('server', t('DNSサーバー（空欄でシステム既定）', 'DNS server (empty: system)'))}${f('expectedAddress', t('期待するアドレス', 'Expected address'))}`)}
${group('tls', html`${f('servername', t('SNI名（空欄でホスト）', 'SNI name (empty: host)'))}${f('minDaysLeft', t('証明書の残り日数の下限', 'Minimum days left on the certificate'), { type: 'number', value: values['minDaysLeft'] ?? '14' })}`)}
${group('heartbeat', f('graceSeconds', t('猶予（秒）', 'Grace (seconds)'), { type: 'number', value: values['graceSeconds'] ?? '60' }))}
${group('backup_freshness', f('maxAgeHours', t('最新バックアップの許容経過時間', 'Maximum backup age (hours)'), { type: 'number', value: values['maxAgeHours'] ?? '26' }))}
${group('offsite_lag', f('maxLagHours', t('遠隔地コピーの許容遅れ（時間・空欄で周期）', 'Maximum remote-copy lag (hours; empty: the cycle)'), { type: 'number' }))}`;
}

/** HH:MM in Japan time, for a chart's axis. */
const hhmm = (d: Date) => fmtTime(d, 'en').slice(-9, -4);
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** The chart starts at the first point (less a margin) when the data covers less than the range. */
function chartFrom(points: Array<{ at: Date }>, from: Date, to: Date): Date {
  const first = points[0]?.at.getTime();
  if (first === undefined) return from;
  const start = first - Math.max(60_000, (to.getTime() - first) * 0.05);
  return new Date(Math.max(from.getTime(), start));
}

function tokenOnce(pc: PageContext, label: string, token: string): Html {
  const { t } = pc;
  return html`<div class="notice" role="status" data-testid="token-once"><p><strong>${label}</strong></p><p>${t('この値は今回だけ表示されます。控えてから画面を閉じてください。', 'Shown only this once: copy it before leaving the page.')}</p><p><code>${token}</code></p></div>`;
}

export function registerConsoleMonitoring(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const { operator, pcOf, page, param, action } = consoleKit(app, deps);

  // ---- service monitors (R12.3②) --------------------------------------------------------------
  const monitorsPage = async (req: FastifyRequest, reply: FastifyReply, p: Operator, state?: FormState, status = 200, once?: Html) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const monitors = await listMonitors(ctx.db);
    const canWrite = hasOperatorRole(p, ...WRITE);
    return page(reply, pc, t('サービス監視', 'Service monitors'), '/console/monitors', html`${doneNote(req, DONE(t))}${once ?? ''}
<div class="table-wrap"><table><thead><tr><th scope="col">${t('名前', 'Name')}</th><th scope="col">${t('種類', 'Kind')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('最終確認', 'Last check')}</th><th scope="col">${t('応答時間', 'Latency')}</th><th scope="col">${t('障害', 'Incident')}</th></tr></thead>
<tbody>${monitors.map((m) => html`<tr data-testid="monitor-row"><td><a href="/console/monitors/${m.id}">${m.name}</a>${m.enabled ? '' : html` <span class="muted">(${t('無効', 'disabled')})</span>`}</td><td>${t(KIND_LABEL[m.kind][0], KIND_LABEL[m.kind][1])}</td><td data-testid="monitor-state">${t(STATE_LABEL[m.state][0], STATE_LABEL[m.state][1])}</td><td>${m.lastCheck ? html`${fmtTime(m.lastCheck.at, locale)}${m.lastCheck.ok ? '' : html`<br><span class="muted">${m.lastCheck.error ?? ''}</span>`}` : '—'}</td><td>${m.lastCheck?.latencyMs ?? '—'}${m.lastCheck?.latencyMs !== null && m.lastCheck?.latencyMs !== undefined ? ' ms' : ''}</td><td>${m.openIncidentId ? html`<a href="/console/incidents/${m.openIncidentId}">${t('対応中', 'open')}</a>` : '—'}</td></tr>`)}</tbody></table></div>
${monitors.length ? '' : html`<p>${t('監視はまだありません。', 'No monitors yet.')}</p>`}
${canWrite ? html`<details class="action"${state?.form === 'monitor-new' ? html` open` : ''}><summary>${t('監視を追加する', 'Add a monitor')}</summary>
<p class="hint">${t('種類に合う欄だけが使われます。', 'Only the settings of the chosen kind are used.')}</p>
${form({ id: 'monitor-new', action: '/console/monitors', csrf: pc.csrf, submit: t('追加する', 'Add'), state, locale, fields: monitorFields(pc, 'monitor-new', state, null) })}</details>` : ''}`, status);
  };
  app.get('/console/monitors', { schema: { hide: true } }, async (req, reply) => monitorsPage(req, reply, operator(req, ...READ)));
  action('/console/monitors', {
    form: () => 'monitor-new',
    roles: WRITE,
    schema: monitorInput,
    input: (f) => monitorFormInput(f),
    run: (d, p) => createMonitor(ctx.db, ctx.clock, actorOf(p), d),
    page: monitorsPage,
    redirect: () => '/console/monitors?done=saved',
    // A heartbeat's push token is shown once, on this answer only (never in a URL).
    render: async (req, reply, p, result) => {
      const r = result as Awaited<ReturnType<typeof createMonitor>>;
      if (!r.heartbeatToken) return reply.code(303).header('location', '/console/monitors?done=saved').send();
      const { t } = pcOf(req, reply, p);
      return monitorsPage(req, reply, p, undefined, 201, tokenOnce(pcOf(req, reply, p), t(`「${r.monitor.name}」のハートビート送信用トークン`, `Heartbeat push token of "${r.monitor.name}"`), r.heartbeatToken));
    },
  });

  const monitorPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const m = await getMonitor(ctx.db, param(req, 'monitorId'));
    const to = new Date(ctx.clock.now().getTime() + 1);
    const from = new Date(to.getTime() - 86_400_000);
    const res = await monitorResults(ctx.db, m.id, from, to);
    const pts = res.points
      ? res.points.map((x) => ({ at: new Date(x.at), value: x.latencyMs, bad: !x.ok }))
      : (res.buckets ?? []).map((b) => ({ at: new Date(b.from), value: b.avgLatencyMs, bad: b.failed > 0 }));
    // The state history: runs of passing and failing checks, newest first.
    const runs: Array<{ ok: boolean; from: string; to: string; checks: number; error: string | null }> = [];
    for (const x of res.points ?? []) {
      const last = runs.at(-1);
      if (last && last.ok === x.ok) {
        last.to = x.at;
        last.checks++;
      } else runs.push({ ok: x.ok, from: x.at, to: x.at, checks: 1, error: x.error });
    }
    const history = await listAudit(ctx.db, { subjectType: 'monitor', subjectId: m.id, limit: 100 });
    const canWrite = hasOperatorRole(p, ...WRITE);
    return page(reply, pc, m.name, '/console/monitors', html`${doneNote(req, DONE(t))}
<dl class="facts"><dt>${t('種類', 'Kind')}</dt><dd>${t(KIND_LABEL[m.kind][0], KIND_LABEL[m.kind][1])}</dd><dt>${t('状態', 'State')}</dt><dd data-testid="monitor-state">${t(STATE_LABEL[m.state][0], STATE_LABEL[m.state][1])}</dd>
<dt>${t('過去24時間', 'Last 24 hours')}</dt><dd>${res.summary.checks} ${t('回確認', 'checks')} · ${t('失敗', 'failed')} ${res.summary.failed} · ${t('稼働率', 'uptime')} ${res.summary.uptimePct ?? '—'}% · ${t('平均', 'avg')} ${res.summary.avgLatencyMs ?? '—'} ms</dd>
${m.openIncidentId ? html`<dt>${t('障害', 'Incident')}</dt><dd><a href="/console/incidents/${m.openIncidentId}">${t('対応中の障害', 'open incident')}</a></dd>` : ''}</dl>
<h2>${t('応答時間（過去24時間）', 'Latency (last 24 hours)')}</h2>
${lineChart([{ name: t('応答時間', 'latency'), color: '#1f4e99', points: pts }], { from: chartFrom(pts, from, to), to, unit: 'ms', summary: t(`応答時間の推移: ${res.summary.checks}回の確認、平均${res.summary.avgLatencyMs ?? '—'}ms、失敗${res.summary.failed}回`, `Latency over 24 h: ${res.summary.checks} checks, average ${res.summary.avgLatencyMs ?? '—'} ms, ${res.summary.failed} failed`), label: hhmm })}
<h2>${t('状態の履歴', 'State history')}</h2>
${runs.length ? html`<ul>${runs.reverse().slice(0, 50).map((r) => html`<li>${r.ok ? t('成功', 'passing') : html`<strong>${t('失敗', 'failing')}</strong>`} · ${fmtTime(r.from, locale)} – ${fmtTime(r.to, locale)} · ${r.checks} ${t('回', 'checks')}${r.error ? html` · ${r.error}` : ''}</li>`)}</ul>` : html`<p>${t('まだ確認結果がありません。', 'No checks yet.')}</p>`}
${canWrite ? html`<details class="action"${state?.form === 'monitor-edit' ? html` open` : ''}><summary>${t('設定を変更する', 'Edit')}</summary>${form({ id: 'monitor-edit', action: `/console/monitors/${m.id}`, csrf: pc.csrf, submit: t('保存する', 'Save'), state, locale, fields: monitorFields(pc, 'monitor-edit', state, m.kind, monitorValues(m), m.enabled) })}</details>
<details class="action"${state?.form === 'monitor-delete' ? html` open` : ''}><summary>${t('削除する', 'Delete')}</summary>${form({ id: 'monitor-delete', action: `/console/monitors/${m.id}/delete`, csrf: pc.csrf, submit: t('削除する', 'Delete'), danger: true, state, locale, fields: html`${field('monitor-delete', { name: 'reason', label: t('理由（記録されます）', 'Reason (recorded)'), type: 'textarea' }, state)}<p class="hint">${t('結果の履歴も削除されます。開いた障害は残ります。', 'Its result history goes too; an incident it opened stays.')}</p>` })}</details>` : ''}
<h2>${t('変更履歴', 'Changes')}</h2>
<ul>${history.map((e) => html`<li>${fmtTime(e.at, locale)} · ${e.action} · ${e.actor.label}${e.reason ? html` · ${e.reason}` : ''}</li>`)}</ul>`, status);
  };
  app.get('/console/monitors/:monitorId', { schema: { hide: true } }, async (req, reply) => monitorPage(req, reply, operator(req, ...READ)));
  const mid = (r: FastifyRequest) => param(r, 'monitorId');
  action('/console/monitors/:monitorId', {
    form: () => 'monitor-edit',
    roles: WRITE,
    schema: z.unknown(),
    input: (f) => f,
    run: async (f, p, r) => updateMonitor(ctx.db, ctx.clock, actorOf(p), mid(r), monitorFormInput(f as FormData, (await getMonitor(ctx.db, mid(r))).kind)),
    page: monitorPage,
    redirect: (r) => `/console/monitors/${mid(r)}?done=saved`,
  });
  action('/console/monitors/:monitorId/delete', {
    form: () => 'monitor-delete',
    roles: WRITE,
    schema: z.object({ reason: z.string().trim().max(2000).nullable() }),
    input: (f) => ({ reason: str(f, 'reason') ?? null }),
    run: (d, p, r) => deleteMonitor(ctx.db, ctx.clock, actorOf(p), mid(r), d.reason),
    page: monitorPage,
    redirect: () => '/console/monitors?done=deleted',
  });

  // ---- hardware (R12.3①) -----------------------------------------------------------------------
  const hostName = z.object({ name: z.string().trim().min(1).max(200).refine((s) => !s.startsWith('hokan:'), { error: 'names starting with "hokan:" are kept for hokan\'s own hosts' }) });
  const hostsPage = async (req: FastifyRequest, reply: FastifyReply, p: Operator, state?: FormState, status = 200, once?: Html) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const hosts = await listHosts(ctx.db);
    const open = await listAlerts(ctx.db, { open: true, limit: 500 });
    return page(reply, pc, t('ハードウェア監視', 'Hardware monitoring'), '/console/hardware', html`${doneNote(req, DONE(t))}${once ?? ''}
<div class="table-wrap"><table><thead><tr><th scope="col">${t('ホスト', 'Host')}</th><th scope="col">${t('種類', 'Kind')}</th><th scope="col">${t('最新の測定', 'Latest sample')}</th><th scope="col">${t('未解決のアラート', 'Open alerts')}</th></tr></thead>
<tbody>${hosts.map((h) => html`<tr><td><a href="/console/hardware/${h.id}">${h.name}</a></td><td>${h.kind === 'self' ? t('このサーバー', 'this server') : t('エージェント', 'agent')}</td><td>${fmtTime(h.lastSampleAt, locale)}</td><td>${open.filter((a) => a.hostId === h.id).length}</td></tr>`)}</tbody></table></div>
${hasOperatorRole(p, ...WRITE) ? html`<details class="action"${state?.form === 'host-new' ? html` open` : ''}><summary>${t('ホストを登録する', 'Register a host')}</summary>${form({ id: 'host-new', action: '/console/hardware', csrf: pc.csrf, submit: t('登録する', 'Register'), state, locale, fields: field('host-new', { name: 'name', label: t('ホスト名', 'Host name'), required: true, hint: t('送信用トークンは登録時に一度だけ表示されます。', 'Its push token is shown once, on registration.') }, state) })}</details>` : ''}`, status);
  };
  app.get('/console/hardware', { schema: { hide: true } }, async (req, reply) => hostsPage(req, reply, operator(req, ...READ)));
  action('/console/hardware', {
    form: () => 'host-new',
    roles: WRITE,
    schema: hostName,
    input: (f) => ({ name: str(f, 'name') ?? '' }),
    run: (d, p) => registerHost(ctx.db, ctx.clock, actorOf(p), d.name),
    page: hostsPage,
    redirect: () => '/console/hardware',
    render: async (req, reply, p, result) => {
      const r = result as Awaited<ReturnType<typeof registerHost>>;
      const pc = pcOf(req, reply, p);
      return hostsPage(req, reply, p, undefined, 201, tokenOnce(pc, pc.t(`「${r.host.name}」の送信用トークン（Authorization: Bearer）`, `Push token of "${r.host.name}" (Authorization: Bearer)`), r.token));
    },
  });

  const CHARTS: Array<{ metric: SampleMetric; color: string; max?: number }> = [
    { metric: 'cpu_percent', color: '#1f4e99', max: 100 },
    { metric: 'memory_percent', color: '#5a2d82', max: 100 },
    { metric: 'disk_percent', color: '#8a5a00', max: 100 },
    { metric: 'temperature_c', color: '#b00020' },
  ];
  const hostPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const host = hostView(await getHostRow(ctx.db, param(req, 'hostId')));
    const to = new Date(ctx.clock.now().getTime() + 1);
    const from = new Date(to.getTime() - 86_400_000);
    const charts: Html[] = [];
    for (const c of CHARTS) {
      const s = await querySeries(ctx.db, host.id, c.metric, from, to);
      const label = METRIC_LABELS[c.metric];
      const last = s.points.at(-1);
      charts.push(html`<h3>${cap(label[locale])}</h3>${s.points.length
        ? lineChart([{ name: cap(label[locale]), color: c.color, points: s.points.map((x) => ({ at: new Date(x.at), value: x.value })) }], { from: chartFrom(s.points.map((x) => ({ at: new Date(x.at) })), from, to), to, unit: label.unit, ...(c.max ? { max: c.max } : {}), summary: t(`${label.ja}の推移（過去24時間、最新 ${last?.value.toFixed(1)}${label.unit}）`, `${label.en} over 24 h (latest ${last?.value.toFixed(1)}${label.unit})`), label: hhmm })
        : html`<p>${t('データがありません。', 'No data.')}</p>`}`);
    }
    const latest = await latestSample(ctx.db, host.id);
    const rules = (await listRules(ctx.db)).filter((r) => r.hostId === null || r.hostId === host.id);
    const alerts = await listAlerts(ctx.db, { hostId: host.id, limit: 50 });
    const canWrite = hasOperatorRole(p, ...WRITE);
    const rf = 'rule-new';
    return page(reply, pc, host.name, '/console/hardware', html`${doneNote(req, DONE(t))}
<dl class="facts"><dt>${t('最新の測定', 'Latest sample')}</dt><dd>${fmtTime(host.lastSampleAt, locale)}</dd><dt>${t('最終受信', 'Last seen')}</dt><dd>${fmtTime(host.lastSeenAt, locale)}</dd>${latest ? html`<dt>${t('ロードアベレージ', 'Load average')}</dt><dd>${latest.load.one} / ${latest.load.five} / ${latest.load.fifteen}</dd>` : ''}</dl>
<h2>${t('過去24時間', 'Last 24 hours')}</h2>
${charts}
<h2>${t('アラート', 'Alerts')}</h2>
${alerts.length ? html`<ul>${alerts.map((a) => html`<li>${a.recoveredAt ? t('解消', 'recovered') : html`<strong>${t('未解決', 'open')}</strong>`} · ${a.severity} · ${METRIC_LABELS[a.metric as keyof typeof METRIC_LABELS]?.[locale] ?? a.metric} ${a.value} · ${fmtTime(a.raisedAt, locale)}${a.recoveredAt ? html` – ${fmtTime(a.recoveredAt, locale)}` : ''}${a.incidentId ? html` · <a href="/console/incidents/${a.incidentId}">${t('障害', 'incident')}</a>` : ''}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}
<h2>${t('しきい値ルール', 'Threshold rules')}</h2>
${rules.length ? html`<ul>${rules.map((r) => html`<li>${r.name}: ${METRIC_LABELS[r.metric][locale]} ${r.comparison} ${r.threshold}${METRIC_LABELS[r.metric].unit} · ${r.durationSeconds} ${t('秒継続', 's')} · ${r.severity}${r.hostId ? '' : html` <span class="muted">(${t('全ホスト', 'all hosts')})</span>`} ${canWrite ? actionButton(pc, `/console/hardware/${host.id}/rules/${r.id}/delete`, t('削除', 'Delete'), {}, true) : ''}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}
${canWrite ? html`<details class="action"${state?.form === rf ? html` open` : ''}><summary>${t('このホストにルールを追加する', 'Add a rule for this host')}</summary>${form({ id: rf, action: `/console/hardware/${host.id}/rules`, csrf: pc.csrf, submit: t('追加する', 'Add'), state, locale, fields: html`
${field(rf, { name: 'name', label: t('名前', 'Name'), required: true }, state)}
${field(rf, { name: 'metric', label: t('指標', 'Metric'), type: 'select', options: METRICS.map((m) => ({ value: m, label: METRIC_LABELS[m][locale] })) }, state)}
${field(rf, { name: 'comparison', label: t('比較', 'Comparison'), type: 'select', options: COMPARISONS.map((c) => ({ value: c, label: c })) }, state)}
${field(rf, { name: 'threshold', label: t('しきい値', 'Threshold'), type: 'number', required: true }, state)}
${field(rf, { name: 'durationSeconds', label: t('継続時間（秒）', 'Duration (seconds)'), type: 'number', value: '0' }, state)}
${field(rf, { name: 'severity', label: t('重大度（重大・重要は障害を登録）', 'Severity (critical and major open an incident)'), type: 'select', options: RULE_SEVERITIES.map((s) => ({ value: s, label: s })) }, state)}` })}</details>
<details class="action"><summary>${t('ホストを廃止する', 'Retire the host')}</summary>${actionButton(pc, `/console/hardware/${host.id}/retire`, t('廃止する（トークン無効化・アラート終了）', 'Retire (token stops, alerts close)'), {}, true)}</details>` : ''}`, status);
  };
  app.get('/console/hardware/:hostId', { schema: { hide: true } }, async (req, reply) => hostPage(req, reply, operator(req, ...READ)));
  const hid = (r: FastifyRequest) => param(r, 'hostId');
  action('/console/hardware/:hostId/rules', {
    form: () => 'rule-new',
    roles: WRITE,
    schema: ruleBody,
    input: (f) => ({ name: str(f, 'name') ?? '', metric: str(f, 'metric') ?? '', comparison: str(f, 'comparison') ?? '', threshold: num(str(f, 'threshold')), durationSeconds: num(str(f, 'durationSeconds')), severity: str(f, 'severity') ?? '' }),
    run: (d, p, r) => createRule(ctx.db, ctx.clock, actorOf(p), { ...d, hostId: hid(r) }),
    page: hostPage,
    redirect: (r) => `/console/hardware/${hid(r)}?done=saved`,
  });
  action('/console/hardware/:hostId/rules/:ruleId/delete', { form: () => 'rule-delete', roles: WRITE, schema: z.unknown(), input: () => ({}), run: (_d, p, r) => deleteRule(ctx.db, ctx.clock, actorOf(p), param(r, 'ruleId')), page: hostPage, redirect: (r) => `/console/hardware/${hid(r)}?done=deleted` });
  action('/console/hardware/:hostId/retire', { form: () => 'retire', roles: WRITE, schema: z.unknown(), input: () => ({}), run: (_d, p, r) => retireHost(ctx.db, ctx.clock, actorOf(p), hid(r)), page: hostPage, redirect: () => '/console/hardware?done=saved' });

  // ---- visual rounds (R12.3③) ------------------------------------------------------------------
  const roundForm = (c: ChecklistView) => `round-${c.id}`;
  const roundsPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const checklists = await listChecklists(ctx.db);
    const due = await roundDueStates(ctx.db, ctx.clock, ctx.config.roundIntervalHours);
    const rounds = await listRounds(ctx.db, { limit: 30 });
    const canWrite = hasOperatorRole(p, ...WRITE);
    const sev = (locale: Locale) => [{ value: 'major', label: locale === 'ja' ? '重要' : 'major' }, { value: 'critical', label: locale === 'ja' ? '重大' : 'critical' }, { value: 'minor', label: locale === 'ja' ? '軽微' : 'minor' }];
    return page(reply, pc, t('目視巡回', 'Visual rounds'), '/console/rounds', html`${doneNote(req, DONE(t))}
<h2>${t('点検表と期限', 'Checklists and due times')}</h2>
${due.length ? html`<ul>${due.map((d) => html`<li data-testid="round-due">${d.name} · ${t(`${d.intervalHours}時間ごと`, `every ${d.intervalHours} h`)} · ${t('前回', 'last')} ${fmtTime(d.lastRoundAt, locale)} · ${t('期限', 'due')} ${fmtTime(d.dueAt, locale)} · ${d.overdue ? html`<strong class="field-error">${t('期限切れ', 'overdue')}</strong>` : t('期限内', 'on time')}</li>`)}</ul>` : html`<p>${canWrite ? t('点検表はまだありません。下のフォームから作成してください。', 'No checklists yet; create one with the form below.') : t('点検表はまだありません。', 'No checklists yet.')}</p>`}
${canWrite ? html`<details class="action"${state?.form === 'checklist-new' || !checklists.length ? html` open` : ''}><summary>${t('点検表を作成する', 'Create a checklist')}</summary>${form({ id: 'checklist-new', action: '/console/rounds/checklists', csrf: pc.csrf, submit: t('作成する', 'Create'), state, locale, fields: html`
${field('checklist-new', { name: 'name', label: t('点検表の名前', 'Checklist name'), required: true }, state)}
${field('checklist-new', { name: 'intervalHours', label: t('巡回の間隔（時間）', 'Hours between rounds'), type: 'number', inputmode: 'numeric', hint: t(`空欄なら既定の${ctx.config.roundIntervalHours}時間。1〜8760。`, `Empty: the default of ${ctx.config.roundIntervalHours} hours. 1 to 8760.`) }, state)}
${field('checklist-new', { name: 'items', label: t('点検項目（1行に1項目）', 'Items to check (one per line)'), type: 'textarea', required: true, hint: t('「項目 | 説明」と書くと説明を付けられます（例: UPSの表示 | バッテリー運転の表示がないこと）。', 'Write "item | description" to add a description (e.g. UPS panel | no on-battery indication).') }, state)}` })}</details>` : ''}
${canWrite ? checklists.map((c) => {
  const id = roundForm(c);
  const mine = state?.form === id ? state : undefined;
  return html`<details class="action"${mine ? html` open` : ''}><summary>${t(`巡回を記録する: ${c.name}`, `Record a round: ${c.name}`)}</summary>${form({ id, action: `/console/rounds/${c.id}`, csrf: pc.csrf, submit: t('記録する', 'Record'), state, locale, fields: html`
${field(id, { name: 'performedAt', label: t('実施日時（空欄なら今）', 'Performed at (empty: now)'), type: 'datetime-local' }, state)}
${c.items.map((it) => html`<fieldset><legend>${it.label}</legend><input type="hidden" name="_key" value="${it.key}">${it.description ? html`<p class="hint">${it.description}</p>` : ''}
${field(id, { name: `status-${it.key}`, label: t('結果', 'Result'), type: 'select', options: [{ value: 'ok', label: t('異常なし', 'OK') }, { value: 'finding', label: t('所見あり', 'Finding') }] }, state)}
${field(id, { name: `note-${it.key}`, label: t('所見の内容', 'What was found'), type: 'textarea' }, state)}
${field(id, { name: `incident-${it.key}`, label: t('この所見で障害を登録する', 'Open an incident for this finding'), type: 'checkbox' }, state)}
${field(id, { name: `severity-${it.key}`, label: t('障害の重大度', 'Incident severity'), type: 'select', options: sev(locale) }, state)}</fieldset>`)}` })}</details>`;
}) : ''}
<h2>${t('最近の巡回', 'Recent rounds')}</h2>
${rounds.length ? html`<ul>${rounds.map((r) => html`<li data-testid="round">${fmtTime(r.performedAt, locale)} · ${checklists.find((c) => c.id === r.checklistId)?.name ?? r.checklistId} · ${r.performedBy} · ${t('所見', 'findings')} ${r.findings}${r.results.filter((x) => x.status === 'finding').map((x) => html`<br>${x.label}: ${x.note ?? ''}${x.incidentId ? html` → <a href="/console/incidents/${x.incidentId}">${t('障害', 'incident')}</a>` : ''}`)}</li>`)}</ul>` : html`<p>${t('ありません。', 'None.')}</p>`}`, status);
  };
  app.get('/console/rounds', { schema: { hide: true } }, async (req, reply) => roundsPage(req, reply, operator(req, ...READ)));
  // R12.3③: the same schema and domain function as POST /api/v1/rounds/checklists; the textarea's
  // lines become the items, keyed by position (keys are what a round's results refer to).
  const checklistForm = checklistBody.extend({ items: z.array(checklistItem, { error: 'write at least one item, one per line' }).min(1).max(500) });
  action('/console/rounds/checklists', {
    form: () => 'checklist-new',
    roles: WRITE,
    schema: checklistForm,
    input: (f) => {
      const lines = (str(f, 'items') ?? '').split(/\r?\n/).map((x) => x.trim()).filter(Boolean);
      const items = lines.map((line, i) => {
        const [label = '', ...rest] = line.split(/\s*[|｜]\s*/);
        const description = rest.join(' | ').trim();
        return { key: `item-${i + 1}`, label, description: description || null };
      });
      const hours = str(f, 'intervalHours');
      return { name: str(f, 'name') ?? '', intervalHours: hours === undefined ? null : num(hours), items: items.length ? items : undefined };
    },
    run: (d, p) => createChecklist(ctx.db, ctx.clock, actorOf(p), d),
    page: roundsPage,
    redirect: () => '/console/rounds?done=saved',
  });
  const roundBody = z.object({ performedAt: instant.nullable() });
  action('/console/rounds/:checklistId', {
    form: (r) => `round-${param(r, 'checklistId')}`,
    roles: WRITE,
    schema: roundBody,
    input: (f) => ({ performedAt: jstInstant(str(f, 'performedAt')) ?? null }),
    run: async (d, p, r) => {
      const f = (r.body ?? {}) as FormData;
      const c = await getChecklist(ctx.db, param(r, 'checklistId'));
      const results = c.items.map((it) => {
        const finding = str(f, `status-${it.key}`) === 'finding';
        const sev = str(f, `severity-${it.key}`);
        const severity: 'critical' | 'major' | 'minor' = sev === 'critical' || sev === 'minor' ? sev : 'major';
        return { itemKey: it.key, status: finding ? ('finding' as const) : ('ok' as const), note: str(f, `note-${it.key}`) ?? null, incident: finding && checked(f, `incident-${it.key}`) ? { severity, title: null } : null };
      });
      return recordRound(ctx.db, ctx.clock, actorOf(p), { checklistId: c.id, performedAt: d.performedAt ? new Date(d.performedAt) : null, results });
    },
    // results.<i>.note → the field of that item.
    mapErrors: (state, err, f, locale) => {
      const keys = list(f, '_key');
      const out: FormState = { ...state, errors: {} };
      for (const d of err.details) {
        const m = /^results\.(\d+)\.(\w+)$/.exec(d.path);
        const key = m ? keys[Number(m[1])] : undefined;
        if (m && key) out.errors[`${m[2] === 'incident' ? 'incident' : m[2] === 'itemKey' ? 'status' : 'note'}-${key}`] = fieldMessage(err, d, locale);
        else out.errors[d.path.split('.')[0] || '_'] = fieldMessage(err, d, locale);
      }
      return out;
    },
    page: roundsPage,
    redirect: () => '/console/rounds?done=saved',
  });
}
