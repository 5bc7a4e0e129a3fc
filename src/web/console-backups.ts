import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { backupView, getBackup, listBackupChecks, listBackups, type BackupCheckView, type BackupView } from '../backup/catalog.js';
import { BACKUP_CUSTOMER, BACKUP_DRILL_CUSTOMER, BACKUP_VERIFY } from '../backup/jobs.js';
import { offsiteStatus } from '../backup/offsite.js';
import type { RestoreProgress } from '../backup/restore.js';
import { assertTargetConfigured, getRestoreJob, listRestoreJobs, requestRestore, type RestoreJobState, type RestoreJobView } from '../backup/restore-jobs.js';
import { listCustomers, type CustomerView } from '../contracts/customers.js';
import { actorOf, hasOperatorRole, type OperatorRole } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import { horizontalBars } from './charts.js';
import { consoleKit, type PageFn } from './console-kit.js';
import { html, type Html } from './html.js';
import { fmtBytes, fmtTime, type T } from './i18n.js';
import { checked, field, form, str, type FormState, type WebDeps } from './kit.js';
import { actionButton, doneNote, type PageContext } from './shell.js';

/*
 * R10.1–R10.4 in the operator console: the catalog, the remote-copy lag, backing up now, and —
 * what used to need the CLI — verifying a backup, running a restore drill, and restoring a
 * customer as a job whose progress page refreshes itself (no script). Every write goes through the
 * backup domain (the same functions as the API), queued: reading or restoring a backup can take
 * minutes, longer than a request should.
 */

const READ: OperatorRole[] = ['admin', 'operator', 'support'];
const WRITE: OperatorRole[] = ['admin', 'operator'];
// R10.4: replacing a customer's data is the admins' decision alone, as in the API.
const RESTORE: OperatorRole[] = ['admin'];
const target = z.enum(['primary', 'offsite']);

const DONE = (t: T): Record<string, string> => ({
  queued: t('バックアップを開始しました。', 'The backup was queued.'),
  drill: t('復元訓練を開始しました。結果は「検証と訓練の結果」に表示されます。', 'The restore drill was queued; its result shows under "Checks and drills".'),
  verify: t('検証を開始しました。結果は「検証と訓練の結果」に表示されます。', 'The verification was queued; its result shows under "Checks and drills".'),
});

const STATE_LABEL: Record<RestoreJobState, [string, string]> = { queued: ['待機中', 'queued'], running: ['実行中', 'running'], done: ['完了', 'done'], failed: ['失敗', 'failed'] };
const PHASE_LABEL: Record<RestoreProgress['phase'], [string, string]> = {
  manifest: ['目録の読み込み', 'Reading the manifest'],
  files: ['ファイルの復号と配置', 'Decrypting and staging files'],
  records: ['レコードの置き換え', 'Replacing the records'],
  cleanup: ['使われなくなったファイルの削除', 'Removing files no longer used'],
  done: ['完了', 'Done'],
};
const CHECK_KIND: Record<BackupCheckView['kind'], [string, string]> = { verify: ['検証', 'verify'], drill: ['訓練（復元と比較）', 'drill (restore and compare)'] };
const TARGET_LABEL: Record<'primary' | 'offsite', [string, string]> = { primary: ['バックアップ先', 'primary'], offsite: ['遠隔地', 'remote site'] };

const restoreBody = z.object({ backupId: z.uuid({ error: 'choose a backup' }), from: target, confirmCustomerCode: z.string().trim().min(1).max(100), acknowledge: z.boolean() });
const drillBody = z.object({ customerId: z.uuid({ error: 'choose a customer' }), target });
const customerBody = z.object({ customerId: z.uuid({ error: 'choose a customer' }) });

