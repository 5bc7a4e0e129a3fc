import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { createApiToken, listApiTokens, revokeApiToken } from '../accounts/api-tokens.js';
import { apiTokenBody, customerUserBody } from '../accounts/routes.js';
import { createCustomerUser, listCustomerUsers } from '../accounts/users.js';
import { getDeletionCertificate } from '../backup/purge.js';
import { contractView, fileTerminationNotice, listContracts, listTerminationNotices, type ContractView } from '../contracts/contracts.js';
import { getCustomer } from '../contracts/customers.js';
import { terminationNoticeBody } from '../contracts/routes.js';
import { CUSTOMER_NOTICE_DAYS, NO_REFUND_NOTE } from '../contracts/vocabulary.js';
import { actorOf, canSeeFee, isCustomerAdminOf } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import { addDays, japanDateOf } from '../core/japan-time.js';
import { getExportJob, listExportJobs, openExportDownload, requestExport, type ExportJobView } from '../data/export-jobs.js';
import { attachmentDisposition } from '../data/export.js';
import { assertCustomerServed } from '../data/routes.js';
import { listIncidents, type IncidentView } from '../incidents/incidents.js';
import { listStops, stopView } from '../incidents/stops.js';
import { html, type Html } from './html.js';
import { fmtBytes, fmtDate, fmtTime, fmtYen } from './i18n.js';
import { checkCsrf, field, form, refusalState, requireHuman, seeOther, str, validate, type FormData, type FormState, type Human, type WebDeps } from './kit.js';
import { type NavItem } from './layout.js';
import { portalMoreNav } from './nav-more.js';
import { actionButton, doneNote, pageContext, shell, type PageContext } from './shell.js';

type Customer = Extract<Human, { kind: 'customer_user' }>;

export function nav(pc: PageContext): NavItem[] {
  const { t } = pc;
  const admin = pc.p.kind === 'customer_user' && pc.p.role === 'customer_admin';
  return [
    { href: '/portal', label: t('ご契約', 'Contract') },
    { href: '/portal/incidents', label: t('障害・停止', 'Incidents and stops') },
    ...(admin
      ? [
          { href: '/portal/termination', label: t('解約の通知', 'Termination notice') },
          { href: '/portal/export', label: t('データのエクスポート', 'Data export') },
          { href: '/portal/users', label: t('ユーザーとAPIトークン', 'Users and API tokens') },
        ]
      : []),
    ...portalMoreNav(pc),
    { href: '/status', label: t('稼働状況', 'Status') },
  ];
}

function requireCustomerAdmin(p: Customer): void {
  if (!isCustomerAdminOf(p, p.customerId)) throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
}

export function contractFacts(c: ContractView, pc: PageContext): Html {
  const { t, locale } = pc;
  return html`<dl class="facts">
<dt>${t('契約番号', 'Contract number')}</dt><dd>${c.contractNumber}</dd>
<dt>${t('状態', 'State')}</dt><dd>${c.statusLabel[locale]}</dd>
<dt>${t('契約期間', 'Term')}</dt><dd>${fmtDate(c.term.start, locale)} – ${fmtDate(c.term.end, locale)}</dd>
${'monthlyFeeYen' in c ? html`<dt>${t('月額利用料金', 'Monthly fee')}</dt><dd data-testid="fee">${c.monthlyFeeYen === null || c.monthlyFeeYen === undefined ? t('未設定', 'not set') : fmtYen(c.monthlyFeeYen, locale)}</dd>` : ''}
<dt>${t('システム利用契約', 'System-use contract')}</dt><dd>${c.linkedContracts.systemUse.contractNumber}${c.linkedContracts.systemUse.endDate ? html` (${t('終了日', 'ends')} ${fmtDate(c.linkedContracts.systemUse.endDate, locale)})` : ''}</dd>
<dt>${t('サポート契約', 'Support contract')}</dt><dd>${c.linkedContracts.support.contractNumber}${c.linkedContracts.support.endDate ? html` (${t('終了日', 'ends')} ${fmtDate(c.linkedContracts.support.endDate, locale)})` : ''}</dd>
${c.suspension ? html`<dt>${t('利用停止', 'Suspended')}</dt><dd>${c.suspension.reasonLabel[locale]} · ${fmtTime(c.suspension.since, locale)}</dd>` : ''}
${c.scheduledEnd ? html`<dt>${t('終了予定', 'Scheduled end')}</dt><dd data-testid="scheduled-end">${fmtDate(c.scheduledEnd.japanDate, locale)} · ${c.scheduledEnd.reasonLabel[locale]}</dd>` : ''}
${c.ended ? html`<dt>${t('終了', 'Ended')}</dt><dd>${fmtTime(c.ended.at, locale)} · ${c.ended.reasonLabel[locale]}</dd>` : ''}
</dl>`;
}

