import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { actorOf, hasOperatorRole, type OperatorRole } from '../core/auth/principal.js';
import { getIncident } from '../incidents/incidents.js';
import { COMPONENT_KEY_RE, createComponent, deleteComponent, incidentComponentMap, listComponents, setIncidentComponents, updateComponent } from '../notify/components.js';
import { deliveryKick } from '../notify/jobs.js';
import { listIncidentNotices, postIncidentNotice, previewIncidentNotice, type NoticeContext } from '../notify/notices.js';
import { fieldsOf, noticeBody } from '../notify/routes.js';
import { INCIDENT_STAGES, type IncidentStage } from '../notify/templates.js';
import { createWebhook, deleteWebhook, listWebhookDeliveries, listWebhooks, setWebhookActive } from '../notify/webhooks.js';
import { consoleKit, num, type Operator, type PageFn } from './console-kit.js';
import { html, type Html } from './html.js';
import { fmtTime, type T } from './i18n.js';
import { field, form, jstInstant, list, str, toJstLocal, type FormData, type FormState, type WebDeps } from './kit.js';
import { actionButton, doneNote, type PageContext } from './shell.js';

/*
 * R8.1 R8.2 in the operator console: an incident's notices from the templates (第一報 · 続報 ·
 * 復旧報 · 障害報告) with a server-side preview, the components it affects, the notices posted with
 * their delivery summary; the status page's components; webhooks. Every write is the notify
 * domain's function (validation, audit entry, outbox e-mail in the same transaction).
 */

const WRITE: OperatorRole[] = ['admin', 'operator'];
const READ: OperatorRole[] = ['admin', 'operator', 'support'];
const STAGE_LABEL: Record<IncidentStage, [string, string]> = {
  first: ['第一報（発生のお知らせ）', 'First notice (it occurred)'],
  update: ['続報', 'Update'],
  recovery: ['復旧報（最終報）', 'Recovery notice (final)'],
  report: ['障害報告書', 'Incident report'],
};
const BILINGUAL = ['details', 'cause', 'impact', 'countermeasures'] as const;
const DONE = (t: T): Record<string, string> => ({
  saved: t('記録しました。', 'Saved.'),
  posted: t('お知らせを掲載し、メールの送信を開始しました。', 'The notice is posted and its e-mails are being sent.'),
  deleted: t('削除しました。', 'Deleted.'),
});

/** "2026-11-24 10:00 | 日本語 | English" per line (Japan time). */
function parseTimeline(text: string | undefined): Array<{ at: string; ja: string; en: string }> | undefined {
  if (!text) return undefined;
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const [when = '', ja = '', en = ''] = line.split('|').map((x) => x.trim());
      const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})$/.exec(when);
      return { at: m ? `${m[1]}T${m[2]}:00+09:00` : when, ja, en };
    });
}

/** The notice form's fields → the API's notice body. */
function noticeInput(f: FormData): unknown {
  const bil = (name: string) => {
    const ja = str(f, `${name}Ja`);
    const en = str(f, `${name}En`);
    return ja === undefined && en === undefined ? undefined : { ja: ja ?? '', en: en ?? '' };
  };
  const out: Record<string, unknown> = { stage: str(f, 'stage') ?? '' };
  for (const b of BILINGUAL) if (bil(b)) out[b] = bil(b);
  const next = jstInstant(str(f, 'nextUpdateAt'));
  if (next) out['nextUpdateAt'] = next;
  const rec = jstInstant(str(f, 'recoveredAt'));
  if (rec) out['recoveredAt'] = rec;
  const tl = parseTimeline(str(f, 'timeline'));
  if (tl) out['timeline'] = tl;
  return out;
}
const bilingualField = (k: string) => ((BILINGUAL as readonly string[]).includes(k) ? `${k}Ja` : k);

