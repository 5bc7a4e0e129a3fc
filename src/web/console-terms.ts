import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { listCustomers } from '../contracts/customers.js';
import { actorOf } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import { calendarDate, instant } from '../http/route-kit.js';
import { addConsultationMessage, closeConsultation, createNotice, diffTermsVersions, findConsultation, getTermsVersion, importTermsVersion, listConsultations, listNotices, listTermsVersions, NAMED_TOPICS, publishNotice, publishTermsVersion, type ConsultationView } from '../terms/index.js';
import { consoleKit, uuidParam, type ActionOpts, type Operator, type PageFn } from './console-kit.js';
import { html } from './html.js';
import { fmtDate, fmtTime, type T } from './i18n.js';
import { field, form, jstInstant, list, str, type FormData, type WebDeps } from './kit.js';
import { consultationMessageBody, consultationThread, diffForm, diffHtml, diffVersionIds, documentHtml } from './portal-terms.js';
import { actionButton, doneNote } from './shell.js';

/**
 * A console form whose domain function answers where to go next: the console kit's form POST
 * (CSRF, role, schema, refusals next to the fields), redirecting to what `run` returns.
 */
export function consoleForm<S extends z.ZodType>(
  app: FastifyInstance,
  deps: WebDeps,
  path: string,
  opts: Omit<ActionOpts<S>, 'run' | 'redirect'> & { run: (data: z.output<S>, p: Operator, req: FastifyRequest) => Promise<string> },
): void {
  consoleKit(app, deps).action(path, { ...opts, redirect: (_req, next) => String(next) });
}

const oneLine = (max: number) => z.string().trim().min(1).max(max).refine((s) => !/[\r\n]/.test(s), { error: 'must be one line' });
const importBody = z.object({ edition: oneLine(40), effectiveDate: calendarDate, text: z.string().min(1).max(512 * 1024) });
const noticeFormBody = z.object({
  channel: z.enum(['support_site', 'support_guide']),
  guideEdition: oneLine(40).optional(),
  topic: z.string().trim().min(1).max(100),
  titleJa: oneLine(200),
  bodyJa: z.string().trim().min(1).max(20_000),
  titleEn: oneLine(200).optional(),
  bodyEn: z.string().trim().min(1).max(20_000).optional(),
  effectiveAt: instant,
  customerIds: z.array(z.uuid()).max(10_000),
});
const closeBody = z.object({ note: z.string().trim().min(1).max(10_000) });

const DONE = (t: T) => ({
  imported: t('取り込みました。内容を確認してから公開してください。', 'Imported as a draft: check it, then publish.'),
  published: t('公開し、お客様に通知しました。', 'Published and notified to the customers.'),
  drafted: t('お知らせの下書きを作成しました。', 'The notice was saved as a draft.'),
  sent: t('送信しました。', 'Sent.'),
  closed: t('協議を終了しました。', 'The consultation was closed.'),
});