export function registerConsoleBackups(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const { operator, pcOf, page, param, action } = consoleKit(app, deps);
  const l = (pc: PageContext, pair: [string, string]) => pc.t(pair[0], pair[1]);
  const customerName = (customers: CustomerView[], id: string) => customers.find((c) => c.id === id)?.name ?? id;
  const backupLabel = (pc: PageContext, customers: CustomerView[], b: BackupView) => `${customerName(customers, b.customerId)} · ${fmtTime(b.startedAt, pc.locale)} · ${b.generation}${b.offsite.state === 'copied' ? pc.t(' · 遠隔地にも複製済み', ' · also at the remote site') : ''}`;

  const progressOf = (pc: PageContext, j: RestoreJobView): Html => {
    const { t } = pc;
    const pct = j.percent ?? 0;
    const phase = j.phase ? l(pc, PHASE_LABEL[j.phase]) : '';
    const text =
      j.state === 'queued' ? t('開始を待っています…', 'Waiting to start…')
      : j.state === 'done' ? t(`完了しました（レコード ${j.records ?? '—'} 件・ファイル ${j.files ?? '—'} 件）。`, `Done (${j.records ?? '—'} records, ${j.files ?? '—'} files).`)
      : j.state === 'failed' ? t('失敗しました。現在のデータは変更されていません。', 'Failed; the live data was not changed.')
      : t(`${phase}… ${j.done} / ${j.total}（全体の${pct}%）`, `${phase}… ${j.done} of ${j.total} (${pct}% overall)`);
    return html`<p id="restore-status-${j.id}" role="status" data-testid="restore-progress">${text}</p>
<progress class="progress" max="100" value="${pct}" aria-labelledby="restore-status-${j.id}">${pct}%</progress>`;
  };

  const checksTable = (pc: PageContext, customers: CustomerView[], backups: BackupView[], checks: BackupCheckView[]): Html => {
    const { t, locale } = pc;
    if (!checks.length) return html`<p>${t('まだありません。', 'None yet.')}</p>`;
    return html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('日時', 'When')}</th><th scope="col">${t('種類', 'Kind')}</th><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('バックアップ', 'Backup')}</th><th scope="col">${t('読み取り元', 'Target')}</th><th scope="col">${t('結果', 'Result')}</th><th scope="col">${t('問題', 'Problems')}</th></tr></thead>
<tbody>${checks.map((c) => {
  const b = backups.find((x) => x.id === c.backupId);
  return html`<tr data-testid="backup-check"><td>${fmtTime(c.finishedAt, locale)}</td><td>${l(pc, CHECK_KIND[c.kind])}</td><td>${customerName(customers, c.customerId)}</td><td>${b ? fmtTime(b.startedAt, locale) : c.backupId}</td><td>${l(pc, TARGET_LABEL[c.target])}</td><td>${c.ok ? t('正常', 'ok') : html`<strong class="field-error">${t('失敗', 'failed')}</strong>`}</td><td>${c.problems.length ? html`<ul>${c.problems.slice(0, 5).map((x) => html`<li>${x}</li>`)}</ul>${c.problems.length > 5 ? t(`ほか${c.problems.length - 5}件`, `and ${c.problems.length - 5} more`) : ''}` : '—'}</td></tr>`;
})}</tbody></table></div>`;
  };

  const backupsPage: PageFn = async (req, reply, p, state?: FormState, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const customers = await listCustomers(ctx.db);
    const backups = (await listBackups(ctx.db, { limit: 200 })).map(backupView);
    const lag = await offsiteStatus(ctx.db, ctx.clock, ctx.backup);
    const restores = await listRestoreJobs(ctx.db, { limit: 20 });
    const checks = await listBackupChecks(ctx.db, { limit: 50 });
    const configured = ctx.backup.primary !== null;
    const canRun = hasOperatorRole(p, ...WRITE) && configured;
    const canRestore = hasOperatorRole(p, ...RESTORE) && configured;
    const good = backups.filter((b) => b.state === 'good');
    const open = (id: string) => (state?.form === id ? html` open` : '');
    const targets = [{ value: 'primary', label: l(pc, TARGET_LABEL.primary) }, ...(ctx.backup.offsite ? [{ value: 'offsite', label: l(pc, TARGET_LABEL.offsite) }] : [])];
    const customerOptions = customers.map((c) => ({ value: c.id, label: `${c.name}（${c.code}）` }));
    return page(reply, pc, t('バックアップ', 'Backups'), '/console/backups', html`${doneNote(req, DONE(t))}