export function registerConsoleNotices(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const { operator, pcOf, page, param, action } = consoleKit(app, deps);
  const noticeCtx = (): NoticeContext => ({ providerName: ctx.config.providerName, publicUrl: ctx.config.publicUrl, kick: deliveryKick(ctx.queue) });

  // ---- an incident's notices (R8.1, R8.2) ------------------------------------------------------
  const noticesPage = async (req: FastifyRequest, reply: FastifyReply, p: Operator, state?: FormState, status = 200, preview?: Html) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const i = await getIncident(ctx.db, ctx.clock, param(req, 'incidentId'));
    const base = `/console/incidents/${i.id}`;
    const notices = await listIncidentNotices(ctx.db, ctx.clock, i.id);
    const components = await listComponents(ctx.db);
    const chosen = (await incidentComponentMap(ctx.db, [i.id])).get(i.id) ?? [];
    const canWrite = hasOperatorRole(p, ...WRITE);
    const posted = new Set(notices.map((n) => n.stage));
    const nextStage: IncidentStage = !posted.has('first') ? 'first' : !posted.has('recovery') ? 'update' : 'report';
    const fid = 'notice';
    const bil = (name: string, ja: string, en: string, hint?: string) => html`<fieldset><legend>${t(ja, en)}</legend>${hint ? html`<p class="hint">${hint}</p>` : ''}
${field(fid, { name: `${name}Ja`, label: t(`${ja}（日本語）`, `${en} (Japanese)`), type: 'textarea' }, state)}
${field(fid, { name: `${name}En`, label: t(`${ja}（英語）`, `${en} (English)`), type: 'textarea' }, state)}</fieldset>`;
    return page(reply, pc, t(`お知らせ: ${i.title}`, `Notices: ${i.title}`), '/console/incidents', html`${doneNote(req, DONE(t))}
<p><a href="${base}">${t('障害の詳細へ戻る', 'Back to the incident')}</a> · <a href="/status">${t('ステータスページ', 'Status page')}</a></p>
<dl class="facts"><dt>${t('発生', 'Occurred')}</dt><dd>${fmtTime(i.times.occurred, locale)}</dd><dt>${t('復旧', 'Recovered')}</dt><dd>${fmtTime(i.times.recovered, locale)}</dd>
<dt>${t('影響するコンポーネント', 'Affected components')}</dt><dd>${chosen.length ? chosen.map((k) => components.find((c) => c.key === k)?.name[locale] ?? k).join(locale === 'ja' ? '、' : ', ') : t('サービス全体', 'the service as a whole')}</dd></dl>
<h2>${t('掲載したお知らせ', 'Notices posted')}</h2>
${notices.length ? html`<ol class="notices">${notices.map((n) => html`<li data-testid="notice"><strong>${n.label[locale]}</strong> · ${fmtTime(n.postedAt, locale)} · ${n.postedBy}<br>${n.subject[locale]}
<br><span data-testid="delivery">${t('配信', 'Delivery')}: ${t('宛先', 'recipients')} ${n.delivery.recipients} · ${t('送信済み', 'sent')} ${n.delivery.sent} · ${t('送信待ち', 'queued')} ${n.delivery.queued} · ${t('失敗', 'failed')} ${n.delivery.failed}</span>
<details><summary>${t('本文', 'Text')}</summary><pre class="notice-body">${n.body[locale]}</pre></details></li>`)}</ol>` : html`<p>${t('まだありません。', 'None yet.')}</p>`}
${canWrite && components.length ? html`<details class="action"${state?.form === 'components' ? html` open` : ''}><summary>${t('影響するコンポーネントを設定する', 'Set the affected components')}</summary>${form({ id: 'components', action: `${base}/components`, csrf: pc.csrf, submit: t('設定する', 'Set'), state, locale, fields: field('components', { name: 'components', label: t('コンポーネント（選ばなければサービス全体）', 'Components (none: the whole service)'), type: 'select-multiple', options: components.map((c) => ({ value: c.key, label: c.name[locale] }))}, state?.form === 'components' ? state : { form: 'components', values: { components: chosen }, errors: {} }) })}</details>` : ''}
${canWrite && !posted.has('report') ? html`<h2>${t('お知らせを掲載する（テンプレート）', 'Post a notice (from the templates)')}</h2>
<p class="hint">${t('掲載すると、ステータスページに表示され、対象のお客様の通知先へメールが送られます（第8条第1項）。まず「プレビュー」で文面を確認できます。', 'Posting shows it on the status page and e-mails the affected customers\' contacts (Art. 8.1). "Preview" shows the text first.')}</p>
${preview ?? ''}
${form({ id: fid, action: `${base}/notices`, csrf: pc.csrf, submit: t('掲載して送信する', 'Post and send'), state, locale, fields: html`
${field(fid, { name: 'stage', label: t('段階', 'Stage'), type: 'select', value: nextStage, options: INCIDENT_STAGES.map((s) => ({ value: s, label: t(STAGE_LABEL[s][0], STAGE_LABEL[s][1]) })) }, state)}
${bil('details', '現在の状況', 'Current situation', t('任意。テンプレートの文面に加えて掲載されます。', 'Optional; added to the template text.'))}
${field(fid, { name: 'nextUpdateAt', label: t('次回のお知らせ予定（日本時間・第一報と続報）', 'Next update expected (Japan time; first and update)'), type: 'datetime-local' }, state)}
${field(fid, { name: 'recoveredAt', label: t('復旧日時（日本時間・復旧報で未記録の場合）', 'Recovered at (Japan time; recovery, if not recorded yet)'), type: 'datetime-local', hint: t(`例: ${toJstLocal(ctx.clock.now())}`, `e.g. ${toJstLocal(ctx.clock.now())}`) }, state)}
<fieldset><legend>${t('障害報告書で必須の項目', 'Required for the incident report')}</legend>
${bil('cause', '原因', 'Cause')}
${bil('impact', '影響', 'Impact')}
${field(fid, { name: 'timeline', label: t('経過（1行に1件: 日時 | 日本語 | 英語）', 'Timeline (one per line: time | Japanese | English)'), type: 'textarea', hint: '2026-11-24 10:00 | 検知 | Detected' }, state)}
${bil('countermeasures', '再発防止策', 'Countermeasures')}</fieldset>
<div><button type="submit" class="secondary" formaction="${base}/notices/preview">${t('プレビュー', 'Preview')}</button></div>` })}` : ''}`, status);
  };
  const noticesPageFn: PageFn = (req, reply, p, state, status) => noticesPage(req, reply, p, state, status);
  app.get('/console/incidents/:incidentId/notices', { schema: { hide: true } }, async (req, reply) => noticesPage(req, reply, operator(req, ...READ)));
  const iid = (r: FastifyRequest) => param(r, 'incidentId');
  action('/console/incidents/:incidentId/notices', {
    form: () => 'notice',
    roles: WRITE,
    schema: noticeBody,
    status: true,
    input: noticeInput,
    fieldOf: bilingualField,
    run: (d, p, r) => postIncidentNotice(ctx.db, ctx.clock, actorOf(p), iid(r), { stage: d.stage, fields: fieldsOf(d) }, noticeCtx()),
    page: noticesPageFn,
    redirect: (r) => `/console/incidents/${iid(r)}/notices?done=posted`,
  });
  action('/console/incidents/:incidentId/notices/preview', {
    form: () => 'notice',
    roles: WRITE,
    schema: noticeBody,
    input: noticeInput,
    fieldOf: bilingualField,
    run: (d, _p, r) => previewIncidentNotice(ctx.db, ctx.clock, iid(r), { stage: d.stage, fields: fieldsOf(d) }, noticeCtx()),
    page: noticesPageFn,
    redirect: (r) => `/console/incidents/${iid(r)}/notices`,
    // Server-side preview (no script): the page again, the form as filled in, the text above it.
    render: async (req, reply, p, result) => {
      const pv = result as Awaited<ReturnType<typeof previewIncidentNotice>>;
      const { t, locale } = pcOf(req, reply, p);
      const other = locale === 'ja' ? 'en' : 'ja';
      const block = html`<section class="panel" data-testid="preview" aria-labelledby="preview-h"><h3 id="preview-h">${t('プレビュー（まだ掲載されていません）', 'Preview (not posted yet)')}: ${pv.label[locale]}</h3>
<p><strong>${pv.emails[locale].subject}</strong></p><pre class="notice-body">${pv.emails[locale].text}</pre>
<details><summary>${other === 'en' ? '英語の文面' : 'Japanese text'}</summary><p><strong>${pv.emails[other].subject}</strong></p><pre class="notice-body">${pv.emails[other].text}</pre></details></section>`;
      return noticesPage(req, reply, p, { form: 'notice', values: (req.body ?? {}) as FormData, errors: {} }, 200, block);
    },
  });
  action('/console/incidents/:incidentId/components', {
    form: () => 'components',
    roles: WRITE,
    schema: z.object({ components: z.array(z.string().max(40)).max(100) }),
    status: true,
    input: (f) => ({ components: list(f, 'components') }),
    run: (d, p, r) => setIncidentComponents(ctx.db, ctx.clock, actorOf(p), iid(r), d.components),
    page: noticesPageFn,
    redirect: (r) => `/console/incidents/${iid(r)}/notices?done=saved`,
  });

  // ---- status components ---------------------------------------------------------------------
  const componentBody = z.object({ key: z.string().regex(COMPONENT_KEY_RE, { error: '1–40 lower-case letters, digits or "-"' }), name: z.object({ ja: z.string().trim().min(1).max(100), en: z.string().trim().min(1).max(100) }), position: z.number().int().min(0).max(10_000).optional() });
  const componentInput = (f: FormData, key?: string) => ({ key: key ?? str(f, 'key') ?? '', name: { ja: str(f, 'nameJa') ?? '', en: str(f, 'nameEn') ?? '' }, position: num(str(f, 'position')) });
  const nameField = (k: string) => (k === 'name' ? 'nameJa' : k);
  const componentsPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const components = await listComponents(ctx.db);
    const canWrite = hasOperatorRole(p, ...WRITE);
    const fields = (id: string, c?: { key: string; name: { ja: string; en: string }; position: number }) => html`
${c ? '' : field(id, { name: 'key', label: t('キー（英小文字・数字・-）', 'Key (a-z, 0-9, -)'), required: true }, state)}
${field(id, { name: 'nameJa', label: t('名前（日本語）', 'Name (Japanese)'), value: c?.name.ja, required: true }, state)}
${field(id, { name: 'nameEn', label: t('名前（英語）', 'Name (English)'), value: c?.name.en, required: true }, state)}
${field(id, { name: 'position', label: t('表示順', 'Position'), type: 'number', value: c ? String(c.position) : '0' }, state)}`;
    return page(reply, pc, t('ステータスページのコンポーネント', 'Status page components'), '/console/components', html`${doneNote(req, DONE(t))}
<p class="hint">${t('ステータスページに表示する区分です。障害・停止ごとに影響する区分を選べます。', 'The parts of the service the status page shows; each incident and stop names the ones it affects.')}</p>
${components.length ? html`<ul>${components.map((c) => html`<li data-testid="component"><strong>${c.name[locale]}</strong> <code>${c.key}</code> · ${t('表示順', 'position')} ${c.position}
${canWrite ? html`<details class="action"${state?.form === `component-${c.key}` ? html` open` : ''}><summary>${t('変更', 'Edit')}</summary>${form({ id: `component-${c.key}`, action: `/console/components/${c.key}`, csrf: pc.csrf, submit: t('保存する', 'Save'), state, locale, fields: fields(`component-${c.key}`, c) })}${actionButton(pc, `/console/components/${c.key}/delete`, t('削除する', 'Delete'), {}, true)}</details>` : ''}</li>`)}</ul>` : html`<p>${t('まだありません（サービス全体として表示されます）。', 'None yet (the page shows the service as a whole).')}</p>`}
${canWrite ? html`<details class="action"${state?.form === 'component-new' ? html` open` : ''}><summary>${t('コンポーネントを追加する', 'Add a component')}</summary>${form({ id: 'component-new', action: '/console/components', csrf: pc.csrf, submit: t('追加する', 'Add'), state, locale, fields: fields('component-new') })}</details>` : ''}`, status);
  };
  app.get('/console/components', { schema: { hide: true } }, async (req, reply) => componentsPage(req, reply, operator(req, ...READ)));
  const ckey = (r: FastifyRequest) => {
    const k = (r.params as Record<string, string>)['componentKey'] ?? '';
    return COMPONENT_KEY_RE.test(k) ? k : '-invalid-';
  };
  action('/console/components', { form: () => 'component-new', roles: WRITE, schema: componentBody, status: true, input: (f) => componentInput(f), fieldOf: nameField, run: (d, p) => createComponent(ctx.db, ctx.clock, actorOf(p), d.key, { name: d.name, ...(d.position !== undefined ? { position: d.position } : {}) }), page: componentsPage, redirect: () => '/console/components?done=saved' });
  action('/console/components/:componentKey', { form: (r) => `component-${ckey(r)}`, roles: WRITE, schema: componentBody, status: true, input: (f) => componentInput(f, 'x'), fieldOf: nameField, run: (d, p, r) => updateComponent(ctx.db, ctx.clock, actorOf(p), ckey(r), { name: d.name, ...(d.position !== undefined ? { position: d.position } : {}) }), page: componentsPage, redirect: () => '/console/components?done=saved' });
  action('/console/components/:componentKey/delete', { form: () => 'component-delete', roles: WRITE, schema: z.unknown(), status: true, input: () => ({}), run: (_d, p, r) => deleteComponent(ctx.db, ctx.clock, actorOf(p), ckey(r)), page: componentsPage, redirect: () => '/console/components?done=deleted' });

  // ---- webhooks --------------------------------------------------------------------------------
  const webhooksPage = async (req: FastifyRequest, reply: FastifyReply, p: Operator, state?: FormState, status = 200, once?: Html) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const hooks = await listWebhooks(ctx.db);
    return page(reply, pc, t('Webhook', 'Webhooks'), '/console/webhooks', html`${doneNote(req, DONE(t))}${once ?? ''}
<p class="hint">${t('お知らせを掲載するたびに、署名付きのJSONを登録先へ送ります（X-Hokan-Signature）。', 'Every posted notice is sent to each endpoint as signed JSON (X-Hokan-Signature).')}</p>
${hooks.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">URL</th><th scope="col">${t('説明', 'Description')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('操作', 'Actions')}</th></tr></thead>
<tbody>${hooks.map((w) => html`<tr><td><a href="/console/webhooks/${w.id}">${w.url}</a></td><td>${w.description}</td><td>${w.active ? t('有効', 'active') : t('停止中', 'paused')}</td><td>${actionButton(pc, `/console/webhooks/${w.id}/active`, w.active ? t('停止する', 'Pause') : t('再開する', 'Resume'), { active: w.active ? 'false' : 'true' })} ${actionButton(pc, `/console/webhooks/${w.id}/delete`, t('削除する', 'Delete'), {}, true)}</td></tr>`)}</tbody></table></div>` : html`<p>${t('まだありません。', 'None yet.')}</p>`}
<details class="action"${state?.form === 'webhook-new' ? html` open` : ''}><summary>${t('Webhookを登録する', 'Register a webhook')}</summary>${form({ id: 'webhook-new', action: '/console/webhooks', csrf: pc.csrf, submit: t('登録する', 'Register'), state, locale, fields: html`
${field('webhook-new', { name: 'url', label: 'URL', required: true, hint: 'https://…' }, state)}
${field('webhook-new', { name: 'description', label: t('説明', 'Description') }, state)}` })}</details>`, status);
  };
  const webhooksPageFn: PageFn = (req, reply, p, state, status) => webhooksPage(req, reply, p, state, status);
  app.get('/console/webhooks', { schema: { hide: true } }, async (req, reply) => webhooksPage(req, reply, operator(req, ...WRITE)));
  action('/console/webhooks', {
    form: () => 'webhook-new',
    roles: WRITE,
    schema: z.object({ url: z.string().trim().min(1).max(2000), description: z.string().trim().max(500).optional() }),
    input: (f) => ({ url: str(f, 'url') ?? '', ...(str(f, 'description') ? { description: str(f, 'description') } : {}) }),
    run: (d, p) => createWebhook(ctx.db, ctx.clock, actorOf(p), d),
    page: webhooksPageFn,
    redirect: () => '/console/webhooks',
    // The signing secret is shown once, in this answer only.
    render: async (req, reply, p, result) => {
      const r = result as Awaited<ReturnType<typeof createWebhook>>;
      const { t } = pcOf(req, reply, p);
      return webhooksPage(req, reply, p, undefined, 201, html`<div class="notice" role="status" data-testid="token-once"><p><strong>${t(`${r.webhook.url} の署名用シークレット`, `Signing secret of ${r.webhook.url}`)}</strong></p><p>${t('この値は今回だけ表示されます。控えてから画面を閉じてください。', 'Shown only this once: copy it before leaving the page.')}</p><p><code>${r.secret}</code></p></div>`);
    },
  });
  const wid = (r: FastifyRequest) => param(r, 'webhookId');
  action('/console/webhooks/:webhookId/active', { form: () => 'webhook-active', roles: WRITE, schema: z.object({ active: z.enum(['true', 'false']) }), input: (f) => ({ active: str(f, 'active') ?? '' }), run: (d, p, r) => setWebhookActive(ctx.db, ctx.clock, actorOf(p), wid(r), d.active === 'true'), page: webhooksPageFn, redirect: () => '/console/webhooks?done=saved' });
  action('/console/webhooks/:webhookId/delete', { form: () => 'webhook-delete', roles: WRITE, schema: z.unknown(), input: () => ({}), run: (_d, p, r) => deleteWebhook(ctx.db, ctx.clock, actorOf(p), wid(r)), page: webhooksPageFn, redirect: () => '/console/webhooks?done=deleted' });
  app.get('/console/webhooks/:webhookId', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, ...WRITE);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const hook = (await listWebhooks(ctx.db)).find((w) => w.id === wid(req));
    const deliveries = await listWebhookDeliveries(ctx.db, wid(req));
    return page(reply, pc, t('Webhookの配信', 'Webhook deliveries'), '/console/webhooks', html`<p><a href="/console/webhooks">${t('一覧へ戻る', 'Back to the list')}</a> · <code>${hook?.url ?? ''}</code></p>
${deliveries.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('作成', 'Created')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('試行', 'Attempts')}</th><th scope="col">${t('応答', 'Response')}</th><th scope="col">${t('配信・次回', 'Delivered / next')}</th></tr></thead>
<tbody>${deliveries.map((d) => html`<tr><td>${fmtTime(d.createdAt, locale)}</td><td>${d.state}</td><td>${d.attempts}</td><td>${d.lastStatus ?? ''} ${d.lastError ?? ''}</td><td>${fmtTime(d.deliveredAt ?? d.nextAttemptAt, locale)}</td></tr>`)}</tbody></table></div>` : html`<p>${t('まだありません。', 'None yet.')}</p>`}`);
  });
}