export function registerConsoleTerms(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const { operator, pcOf, page } = consoleKit(app, deps);

  // ---- terms versions and notices (R1.1, R1.2, R2.1) -------------------------------------------
  const termsPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const versions = await listTermsVersions(ctx.db, { includeDrafts: true });
    const notices = await listNotices(ctx.db);
    const customers = await listCustomers(ctx.db);
    const name = (id: string) => customers.find((c) => c.id === id)?.name ?? id;
    const newest = versions.find((v) => v.state === 'published');
    const articles = newest ? (await getTermsVersion(ctx.db, newest.id)).document.articles : [];
    const topics = [
      ...articles.map((a) => ({ value: `article:${a.number}`, label: `第${a.number}条（${a.heading}）` })),
      ...Object.entries(NAMED_TOPICS).map(([value, l]) => ({ value, label: l[locale] })),
    ];
    return page(reply, pc, t('利用規約とお知らせ', 'Terms and notices'), '/console/terms', html`${doneNote(req, DONE(t))}${state?.form === 'publish-notice' && state.message ? html`<div class="alert" role="alert">${state.message}</div>` : ''}
<h2>${t('版', 'Versions')}</h2>
${versions.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('版', 'Edition')}</th><th scope="col">${t('施行日', 'Effective')}</th><th scope="col">${t('状態', 'State')}</th><th scope="col">${t('条数', 'Articles')}</th></tr></thead>
<tbody>${versions.map((v) => html`<tr><td><a href="/console/terms/versions/${v.id}">${v.edition}</a></td><td>${fmtDate(v.effectiveDate, locale)}</td><td>${v.state === 'draft' ? t('下書き', 'draft') : html`${t('公開', 'published')} ${fmtTime(v.publishedAt, locale)}`}</td><td>${v.counts.articles}</td></tr>`)}</tbody></table></div>` : html`<p>${t('版はまだありません。', 'No versions yet.')}</p>`}
<details class="action"${state?.form === 'import' ? html` open` : ''}><summary>${t('利用規約を取り込む', 'Import a terms document')}</summary>
${form({
  id: 'import',
  action: '/console/terms/versions',
  csrf: pc.csrf,
  submit: t('取り込む（下書き）', 'Import as a draft'),
  state,
  locale,
  fields: html`${field('import', { name: 'edition', label: t('版', 'Edition'), hint: t('例: 6.5', 'e.g. 6.5'), required: true }, state)}
${field('import', { name: 'effectiveDate', label: t('施行日', 'Effective date'), type: 'date', required: true }, state)}
${field('import', { name: 'text', label: t('本文（テキスト）', 'Text of the document'), type: 'textarea', hint: t('第N条（見出し）、項、号、附則の版の履歴を読み取ります。', 'Articles 第N条（見出し）, paragraphs, items and the 附則 edition history are read.'), required: true }, state)}`,
})}</details>
<h2>${t('版の比較', 'Compare two versions')}</h2>${diffForm('/console/terms/diff', versions, pc)}
<h2>${t('お知らせ', 'Notices')}</h2>
${notices.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('件名', 'Title')}</th><th scope="col">${t('トピック', 'Topic')}</th><th scope="col">${t('宛先', 'To')}</th><th scope="col">${t('発効', 'Effective')}</th><th scope="col">${t('状態', 'State')}</th></tr></thead>
<tbody>${notices.map((n) => html`<tr><td>${n.title.ja}${n.title.en ? html`<br><span class="muted">${n.title.en}</span>` : ''}</td><td>${n.topic}</td><td>${n.audience === 'all' ? t('全てのお客様', 'every customer') : (n.customerIds ?? []).map(name).join('、')}</td><td>${fmtTime(n.effectiveAt, locale)}</td><td>${n.state === 'published' ? html`${t('公開', 'published')} ${fmtTime(n.publishedAt, locale)}` : actionButton(pc, `/console/terms/notices/${n.id}/publish`, t('公開して通知する', 'Publish and notify'))}</td></tr>`)}</tbody></table></div>` : html`<p>${t('お知らせはありません。', 'No notices.')}</p>`}
<details class="action"${state?.form === 'notice' ? html` open` : ''}><summary>${t('お知らせを作成する', 'Write a notice')}</summary>
${form({
  id: 'notice',
  action: '/console/terms/notices',
  csrf: pc.csrf,
  submit: t('下書きを保存', 'Save the draft'),
  state,
  locale,
  fields: html`${field('notice', { name: 'channel', label: t('掲載先', 'Channel'), type: 'select', options: [{ value: 'support_site', label: t('サポートサイト', 'support site') }, { value: 'support_guide', label: t('サポートガイド', 'Support Guide') }] }, state)}
${field('notice', { name: 'guideEdition', label: t('サポートガイドの版（サポートガイドのみ）', 'Support Guide edition (Support Guide only)') }, state)}
${field('notice', { name: 'topic', label: t('トピック', 'Topic'), type: 'select', options: topics }, state)}
${field('notice', { name: 'titleJa', label: t('件名（日本語）', 'Title (Japanese)'), required: true }, state)}
${field('notice', { name: 'bodyJa', label: t('本文（日本語）', 'Text (Japanese)'), type: 'textarea', required: true }, state)}
${field('notice', { name: 'titleEn', label: t('件名（英語・任意）', 'Title (English, optional)') }, state)}
${field('notice', { name: 'bodyEn', label: t('本文（英語・任意）', 'Text (English, optional)'), type: 'textarea' }, state)}
${field('notice', { name: 'effectiveAt', label: t('発効日時（日本時間）', 'Effective from (Japan time)'), type: 'datetime-local', required: true }, state)}
${field('notice', { name: 'customerIds', label: t('宛先のお客様（選ばなければ全てのお客様）', 'Addressed to (none chosen: every customer)'), type: 'select-multiple', options: customers.map((c) => ({ value: c.id, label: c.name })) }, state)}`,
})}</details>`, status);
  };
  app.get('/console/terms', { schema: { hide: true } }, async (req, reply) => termsPage(req, reply, operator(req)));

  consoleForm(app, deps, '/console/terms/versions', {
    form: () => 'import',
    roles: ['admin', 'operator'],
    schema: importBody,
    input: (f) => ({ edition: str(f, 'edition') ?? '', effectiveDate: str(f, 'effectiveDate') ?? '', text: typeof f['text'] === 'string' ? f['text'] : '' }),
    run: async (d, p) => `/console/terms/versions/${(await importTermsVersion(ctx.db, ctx.clock, actorOf(p), d)).version.id}?done=imported`,
    page: termsPage,
    // A terms document of up to 512 KiB characters, URL-encoded (a Japanese character is 9 bytes).
    bodyLimit: 5 * 1024 * 1024,
  });

  const versionPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const v = await getTermsVersion(ctx.db, uuidParam(req, 'versionId'), { includeDrafts: true });
    return page(reply, pc, t(`利用規約 ${v.edition}`, `Terms of use, edition ${v.edition}`), `/console/terms/versions/${v.id}`, html`${doneNote(req, DONE(t))}${state?.message ? html`<div class="alert" role="alert">${state.message}</div>` : ''}
<p><a href="/console/terms">${t('利用規約とお知らせ', 'Terms and notices')}</a></p>
<dl class="facts"><dt>${t('状態', 'State')}</dt><dd data-testid="version-state">${v.state === 'draft' ? t('下書き', 'draft') : t('公開', 'published')}</dd>
<dt>${t('施行日', 'Effective')}</dt><dd>${fmtDate(v.effectiveDate, locale)}</dd>
<dt>${t('読み取った内容', 'Parsed')}</dt><dd data-testid="parsed-counts">${v.counts.articles} ${t('条', 'articles')} · ${v.counts.paragraphs} ${t('項', 'paragraphs')} · ${v.counts.items} ${t('号', 'items')} · ${v.history.length} ${t('版の履歴', 'editions')}</dd>
<dt>SHA-256</dt><dd><code>${v.sourceSha256}</code></dd></dl>
${v.state === 'draft' ? html`<p>${t('公開すると変更できなくなり、契約中の全てのお客様にポータルと電子メールで通知されます（第2条）。', 'Once published it cannot change, and every customer under contract is told on the portal and by e-mail (Art. 2).')}</p>${actionButton(pc, `/console/terms/versions/${v.id}/publish`, t('公開して通知する', 'Publish and notify'))}` : ''}
<h2>${t('プレビュー', 'Preview')}</h2>${documentHtml(v.document, pc)}`, status);
  };
  app.get('/console/terms/versions/:versionId', { schema: { hide: true } }, async (req, reply) => versionPage(req, reply, operator(req)));

  consoleForm(app, deps, '/console/terms/versions/:versionId/publish', {
    form: () => 'publish',
    roles: ['admin', 'operator'],
    schema: z.object({}),
    input: () => ({}),
    run: async (_d, p, req) => {
      const id = uuidParam(req, 'versionId');
      await publishTermsVersion(ctx.db, ctx.clock, actorOf(p), id);
      return `/console/terms/versions/${id}?done=published`;
    },
    page: versionPage,
  });

  app.get('/console/terms/diff', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req);
    const pc = pcOf(req, reply, p);
    const { t } = pc;
    const { from, to } = diffVersionIds(req);
    const versions = await listTermsVersions(ctx.db, { includeDrafts: true });
    const d = await diffTermsVersions(ctx.db, from, to, { includeDrafts: true });
    return page(reply, pc, t('利用規約の新旧比較', 'Differences between versions'), `/console/terms/diff?from=${from}&to=${to}`, html`${diffForm('/console/terms/diff', versions, pc, { from, to })}<h2>${t('差分', 'Differences')}</h2>${diffHtml(d, pc)}`);
  });

  consoleForm(app, deps, '/console/terms/notices', {
    form: () => 'notice',
    roles: ['admin', 'operator'],
    schema: noticeFormBody,
    input: (f) => ({
      channel: str(f, 'channel'),
      guideEdition: str(f, 'guideEdition'),
      topic: str(f, 'topic') ?? '',
      titleJa: str(f, 'titleJa') ?? '',
      bodyJa: str(f, 'bodyJa') ?? '',
      titleEn: str(f, 'titleEn'),
      bodyEn: str(f, 'bodyEn'),
      effectiveAt: jstInstant(str(f, 'effectiveAt')) ?? '',
      customerIds: list(f, 'customerIds'),
    }),
    run: async (d, p) => {
      await createNotice(ctx.db, ctx.clock, actorOf(p), {
        channel: d.channel,
        guideEdition: d.guideEdition ?? null,
        topic: d.topic,
        titleJa: d.titleJa,
        bodyJa: d.bodyJa,
        titleEn: d.titleEn ?? null,
        bodyEn: d.bodyEn ?? null,
        effectiveAt: new Date(d.effectiveAt),
        ...(d.customerIds.length ? { customerIds: d.customerIds } : {}),
      });
      return '/console/terms?done=drafted';
    },
    page: termsPage,
  });

  consoleForm(app, deps, '/console/terms/notices/:termsNoticeId/publish', {
    form: () => 'publish-notice',
    roles: ['admin', 'operator'],
    schema: z.object({}),
    input: () => ({}),
    run: async (_d, p, req) => {
      await publishNotice(ctx.db, ctx.clock, actorOf(p), uuidParam(req, 'termsNoticeId'));
      return '/console/terms?done=published';
    },
    page: termsPage,
  });

  // ---- consultations inbox (R2.2) -------------------------------------------------------------
  app.get('/console/consultations', { schema: { hide: true } }, async (req, reply) => {
    const p = operator(req, 'admin', 'operator', 'support');
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const all = await listConsultations(ctx.db);
    const customers = await listCustomers(ctx.db);
    const name = (id: string) => customers.find((c) => c.id === id)?.name ?? id;
    const rows = (xs: ConsultationView[]) =>
      xs.length
        ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('お客様', 'Customer')}</th><th scope="col">${t('対象', 'About')}</th><th scope="col">${t('開始', 'Opened')}</th><th scope="col">${t('メッセージ', 'Messages')}</th></tr></thead>
<tbody>${xs.map((c) => html`<tr><td>${name(c.customerId)}</td><td><a href="/console/consultations/${c.id}">${c.change.label[locale]}</a></td><td>${fmtTime(c.openedAt, locale)}</td><td>${c.messages.length}</td></tr>`)}</tbody></table></div>`
        : html`<p>${t('ありません。', 'None.')}</p>`;
    return page(reply, pc, t('協議', 'Consultations'), '/console/consultations', html`<h2>${t('協議中', 'Open')}</h2>${rows(all.filter((c) => c.state === 'open'))}<h2>${t('終了', 'Closed')}</h2>${rows(all.filter((c) => c.state === 'closed'))}`);
  });

  const consultationPage: PageFn = async (req, reply, p, state, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const id = uuidParam(req, 'consultationId');
    const c = await findConsultation(ctx.db, id);
    if (!c) throw errors.notFound('協議 / consultation', id);
    const customer = (await listCustomers(ctx.db)).find((x) => x.id === c.customerId);
    return page(reply, pc, t('協議', 'Consultation'), `/console/consultations/${c.id}`, html`${doneNote(req, DONE(t))}<p><a href="/console/consultations">${t('協議の一覧', 'All consultations')}</a> · ${customer?.name ?? c.customerId}</p>
${consultationThread(c, pc)}
${c.state === 'open'
  ? html`${form({ id: 'reply', action: `/console/consultations/${c.id}/messages`, csrf: pc.csrf, submit: t('返信する', 'Reply'), state, locale, fields: field('reply', { name: 'message', label: t('返信', 'Reply'), type: 'textarea', required: true }, state) })}
<details class="action"${state?.form === 'close' ? html` open` : ''}><summary>${t('協議を終了する', 'Close the consultation')}</summary>${form({ id: 'close', action: `/console/consultations/${c.id}/close`, csrf: pc.csrf, submit: t('終了する', 'Close'), state, locale, fields: field('close', { name: 'note', label: t('結果', 'Outcome'), type: 'textarea', required: true }, state) })}</details>`
  : ''}`, status);
  };
  app.get('/console/consultations/:consultationId', { schema: { hide: true } }, async (req, reply) => consultationPage(req, reply, operator(req, 'admin', 'operator', 'support')));

  consoleForm(app, deps, '/console/consultations/:consultationId/messages', {
    form: () => 'reply',
    roles: ['admin', 'operator', 'support'],
    schema: consultationMessageBody,
    input: (f) => ({ message: str(f, 'message') ?? '' }),
    run: async (d, p, req) => {
      const id = uuidParam(req, 'consultationId');
      await addConsultationMessage(ctx.db, ctx.clock, actorOf(p), id, d.message);
      return `/console/consultations/${id}?done=sent`;
    },
    page: consultationPage,
  });

  consoleForm(app, deps, '/console/consultations/:consultationId/close', {
    form: () => 'close',
    roles: ['admin', 'operator', 'support'],
    schema: closeBody,
    input: (f) => ({ note: str(f, 'note') ?? '' }),
    run: async (d, p, req) => {
      const id = uuidParam(req, 'consultationId');
      await closeConsultation(ctx.db, ctx.clock, actorOf(p), id, d.note);
      return `/console/consultations/${id}?done=closed`;
    },
    page: consultationPage,
  });
}