${state?.form === 'verify' ? html`<div class="alert" role="alert">${state.message ?? Object.values(state.errors).join(' ')}</div>` : ''}
<dl class="facts"><dt>${t('バックアップ先', 'Backup target')}</dt><dd>${configured ? t('設定済み（別媒体）', 'configured (separate medium)') : t('未設定', 'not configured')}</dd>
<dt>${t('遠隔地', 'Remote site')}</dt><dd>${ctx.backup.offsite ? t(`設定済み・${ctx.backup.offsiteCycleDays}日ごと`, `configured, every ${ctx.backup.offsiteCycleDays} days`) : t('未設定', 'not configured')}</dd>
<dt>${t('毎日の実行', 'Daily at')}</dt><dd>${String(ctx.backup.dailyAtJstHour).padStart(2, '0')}:00 JST</dd></dl>
<h2>${t('遠隔地へのコピーの遅れ', 'Remote-copy lag')}</h2>
${lag.length ? horizontalBars(lag.map((x) => ({ label: customerName(customers, x.customerId), value: Math.round((x.lagHours ?? 0) * 10) / 10 })), t('お客様ごとの遠隔地コピーの遅れ（時間）', 'Remote-copy lag per customer (hours)'), '#1f4e99') : html`<p>${t('データがありません。', 'No data.')}</p>`}
${lag.some((x) => x.overdue) ? html`<div class="alert" role="alert">${t('遠隔地へのコピーが周期を過ぎています', 'Remote copies are overdue for')}: ${lag.filter((x) => x.overdue).map((x) => customerName(customers, x.customerId)).join('、')}</div>` : ''}
${canRun ? html`<details class="action"${open('backup-now')}><summary>${t('今すぐバックアップ', 'Back up now')}</summary>${form({ id: 'backup-now', action: '/console/backups', csrf: pc.csrf, submit: t('開始する', 'Start'), state, locale, fields: field('backup-now', { name: 'customerId', label: t('お客様', 'Customer'), type: 'select', options: customerOptions }, state) })}</details>
<details class="action"${open('drill')}><summary>${t('訓練を実行', 'Run a restore drill')}</summary>${form({ id: 'drill', action: '/console/backups/drills', csrf: pc.csrf, submit: t('訓練を開始する', 'Start the drill'), state, locale, fields: html`<p class="hint">${t('最新の正常なバックアップを一時領域に復元し、元のデータと件数・ハッシュを比較します。お客様のデータは変更されません。', "The latest good backup is restored into a scratch area and compared with the source (counts and hashes). The customer's data is not changed.")}</p>
${field('drill', { name: 'customerId', label: t('お客様', 'Customer'), type: 'select', options: customerOptions }, state)}
${field('drill', { name: 'target', label: t('読み取り元', 'Read from'), type: 'select', options: targets }, state)}` })}</details>` : ''}
${canRestore ? html`<details class="action"${open('restore')}><summary>${t('復元', 'Restore')}</summary>${good.length ? form({ id: 'restore', action: '/console/backups/restores', csrf: pc.csrf, submit: t('このバックアップに戻す', 'Restore to this backup'), danger: true, state, locale, fields: html`<p class="hint">${t('お客様の現在のデータ（レコードとファイル）をすべて、選んだバックアップの内容に置き換えます。途中で失敗した場合、現在のデータは変更されません。', "Every record and file the customer has now is replaced by the chosen backup. If the restore fails, the live data stays as it is.")}</p>
${field('restore', { name: 'backupId', label: t('バックアップ', 'Backup'), type: 'select', options: good.map((b) => ({ value: b.id, label: backupLabel(pc, customers, b) })) }, state)}
${field('restore', { name: 'from', label: t('復元元', 'Restore from'), type: 'select', options: targets, hint: t('遠隔地からは、遠隔地に複製済みのバックアップだけを復元できます。', 'Only backups copied to the remote site can be restored from there.') }, state)}
${field('restore', { name: 'confirmCustomerCode', label: t('確認のため、復元するお客様のコードを入力', 'To confirm, type the code of the customer to restore'), required: true, autocomplete: 'off', hint: t('選んだバックアップのお客様のコード（「お客様と契約」に表示）と一致する必要があります。', "Must match the code of the chosen backup's customer (shown under Customers and contracts).") }, state)}
${field('restore', { name: 'acknowledge', label: t('このお客様の現在のデータが置き換えられることを理解しました', "I understand that this customer's current data will be replaced"), type: 'checkbox', required: true }, state)}` }) : html`<p>${t('復元できる正常なバックアップがありません。', 'There is no good backup to restore.')}</p>`}</details>` : ''}
<h2>${t('復元', 'Restores')}</h2>
${restores.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('依頼', 'Requested')}</th><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('バックアップ', 'Backup')}</th><th scope="col">${t('復元元', 'From')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('依頼者', 'By')}</th></tr></thead>
<tbody>${restores.map((j) => {
  const b = backups.find((x) => x.id === j.backupId);
  return html`<tr data-testid="restore-job"><td><a href="/console/backups/restores/${j.id}">${fmtTime(j.createdAt, locale)}</a></td><td>${customerName(customers, j.customerId)}</td><td>${b ? fmtTime(b.startedAt, locale) : j.backupId}</td><td>${l(pc, TARGET_LABEL[j.from])}</td><td>${l(pc, STATE_LABEL[j.state])}${j.state === 'running' && j.phase ? html` · ${l(pc, PHASE_LABEL[j.phase])} ${j.percent ?? 0}%` : ''}${j.state === 'failed' && j.error ? html`<br><span class="muted">${j.error}</span>` : ''}</td><td>${j.requestedBy.label}</td></tr>`;
})}</tbody></table></div>` : html`<p>${t('まだありません。', 'None yet.')}</p>`}
<h2>${t('検証と訓練の結果', 'Checks and drills')}</h2>
${checksTable(pc, customers, backups, checks)}
<h2>${t('カタログ', 'Catalog')}</h2>
<div class="table-wrap"><table><thead><tr><th scope="col">${t('開始', 'Started')}</th><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('世代', 'Generation')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('件数', 'Items')}</th><th scope="col">${t('サイズ', 'Size')}</th><th scope="col">${t('遠隔地', 'Remote')}</th>${canRun ? html`<th scope="col">${t('操作', 'Actions')}</th>` : ''}</tr></thead>
<tbody>${backups.map((b) => html`<tr><td>${fmtTime(b.startedAt, locale)}</td><td>${customerName(customers, b.customerId)}</td><td>${b.generation}</td><td>${b.state}${b.error ? html`<br><span class="muted">${b.error}</span>` : ''}</td><td>${b.records ?? '—'} / ${b.files ?? '—'}</td><td>${b.storedBytes === null ? '—' : fmtBytes(b.storedBytes)}</td><td>${b.offsite.state}${b.offsite.copiedAt ? html`<br>${fmtTime(b.offsite.copiedAt, locale)}` : ''}</td>${canRun ? html`<td>${b.state === 'good' ? html`${actionButton(pc, `/console/backups/${b.id}/verify`, t('検証', 'Verify'), { target: 'primary' })}${b.offsite.state === 'copied' && ctx.backup.offsite ? actionButton(pc, `/console/backups/${b.id}/verify`, t('遠隔地の複製を検証', 'Verify the remote copy'), { target: 'offsite' }) : ''}` : ''}</td>` : ''}</tr>`)}</tbody></table></div>
<p class="hint">${t('復元は管理者がこのページから開始し、進捗は復元ごとのページに表示されます。CLI（hokan backup restore|verify|drill）とAPIでも同じ操作ができます。', 'Admins start a restore on this page and follow it on its own progress page. The CLI (hokan backup restore|verify|drill) and the API do the same.')}</p>`, status);
  };
  app.get('/console/backups', { schema: { hide: true } }, async (req, reply) => backupsPage(req, reply, operator(req, ...READ)));

  const backupTargetConfigured = () => {
    if (!ctx.backup.primary) throw errors.conflict('バックアップ先（HOKAN_BACKUP_URL）が設定されていません。', 'No backup target is configured (HOKAN_BACKUP_URL).');
  };
  const knownCustomer = async (id: string) => {
    if (!(await listCustomers(ctx.db)).some((c) => c.id === id)) throw errors.invalidField('customerId', '一覧から選んでください。', 'choose a customer from the list');
  };

  action('/console/backups', {
    form: () => 'backup-now',
    roles: WRITE,
    schema: customerBody,
    input: (f) => ({ customerId: str(f, 'customerId') ?? '' }),
    run: async (d) => {
      backupTargetConfigured();
      await knownCustomer(d.customerId);
      return ctx.queue.enqueue(ctx.db, BACKUP_CUSTOMER, { customerId: d.customerId, generation: 'manual' });
    },
    page: backupsPage,
    redirect: () => '/console/backups?done=queued',
  });

  action('/console/backups/drills', {
    form: () => 'drill',
    roles: WRITE,
    schema: drillBody,
    input: (f) => ({ customerId: str(f, 'customerId') ?? '', target: str(f, 'target') ?? 'primary' }),
    run: async (d) => {
      await knownCustomer(d.customerId);
      assertTargetConfigured(ctx.backup, d.target);
      return ctx.queue.enqueue(ctx.db, BACKUP_DRILL_CUSTOMER, { customerId: d.customerId, target: d.target }, { maxAttempts: 1 });
    },
    page: backupsPage,
    redirect: () => '/console/backups?done=drill',
  });

  const bid = (r: FastifyRequest) => param(r, 'backupId');
  action('/console/backups/:backupId/verify', {
    form: () => 'verify',
    roles: WRITE,
    schema: z.object({ target }),
    input: (f) => ({ target: str(f, 'target') ?? 'primary' }),
    run: async (d, _p, r) => {
      const b = await getBackup(ctx.db, bid(r));
      assertTargetConfigured(ctx.backup, d.target);
      if (d.target === 'offsite' && b.offsite_state !== 'copied') throw errors.conflict('このバックアップは遠隔地に複製されていません。', `Backup ${b.id} has no remote copy to verify (state ${b.offsite_state}).`);
      return ctx.queue.enqueue(ctx.db, BACKUP_VERIFY, { backupId: b.id, target: d.target }, { maxAttempts: 1 });
    },
    page: backupsPage,
    redirect: () => '/console/backups?done=verify',
  });

  // R10.4: the customer is confirmed by typing its code (not picked from the same list as the
  // backup), and the admin ticks that the data will be replaced; a slip of the mouse restores nothing.
  action('/console/backups/restores', {
    form: () => 'restore',
    roles: RESTORE,
    schema: restoreBody,
    input: (f) => ({ backupId: str(f, 'backupId') ?? '', from: str(f, 'from') ?? 'primary', confirmCustomerCode: str(f, 'confirmCustomerCode') ?? '', acknowledge: checked(f, 'acknowledge') }),
    run: async (d, p) => {
      const backup = await getBackup(ctx.db, d.backupId);
      if (!d.acknowledge) throw errors.invalidField('acknowledge', 'データが置き換えられることを確認して、チェックを入れてください。', 'tick the box to confirm that the data will be replaced');
      const typed = (await listCustomers(ctx.db)).find((c) => c.code === d.confirmCustomerCode);
      if (!typed || typed.id !== backup.customer_id) {
        throw errors.invalidField('confirmCustomerCode', '選んだバックアップのお客様のコードと一致しません。', "does not match the code of the chosen backup's customer");
      }
      return requestRestore({ db: ctx.db, clock: ctx.clock, queue: ctx.queue, settings: ctx.backup }, actorOf(p), { backupId: backup.id, from: d.from, confirmCustomerId: typed.id });
    },
    fieldOf: (k) => (k === 'confirmCustomerId' ? 'confirmCustomerCode' : k),
    page: backupsPage,
    redirect: (_r, result) => `/console/backups/restores/${(result as RestoreJobView).id}`,
  });

  app.get('/console/backups/restores/:restoreJobId', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, ...READ);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const job = await getRestoreJob(ctx.db, param(req, 'restoreJobId'));
    const customers = await listCustomers(ctx.db);
    const backup = backupView(await getBackup(ctx.db, job.backupId));
    const running = job.state === 'queued' || job.state === 'running';
    const self = `/console/backups/restores/${job.id}`;
    return page(reply, pc, t('復元の進捗', 'Restore progress'), '/console/backups', html`<p><a href="/console/backups">${t('バックアップに戻る', 'Back to backups')}</a></p>
<section class="panel"><h2>${customerName(customers, job.customerId)}</h2>
<dl class="facts"><dt>${t('バックアップ', 'Backup')}</dt><dd>${fmtTime(backup.startedAt, locale)} · ${backup.generation}</dd>
<dt>${t('復元元', 'From')}</dt><dd>${l(pc, TARGET_LABEL[job.from])}</dd>
<dt>${t('状態', 'State')}</dt><dd data-testid="restore-state">${l(pc, STATE_LABEL[job.state])}</dd>
<dt>${t('段階', 'Phase')}</dt><dd>${job.phase ? l(pc, PHASE_LABEL[job.phase]) : '—'}${job.phase && job.state === 'running' ? html` · ${job.done} / ${job.total}` : ''}</dd>
<dt>${t('依頼者', 'Requested by')}</dt><dd>${job.requestedBy.label} · ${fmtTime(job.createdAt, locale)}</dd>
${job.startedAt ? html`<dt>${t('開始', 'Started')}</dt><dd>${fmtTime(job.startedAt, locale)}</dd>` : ''}
${job.finishedAt ? html`<dt>${t('終了', 'Finished')}</dt><dd>${fmtTime(job.finishedAt, locale)}</dd>` : ''}</dl>
${progressOf(pc, job)}
${job.error ? html`<div class="${job.state === 'failed' ? 'alert' : 'notice'}" role="${job.state === 'failed' ? 'alert' : 'status'}">${job.error}</div>` : ''}
${running ? html`<p class="hint">${t('このページは自動で更新されます。', 'This page refreshes by itself.')} <a href="${self}">${t('今すぐ更新', 'Refresh now')}</a></p>` : ''}</section>`,
      200,
      // Progress without JavaScript: the page reloads itself every 2 seconds while the job runs.
      running ? html`<meta http-equiv="refresh" content="2;url=${self}">` : undefined);
  });
}