export function incidentTable(list: IncidentView[], pc: PageContext, link?: (i: IncidentView) => string): Html {
  const { t, locale } = pc;
  if (!list.length) return html`<p>${t('該当する障害はありません。', 'No incidents.')}</p>`;
  const state = (s: string) => (s === 'met' ? t('達成', 'met') : s === 'breached' ? t('未達', 'breached') : t('経過中', 'running'));
  return html`<div class="table-wrap"><table>
<thead><tr><th scope="col">${t('障害', 'Incident')}</th><th scope="col">${t('発生・検知', 'Occurred · detected')}</th><th scope="col">${t('復旧', 'Recovered')}</th><th scope="col">${t('検知 1時間以内', 'Detected ≤ 1 h')}</th><th scope="col">${t('復旧 24時間以内', 'Resumed ≤ 24 h')}</th><th scope="col">${t('賠償責任の判定', 'Liability finding')}</th></tr></thead>
<tbody>${list.map((i) => html`<tr>
<td>${link ? html`<a href="${link(i)}">${i.title}</a>` : i.title}${i.caseByCase ? html`<br><span class="muted">${t('個別対応（第8条）', 'case by case (Art. 8)')}</span>` : ''}</td>
<td>${fmtTime(i.times.occurred, locale)}<br>${fmtTime(i.times.detected, locale)}</td>
<td>${i.times.recovered ? fmtTime(i.times.recovered, locale) : t('対応中', 'ongoing')}</td>
<td>${state(i.sla.detection.state)} (${i.sla.detection.minutes} ${t('分', 'min')})</td>
<td>${state(i.sla.restoration.state)} (${i.sla.restoration.hours} ${t('時間', 'h')})</td>
<td><strong>${i.liability.liable === 'pending' ? t('判定待ち', 'pending') : i.liability.liable ? t('賠償責任あり', 'liable') : t('賠償責任なし', 'not liable')}</strong><ul>${i.liability.reasons.map((r) => html`<li>${r[locale]}</li>`)}</ul></td>
</tr>`)}</tbody></table></div>`;
}

function exportProgress(j: ExportJobView, pc: PageContext): Html {
  const { t, locale } = pc;
  if (j.state === 'done') {
    return html`<p data-testid="export-ready">${t('エクスポートが完了しました。', 'The export is ready.')} <a class="button" href="/portal/exports/${j.id}/download">${t('ダウンロード', 'Download')} (${fmtBytes(j.bytes)})</a></p>
<p class="hint">SHA-256: <code>${j.sha256 ?? ''}</code> · ${t('ダウンロード期限', 'Available until')} ${fmtTime(j.expiresAt, locale)}</p>`;
  }
  if (j.state === 'failed') return html`<div class="alert" role="alert">${t('エクスポートに失敗しました。もう一度お試しください。', 'The export failed; please try again.')} (${j.error ?? ''})</div>`;
  if (j.state === 'expired') return html`<p>${t('ダウンロード期限を過ぎました。', 'The download has expired.')}</p>`;
  const pct = j.percent ?? 0;
  return html`<p id="export-status" role="status" data-testid="export-progress">${j.state === 'queued' ? t('開始を待っています…', 'Waiting to start…') : t(`作成中… ${j.itemsDone} / ${j.itemsTotal} 件（${pct}%）`, `Building… ${j.itemsDone} of ${j.itemsTotal} items (${pct}%)`)}</p>
<progress class="progress" max="100" value="${pct}" aria-labelledby="export-status">${pct}%</progress>
<p class="hint">${t('このページは自動で更新されます。', 'This page refreshes by itself.')} <a href="/portal/export?job=${j.id}">${t('今すぐ更新', 'Refresh now')}</a></p>`;
}

export function registerPortal(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const customer = (req: FastifyRequest) => requireHuman(req, 'portal') as Customer;
  const pcOf = (req: FastifyRequest, reply: FastifyReply, p: Customer) => pageContext(deps, req, reply, p);

  // ---- the contract (R14.1: the fee only for the customer's admins) ------------------------
  app.get('/portal', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const c = await getCustomer(ctx.db, p.customerId);
    const contracts = (await listContracts(ctx.db, { customerId: p.customerId })).map((r) => contractView(r, p));
    const cert = contracts.length && contracts.every((x) => x.status === 'ended') && isCustomerAdminOf(p, p.customerId) ? await getDeletionCertificate(ctx.db, p.customerId) : null;
    const base = `/api/v1/customers/${p.customerId}/deletion-certificate`;
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('ご契約', 'Your contract'),
      path: '/portal',
      body: html`<p>${c.name}</p>
${canSeeFee(p, p.customerId) ? '' : html`<p class="hint">${t('利用料金はお客様の管理者のみが確認できます（第14条）。', "The fee is shown to your organisation's admins only (Art. 14).")}</p>`}
${contracts.map((x) => html`<section class="panel"><h2>${t('契約', 'Contract')} ${x.contractNumber}</h2>${contractFacts(x, pc)}</section>`)}
${cert ? html`<section class="panel"><h2>${t('データ消去証明書', 'Data deletion certificate')}</h2>
<p>${t('契約終了後、お客様のデータはバックアップを含めすべて消去されました（第10条）。', 'After the end of the contract all your data, backups included, has been deleted (Art. 10).')} ${t('発行', 'Issued')} ${fmtTime(cert.certificate.issuedAt, locale)}</p>
<p><a href="${base}.html">HTML</a> · <a href="${base}.pdf">PDF</a> · <a href="${base}.json">JSON</a></p></section>` : ''}`,
    });
  });

  // ---- termination notice (R22.3) -----------------------------------------------------------
  const terminationPage = async (req: FastifyRequest, reply: FastifyReply, p: Customer, state?: FormState, status = 200) => {
    requireCustomerAdmin(p);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const rows = (await listContracts(ctx.db, { customerId: p.customerId })).filter((r) => r.status !== 'ended');
    const earliest = addDays(japanDateOf(ctx.clock.now()), CUSTOMER_NOTICE_DAYS);
    const sections = await Promise.all(
      rows.map(async (r) => {
        const v = contractView(r, p);
        const notices = await listTerminationNotices(ctx.db, r.id);
        const filed = notices.at(-1);
        const formId = `terminate-${r.id}`;
        return html`<section class="panel"><h2>${t('契約', 'Contract')} ${v.contractNumber}</h2>${contractFacts(v, pc)}
${filed
  ? html`<div class="notice" role="status" data-testid="termination-filed"><p>${t('解約の通知を受け付けました。', 'Your termination notice has been received.')}</p>
<p>${t('受付', 'Received')}: ${fmtTime(filed.receivedAt, locale)}<br>${t('契約終了日', 'Contract ends on')}: <strong data-testid="end-date">${fmtDate(filed.endDate, locale)}</strong> ${t('（この日の終わりまでご利用いただけます）', '(usable through the end of that day, Japan time)')}</p><p>${NO_REFUND_NOTE[locale]}</p></div>`
  : form({
      id: formId,
      action: `/portal/contracts/${r.id}/termination-notice`,
      csrf: pc.csrf,
      submit: t('解約を通知する', 'File the termination notice'),
      danger: true,
      state,
      locale,
      fields: html`<p>${t(`解約は${CUSTOMER_NOTICE_DAYS}日前までの通知が必要です（第22条第3項）。本日の通知で最も早い終了日は`, `Termination needs ${CUSTOMER_NOTICE_DAYS} days' notice (Art. 22.3). Filed today, the earliest end date is`)} <strong data-testid="earliest-end">${fmtDate(earliest, locale)}</strong>${t('です。', '.')}</p>
${field(formId, { name: 'endDate', label: t('終了日（空欄なら最も早い日）', 'End date (empty: the earliest)'), type: 'date', hint: t(`${earliest} 以降、契約期間の終了日 ${v.term.end} まで`, `from ${earliest} to the end of the term, ${v.term.end}`) }, state)}
${field(formId, { name: 'note', label: t('備考', 'Note'), type: 'textarea' }, state)}
<p>${NO_REFUND_NOTE[locale]}</p>`,
    })}</section>`;
      }),
    );
    return shell(reply, pc, { face: 'portal', nav: nav(pc), title: t('解約の通知', 'Termination notice'), path: '/portal/termination', status, body: rows.length ? sections : html`<p>${t('有効な契約はありません。', 'No contract in force.')}</p>` });
  };
  app.get('/portal/termination', { schema: { hide: true } }, async (req, reply) => terminationPage(req, reply, customer(req)));
  app.post('/portal/contracts/:contractId/termination-notice', { schema: { hide: true, params: z.object({ contractId: z.uuid() }) } }, async (req, reply) => {
    const p = customer(req);
    const f = (req.body ?? {}) as FormData;
    checkCsrf(deps.csrf, req, f);
    requireCustomerAdmin(p);
    const { contractId } = req.params as { contractId: string };
    const formId = `terminate-${contractId}`;
    const locale = pcOf(req, reply, p).locale;
    const rows = await listContracts(ctx.db, { customerId: p.customerId });
    const row = rows.find((r) => r.id === contractId);
    if (!row) throw errors.notFound('契約 / contract', contractId);
    const parsed = validate(terminationNoticeBody, { endDate: str(f, 'endDate'), note: str(f, 'note') ?? '' }, locale);
    if (!parsed.ok) return terminationPage(req, reply, p, { form: formId, values: f, errors: parsed.errors }, 400);
    if (parsed.data.endDate !== undefined && parsed.data.endDate > row.term_end) {
      return terminationPage(req, reply, p, refusalState(formId, f, errors.invalidField('endDate', `契約期間の終了日（${row.term_end}）より後の日付は指定できません。`, `must not be after the end of the term (${row.term_end})`), locale), 400);
    }
    try {
      await fileTerminationNotice(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, contractId, { endDate: parsed.data.endDate, note: parsed.data.note });
    } catch (err) {
      if (err instanceof HokanError && err.httpStatus < 500 && err.code !== 'not_found') return terminationPage(req, reply, p, refusalState(formId, f, err, locale), err.httpStatus);
      throw err;
    }
    return seeOther(reply, '/portal/termination');
  });

  // ---- data export with progress (R10.5) ----------------------------------------------------
  app.get('/portal/export', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    requireCustomerAdmin(p);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const jobs = await listExportJobs(ctx.db, ctx.clock, p.customerId);
    const wanted = str(req.query as FormData, 'job');
    const current = wanted ? await getExportJob(ctx.db, ctx.clock, p.customerId, wanted).catch(() => undefined) : jobs[0];
    const running = current && (current.state === 'queued' || current.state === 'running');
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('データのエクスポート', 'Data export'),
      path: '/portal/export',
      // Progress without JavaScript: the page reloads itself every 2 seconds while the job runs.
      ...(running ? { head: html`<meta http-equiv="refresh" content="2;url=/portal/export?job=${current.id}">` } : {}),
      body: html`<p>${t('お客様のデータ（レコードとファイル）の完全な写しをZIPファイルで取り出せます（第10条）。', 'Take a complete copy of your data (records and files) as one ZIP file (Art. 10).')}</p>
${current ? html`<section class="panel"><h2>${t('最新のエクスポート', 'Latest export')} · ${fmtTime(current.createdAt, locale)}</h2>${exportProgress(current, pc)}</section>` : ''}
${running ? '' : form({ id: 'export', action: '/portal/export', csrf: pc.csrf, submit: t('エクスポートを開始', 'Start an export'), state: undefined, locale, fields: '' })}
${jobs.length > 1 ? html`<h2>${t('これまでのエクスポート', 'Earlier exports')}</h2><ul>${jobs.slice(1).map((j) => html`<li>${fmtTime(j.createdAt, locale)} · ${j.state} · ${j.requestedBy}${j.state === 'done' ? html` · <a href="/portal/exports/${j.id}/download">${t('ダウンロード', 'Download')}</a>` : ''}</li>`)}</ul>` : ''}`,
    });
  });
  app.post('/portal/export', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    checkCsrf(deps.csrf, req, (req.body ?? {}) as FormData);
    requireCustomerAdmin(p);
    // The same rule as the download API: not after the end, not while suspended or stopped (R7.4, R10.7, R11.1).
    await assertCustomerServed(ctx, p.customerId);
    const job = await requestExport(ctx.db, ctx.clock, ctx.queue, { customerId: p.customerId, actor: { ...actorOf(p), id: p.userId }, sourceIp: req.ip ?? null });
    return seeOther(reply, `/portal/export?job=${job.id}`);
  });
  // No automatic HEAD: it would run this handler, open the archive and log a download nobody took.
  app.get('/portal/exports/:exportId/download', { exposeHeadRoute: false, schema: { hide: true, params: z.object({ exportId: z.uuid() }) } }, async (req, reply) => {
    const p = customer(req);
    requireCustomerAdmin(p);
    await assertCustomerServed(ctx, p.customerId);
    // R10.5: each download is logged in the data access log, as who took it and from where.
    const who = { customerId: p.customerId, actor: actorOf(p), sourceIp: req.ip ?? null };
    const { job, stream } = await openExportDownload(ctx.db, ctx.clock, ctx.files, who, (req.params as { exportId: string }).exportId);
    return reply
      .header('content-type', 'application/zip')
      .header('content-length', String(job.bytes))
      .header('content-disposition', attachmentDisposition(job.filename ?? 'export.zip'))
      .header('cache-control', 'no-store')
      .send(stream);
  });

  // ---- users and API tokens (R18.1) --------------------------------------------------------
  const usersPage = async (req: FastifyRequest, reply: FastifyReply, p: Customer, state?: FormState, status = 200, newToken?: string) => {
    requireCustomerAdmin(p);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const users = await listCustomerUsers(ctx.db, p.customerId);
    const tokens = await listApiTokens(ctx.db, p.customerId);
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('ユーザーとAPIトークン', 'Users and API tokens'),
      path: '/portal/users',
      status,
      body: html`${doneNote(req, { user: t('ユーザーを追加しました。', 'The user was added.'), revoked: t('トークンを無効にしました。', 'The token was revoked.') })}
<p class="hint">${t('IDとパスワードの管理はお客様の責任で行ってください（第18条）。パスワードは復元できない形で保存しています。', 'You are responsible for managing IDs and passwords (Art. 18). Passwords are stored in a form that cannot be recovered.')}</p>
<h2>${t('ユーザー', 'Users')}</h2>
<div class="table-wrap"><table><thead><tr><th scope="col">ID</th><th scope="col">${t('氏名', 'Name')}</th><th scope="col">${t('メール', 'E-mail')}</th><th scope="col">${t('権限', 'Role')}</th><th scope="col">${t('状態', 'State')}</th></tr></thead>
<tbody>${users.map((u) => html`<tr><td>${u.loginId}</td><td>${u.displayName}</td><td>${u.email}</td><td>${u.roles.map((r) => (r === 'customer_admin' ? t('管理者', 'admin') : t('メンバー', 'member'))).join(', ')}</td><td>${u.disabled ? t('無効', 'disabled') : t('有効', 'active')}</td></tr>`)}</tbody></table></div>
<details class="action"${state?.form === 'add-user' ? html` open` : ''}><summary>${t('ユーザーを追加', 'Add a user')}</summary>
${form({ id: 'add-user', action: '/portal/users', csrf: pc.csrf, submit: t('追加する', 'Add'), state, locale, fields: html`
${field('add-user', { name: 'loginId', label: 'ID', hint: t('半角英小文字・数字・. _ - で3〜64文字', '3–64 lower-case letters, digits, ".", "_" or "-"'), required: true, autocomplete: 'off' }, state)}
${field('add-user', { name: 'displayName', label: t('氏名', 'Name'), required: true }, state)}
${field('add-user', { name: 'email', label: t('メールアドレス', 'E-mail'), type: 'email', required: true }, state)}
${field('add-user', { name: 'role', label: t('権限', 'Role'), type: 'select', options: [{ value: 'member', label: t('メンバー', 'member') }, { value: 'customer_admin', label: t('管理者', 'admin') }] }, state)}
${field('add-user', { name: 'password', label: t('初期パスワード', 'Initial password'), type: 'password', hint: t('12文字以上', 'at least 12 characters'), required: true, autocomplete: 'new-password' }, state && { ...state, values: { ...state.values, password: '' } })}` })}
</details>
<h2>${t('APIトークン（本件ソフトウェア用）', 'API tokens (for the Software)')}</h2>
${newToken ? html`<div class="notice" role="status"><p>${t('新しいトークンです。この画面を閉じると二度と表示されません。', 'Your new token. It will not be shown again.')}</p><p><code data-testid="new-token">${newToken}</code></p></div>` : ''}
<div class="table-wrap"><table><thead><tr><th scope="col">${t('名前', 'Name')}</th><th scope="col">${t('作成', 'Created')}</th><th scope="col">${t('最終利用', 'Last used')}</th><th scope="col">${t('状態', 'State')}</th></tr></thead>
<tbody>${tokens.map((k) => html`<tr><td>${k.name}</td><td>${fmtTime(k.createdAt, locale)}</td><td>${fmtTime(k.lastUsedAt, locale)}</td><td>${k.revokedAt ? html`${t('無効', 'revoked')} ${fmtTime(k.revokedAt, locale)}` : actionButton(pc, `/portal/api-tokens/${k.id}/revoke`, t('無効にする', 'Revoke'), {}, true)}</td></tr>`)}</tbody></table></div>
<details class="action"${state?.form === 'add-token' ? html` open` : ''}><summary>${t('トークンを発行', 'Issue a token')}</summary>
${form({ id: 'add-token', action: '/portal/api-tokens', csrf: pc.csrf, submit: t('発行する', 'Issue'), state, locale, fields: field('add-token', { name: 'name', label: t('名前（用途）', 'Name (what it is for)'), required: true }, state) })}
</details>`,
    });
  };
  app.get('/portal/users', { schema: { hide: true } }, async (req, reply) => usersPage(req, reply, customer(req)));
  app.post('/portal/users', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const f = (req.body ?? {}) as FormData;
    checkCsrf(deps.csrf, req, f);
    requireCustomerAdmin(p);
    const locale = pcOf(req, reply, p).locale;
    const parsed = validate(customerUserBody, { loginId: str(f, 'loginId') ?? '', displayName: str(f, 'displayName') ?? '', email: str(f, 'email') ?? '', role: str(f, 'role') ?? '', password: typeof f['password'] === 'string' ? f['password'] : '' }, locale);
    if (!parsed.ok) return usersPage(req, reply, p, { form: 'add-user', values: f, errors: parsed.errors }, 400);
    try {
      await createCustomerUser(ctx.db, ctx.clock, actorOf(p), { ...parsed.data, customerId: p.customerId });
    } catch (err) {
      if (err instanceof HokanError && err.httpStatus < 500) return usersPage(req, reply, p, refusalState('add-user', f, err, locale), err.httpStatus);
      throw err;
    }
    return seeOther(reply, '/portal/users?done=user');
  });
  app.post('/portal/api-tokens', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const f = (req.body ?? {}) as FormData;
    checkCsrf(deps.csrf, req, f);
    requireCustomerAdmin(p);
    const locale = pcOf(req, reply, p).locale;
    const parsed = validate(apiTokenBody, { name: str(f, 'name') ?? '' }, locale);
    if (!parsed.ok) return usersPage(req, reply, p, { form: 'add-token', values: f, errors: parsed.errors }, 400);
    const { token } = await createApiToken(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, p.customerId, parsed.data.name);
    // Shown once, in this response only (not through a redirect that could be bookmarked or cached).
    return usersPage(req, reply, p, undefined, 201, token);
  });
  app.post('/portal/api-tokens/:tokenId/revoke', { schema: { hide: true, params: z.object({ tokenId: z.uuid() }) } }, async (req, reply) => {
    const p = customer(req);
    checkCsrf(deps.csrf, req, (req.body ?? {}) as FormData);
    requireCustomerAdmin(p);
    await revokeApiToken(ctx.db, ctx.clock, actorOf(p), p.customerId, (req.params as { tokenId: string }).tokenId);
    return seeOther(reply, '/portal/users?done=revoked');
  });

  // ---- incidents and stops that touched the customer (R8.3, R20, R7.2–R7.3) ---------------
  app.get('/portal/incidents', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const incidents = await listIncidents(ctx.db, ctx.clock, p.customerId);
    const now = ctx.clock.now();
    const stops = (await listStops(ctx.db, { customerId: p.customerId })).map((s) => stopView(s, now, p.customerId));
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('障害と停止', 'Incidents and stops'),
      path: '/portal/incidents',
      body: html`<h2>${t('障害', 'Incidents')}</h2>
<p class="hint">${t('目標: 発生から1時間以内の検知、24時間以内の復旧（第8条）。賠償責任は、弊社の責による全面的な利用不能が弊社が知った時から24時間以上続いた場合に限ります（第20条）。', "Targets: detection within 1 h of occurrence, service resumed within 24 h (Art. 8). The provider is liable only when the service is entirely unusable through its fault for 24 h or more from when it learned of it (Art. 20).")}</p>
${incidentTable(incidents, pc)}
<h2>${t('計画停止・緊急停止', 'Planned and emergency stops')}</h2>
${stops.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('種類', 'Kind')}</th><th scope="col">${t('理由', 'Reason')}</th><th scope="col">${t('期間', 'Period')}</th><th scope="col">${t('状態', 'State')}</th></tr></thead><tbody>${stops.map((s) => html`<tr><td>${s.kind === 'planned' ? t('計画停止', 'planned') : t('緊急停止', 'emergency')}</td><td>${s.reasonLabel[locale]}<br>${s.description}</td><td>${fmtTime(s.startsAt, locale)} – ${s.endsAt ? fmtTime(s.endsAt, locale) : t('未定', 'open')}</td><td>${s.state}</td></tr>`)}</tbody></table></div>` : html`<p>${t('該当する停止はありません。', 'No stops.')}</p>`}`,
    });
  });
}
