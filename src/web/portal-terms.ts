import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { actorOf, isCustomerAdminOf } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import { listCustomerNotices } from '../notify/notices.js';
import {
  addConsultationMessage,
  articleTitle,
  diffTermsVersions,
  findConsultation,
  getTermsVersion,
  governingText,
  listConsultations,
  listTermsVersions,
  noticesForCustomer,
  notificationRecordsFor,
  openConsultation,
  type ArticleDiff,
  type ConsultationView,
  type NoticeView,
  type TermsArticle,
  type TermsDiff,
  type TermsDocument,
  type TermsVersionSummary,
} from '../terms/index.js';
import { html, type Html } from './html.js';
import { fmtDate, fmtTime, type T } from './i18n.js';
import { checkCsrf, field, form, refusalState, requireHuman, seeOther, str, validate, type FormData, type FormState, type Human, type WebDeps } from './kit.js';
import { nav } from './portal.js';
import { doneNote, pageContext, shell, type PageContext } from './shell.js';

type Customer = Extract<Human, { kind: 'customer_user' }>;

// ---------------------------------------------------------------------------------------------
// Shared with the console: a terms document, the edition history, a diff (no script: <ins>/<del>)
// ---------------------------------------------------------------------------------------------

export function articleHtml(a: TermsArticle): Html {
  return html`<section class="terms" id="art-${a.number}"><h3>${articleTitle(a)}</h3>
${a.paragraphs.map((p) => html`<p>${p.numbered ? html`<span class="muted">${p.number}</span> ` : ''}${p.text.split('\n').map((line, i) => html`${i ? html`<br>` : ''}${line}`)}</p>${p.items.length ? html`<ul>${p.items.map((i) => html`<li>${i.marker} ${i.text}</li>`)}</ul>` : ''}`)}</section>`;
}

export function documentHtml(doc: TermsDocument, pc: PageContext): Html {
  const { t } = pc;
  return html`${doc.title ? html`<h2>${doc.title}</h2>` : ''}${doc.preamble.map((p) => html`<p>${p}</p>`)}
${doc.articles.map(articleHtml)}
${doc.closing ? html`<p>${doc.closing}</p>` : ''}
<h3>${t('附則（版の履歴）', 'Supplementary provisions (edition history)')}</h3>${historyHtml(doc, pc)}`;
}

export function historyHtml(doc: TermsDocument, pc: PageContext): Html {
  const { t, locale } = pc;
  if (!doc.history.length) return html`<p>${t('版の履歴はありません。', 'No edition history.')}</p>`;
  const kind = (k: string) => (k === 'established' ? t('制定', 'established') : k === 'revised' ? t('改定', 'revised') : t('施行', 'in force'));
  return html`<ol class="history" data-testid="edition-history">${doc.history.map((e) => html`<li>${e.ordinal}（${e.label}）· ${fmtDate(e.date, locale)} · ${kind(e.kind)}</li>`)}</ol>`;
}

const STATUS = (t: T) => ({ added: t('新設', 'added'), removed: t('削除', 'removed'), changed: t('変更', 'changed'), unchanged: t('変更なし', 'unchanged') });

function articleDiffHtml(a: ArticleDiff, t: T): Html {
  const label = STATUS(t)[a.status];
  const heading = a.status === 'changed' && a.fromTitle !== a.toTitle ? `${a.fromTitle ?? ''} → ${a.toTitle ?? ''}` : a.title;
  return html`<section class="panel" data-status="${a.status}"><h3>${heading}<span class="tag tag-${a.status}">${label}</span></h3>
${a.lines.map((l) => {
  switch (l.op) {
    case 'equal':
      return html`<p class="diff-line">${l.text}</p>`;
    case 'delete':
      return html`<p class="diff-line"><del class="d">${l.text}</del></p>`;
    case 'insert':
      return html`<p class="diff-line"><ins class="d">${l.text}</ins></p>`;
    default:
      return html`<p class="diff-line">${l.chars.map((c) => (c.op === 'equal' ? c.text : c.op === 'delete' ? html`<del class="d">${c.text}</del>` : html`<ins class="d">${c.text}</ins>`))}</p>`;
  }
})}</section>`;
}

export function diffHtml(d: TermsDiff, pc: PageContext): Html {
  const { t } = pc;
  const s = STATUS(t);
  const changed = d.articles.filter((a) => a.status !== 'unchanged');
  return html`<p data-testid="diff-summary">${d.from.edition} → ${d.to.edition}: ${s.added} ${d.summary.added} · ${s.removed} ${d.summary.removed} · ${s.changed} ${d.summary.changed} · ${s.unchanged} ${d.summary.unchanged}</p>
<p class="hint">${t('追加された文字は下線と緑、削除された文字は取り消し線と赤で示します。', 'Added text is underlined on green, removed text struck through on red.')}</p>
${changed.length ? changed.map((a) => articleDiffHtml(a, t)) : html`<p>${t('本文の違いはありません。', 'The texts do not differ.')}</p>`}`;
}

/** The form choosing two versions to compare (a GET form: nothing changes). */
/** The two versions a diff page compares, from its query; anything but a UUID is "not found". */
export function diffVersionIds(req: FastifyRequest): { from: string; to: string } {
  const q = req.query as FormData;
  const from = str(q, 'from') ?? '';
  const to = str(q, 'to') ?? '';
  for (const id of [from, to]) if (!z.uuid().safeParse(id).success) throw errors.notFound('利用規約の版 / terms version', id);
  return { from, to };
}

export function diffForm(action: string, versions: TermsVersionSummary[], pc: PageContext, chosen: { from?: string; to?: string } = {}): Html {
  const { t, locale } = pc;
  if (versions.length < 2) return html`<p class="hint">${t('比較できる版が2つ以上ありません。', 'There are not two versions to compare yet.')}</p>`;
  const opts = (sel: string | undefined) => versions.map((v) => html`<option value="${v.id}"${v.id === sel ? html` selected` : ''}>${v.edition} · ${fmtDate(v.effectiveDate, locale)}${v.state === 'draft' ? t('（下書き）', ' (draft)') : ''}</option>`);
  return html`<form class="stack" method="get" action="${action}" id="diff-form">
<div><label for="diff-from">${t('比較元の版（旧）', 'From version (older)')}</label><select id="diff-from" name="from">${opts(chosen.from ?? versions[1]!.id)}</select></div>
<div><label for="diff-to">${t('比較先の版（新）', 'To version (newer)')}</label><select id="diff-to" name="to">${opts(chosen.to ?? versions[0]!.id)}</select></div>
<div><button type="submit">${t('差分を表示', 'Show the differences')}</button></div></form>`;
}

export function consultationThread(c: ConsultationView, pc: PageContext): Html {
  const { t, locale } = pc;
  return html`<dl class="facts"><dt>${t('対象', 'About')}</dt><dd>${c.change.label[locale]}</dd>
<dt>${t('状態', 'State')}</dt><dd data-testid="consultation-state">${c.state === 'open' ? t('協議中', 'open') : t('終了', 'closed')}</dd>
<dt>${t('開始', 'Opened')}</dt><dd>${fmtTime(c.openedAt, locale)}</dd>
${c.closedAt ? html`<dt>${t('終了', 'Closed')}</dt><dd>${fmtTime(c.closedAt, locale)} · ${c.closeNote ?? ''}</dd>` : ''}</dl>
<ol class="posts" data-testid="consultation-thread">${c.messages.map((m) => html`<li><p class="post-label">${m.author.kind === 'operator' ? t('事業者', 'Provider') : t('お客様', 'Customer')} · ${m.author.label} · ${fmtTime(m.at, locale)}</p><p class="diff-line">${m.body}</p></li>`)}</ol>`;
}

export const consultationMessageBody = z.object({ message: z.string().trim().min(1).max(10_000) });
const disagreementBody = z.object({ changeKind: z.enum(['terms_version', 'notice']), changeId: z.uuid(), message: z.string().trim().min(1).max(10_000) });

// ---------------------------------------------------------------------------------------------
// The portal pages (R1.1–R2.2, R8.1)
// ---------------------------------------------------------------------------------------------

export function registerPortalTerms(app: FastifyInstance, deps: WebDeps): void {
  const { ctx } = deps;
  const customer = (req: FastifyRequest) => requireHuman(req, 'portal') as Customer;
  const pcOf = (req: FastifyRequest, reply: FastifyReply, p: Customer) => pageContext(deps, req, reply, p);
  const isAdmin = (p: Customer) => isCustomerAdminOf(p, p.customerId);
  const DONE = (t: T) => ({ opened: t('協議を開始しました。担当者からご連絡します。', 'The consultation is open; the provider will reply.'), sent: t('送信しました。', 'Sent.') });

  /** A customer admin's disagreement form for one change (terms version or notice). */
  const disagreeForm = (pc: PageContext, kind: 'terms_version' | 'notice', id: string, state: FormState | undefined): Html => {
    const { t, locale } = pc;
    const formId = `disagree-${id}`;
    const open = state?.form === formId;
    return html`<details class="action"${open ? html` open` : ''}><summary>${t('この変更に同意しない（協議を申し出る）', 'I do not agree with this change (ask for a consultation)')}</summary>
${form({
  id: formId,
  action: '/portal/terms/consultations',
  csrf: pc.csrf,
  submit: t('協議を申し出る', 'Ask for a consultation'),
  state,
  locale,
  fields: html`<input type="hidden" name="changeKind" value="${kind}"><input type="hidden" name="changeId" value="${id}">
<p class="hint">${t('変更後の規約に同意いただけない場合は、誠意をもって協議いたします（第2条第3項）。', 'If you do not agree with the change, the provider will consult with you in good faith (Art. 2.3).')}</p>
${field(formId, { name: 'message', label: t('同意できない理由・ご要望', 'Why you disagree, and what you ask for'), type: 'textarea', required: true }, state)}`,
})}</details>`;
  };

  // ---- the terms governing this customer now, history, the versions ---------------------------
  const termsPage = async (req: FastifyRequest, reply: FastifyReply, p: Customer, state?: FormState, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const versions = await listTermsVersions(ctx.db);
    const now = ctx.clock.now();
    // R1.3, R2.1: the version in force for this customer now (effective and notified to it).
    let governing: TermsVersionSummary | undefined;
    const newest = versions[0] ? await getTermsVersion(ctx.db, versions[0].id) : undefined;
    const first = newest?.document.articles[0];
    if (first) {
      const answer = await governingText(ctx.db, { topic: `article:${first.number}`, customerId: p.customerId, at: now });
      governing = versions.find((v) => v.id === answer.termsVersion?.id);
    }
    const doc = governing ? (await getTermsVersion(ctx.db, governing.id)).document : undefined;
    // Published but not yet in force for this customer (effective later, or not yet notified).
    const pending = governing ? versions.filter((v) => v.id !== governing.id && v.effectiveDate >= governing.effectiveDate && (v.publishedAt ?? '') > (governing.publishedAt ?? '')) : versions;
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('利用規約', 'Terms of use'),
      path: '/portal/terms',
      status,
      body: html`${doneNote(req, DONE(t))}
<p><a href="/portal/terms/notices">${t('お知らせと通知の記録', 'Notices and the record of notifications')}</a> · <a href="/portal/terms/consultations">${t('協議', 'Consultations')}</a></p>
${governing && doc
  ? html`<section class="panel" data-testid="governing"><h2>${t('現在適用されている利用規約', 'The terms that govern you now')}: <span data-testid="governing-edition">${governing.edition}</span></h2>
<p>${t('施行日', 'Effective')} ${fmtDate(governing.effectiveDate, locale)} · ${t('公開', 'Published')} ${fmtTime(governing.publishedAt, locale)} · ${governing.counts.articles} ${t('条', 'articles')}</p>
<p class="hint">${t('お知らせは利用規約の一部を構成し、利用規約に優先して適用されます。後のお知らせが先のお知らせに優先します（第1条）。', 'Notices form part of the terms and prevail over them; a later notice prevails over an earlier one (Art. 1).')}</p>
${isAdmin(p) ? disagreeForm(pc, 'terms_version', governing.id, state) : ''}</section>
${pending.length ? html`<div class="notice" role="status">${t('次の版がまだ効力を生じていません', 'Not in force for you yet')}: ${pending.map((v) => html`<a href="/portal/terms/versions/${v.id}">${v.edition}</a>（${t('施行日', 'effective')} ${fmtDate(v.effectiveDate, locale)}） `)}</div>` : ''}
<details class="action" open><summary>${t('本文', 'Full text')}</summary>${documentHtml(doc, pc)}</details>`
  : html`<p>${t('現在適用されている利用規約はありません。', 'No terms are in force for you yet.')}</p>`}
<h2>${t('版の一覧', 'Versions')}</h2>
${versions.length ? html`<div class="table-wrap"><table><thead><tr><th scope="col">${t('版', 'Edition')}</th><th scope="col">${t('施行日', 'Effective')}</th><th scope="col">${t('公開', 'Published')}</th><th scope="col">${t('条数', 'Articles')}</th></tr></thead>
<tbody>${versions.map((v) => html`<tr><td><a href="/portal/terms/versions/${v.id}">${v.edition}</a>${v.id === governing?.id ? html` <strong>${t('（適用中）', '(in force)')}</strong>` : ''}</td><td>${fmtDate(v.effectiveDate, locale)}</td><td>${fmtTime(v.publishedAt, locale)}</td><td>${v.counts.articles}</td></tr>`)}</tbody></table></div>` : html`<p>${t('公開された版はありません。', 'No published versions.')}</p>`}
<h2>${t('版の比較', 'Compare two versions')}</h2>
${diffForm('/portal/terms/diff', versions, pc)}`,
    });
  };
  app.get('/portal/terms', { schema: { hide: true } }, async (req, reply) => termsPage(req, reply, customer(req)));

  const versionPage = async (req: FastifyRequest, reply: FastifyReply, p: Customer, id: string, state?: FormState, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    if (!z.uuid().safeParse(id).success) throw errors.notFound('利用規約の版 / terms version', id);
    const v = await getTermsVersion(ctx.db, id);
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t(`利用規約 ${v.edition}`, `Terms of use, edition ${v.edition}`),
      path: `/portal/terms/versions/${v.id}`,
      status,
      body: html`<p><a href="/portal/terms">${t('利用規約に戻る', 'Back to the terms')}</a></p>
<dl class="facts"><dt>${t('施行日', 'Effective')}</dt><dd>${fmtDate(v.effectiveDate, locale)}</dd><dt>${t('公開', 'Published')}</dt><dd>${fmtTime(v.publishedAt, locale)}</dd><dt>SHA-256</dt><dd><code>${v.sourceSha256}</code></dd></dl>
${isAdmin(p) ? disagreeForm(pc, 'terms_version', v.id, state) : ''}
${documentHtml(v.document, pc)}`,
    });
  };
  app.get('/portal/terms/versions/:versionId', { schema: { hide: true } }, async (req, reply) => versionPage(req, reply, customer(req), (req.params as { versionId: string }).versionId));

  app.get('/portal/terms/diff', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t } = pc;
    const { from, to } = diffVersionIds(req);
    const versions = await listTermsVersions(ctx.db);
    const d = await diffTermsVersions(ctx.db, from, to);
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('利用規約の新旧比較', 'Differences between versions'),
      path: `/portal/terms/diff?from=${from}&to=${to}`,
      body: html`<p><a href="/portal/terms">${t('利用規約に戻る', 'Back to the terms')}</a></p>${diffForm('/portal/terms/diff', versions, pc, { from, to })}<h2>${t('差分', 'Differences')}</h2>${diffHtml(d, pc)}`,
    });
  });

  // ---- notices (お知らせ) and the record of notifications (R1.2, R2.1) --------------------------
  const noticesPage = async (req: FastifyRequest, reply: FastifyReply, p: Customer, state?: FormState, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const notices = await noticesForCustomer(ctx.db, p.customerId);
    const records = await notificationRecordsFor(ctx.db, p.customerId);
    const where = (n: NoticeView) => (n.channel === 'support_guide' ? `${n.channelLabel[locale]}（${n.guideEdition ?? ''}）` : n.channelLabel[locale]);
    const state_ = (s: string) => (s === 'sent' ? t('送信済み', 'sent') : s === 'failed' ? t('送信失敗', 'failed') : s === 'queued' ? t('送信待ち', 'queued') : t('不明', 'unknown'));
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('お知らせ', 'Notices'),
      path: '/portal/terms/notices',
      status,
      body: html`<p class="hint">${t('サポートサイトとサポートガイドのお知らせは利用規約の一部を構成し、利用規約に優先します（第1条）。', 'Notices on the support site and in the Support Guide form part of the terms and prevail over them (Art. 1).')}</p>
${notices.length ? notices.map((n) => html`<section class="panel" data-testid="notice"><h2>${locale === 'en' && n.title.en ? n.title.en : n.title.ja}</h2>
<p class="muted">${where(n)} · ${t('発効', 'Effective')} ${fmtTime(n.effectiveAt, locale)} · ${t('掲載', 'Posted')} ${fmtTime(n.publishedAt, locale)} · ${n.audience === 'all' ? t('全てのお客様宛て', 'to every customer') : t('お客様宛て', 'addressed to you')}</p>
<p class="diff-line">${locale === 'en' && n.body.en ? n.body.en : n.body.ja}</p>
${isAdmin(p) ? disagreeForm(pc, 'notice', n.id, state) : ''}</section>`) : html`<p>${t('お知らせはありません。', 'No notices.')}</p>`}
<h2>${t('通知の記録', 'When and how you were told')}</h2>
<p class="hint">${t('変更は、お客様に通知された時点から適用されます（第2条第2項）。', 'A change applies to you from when it was notified to you (Art. 2.2).')}</p>
${records.length ? html`<div class="table-wrap"><table data-testid="notification-records"><thead><tr><th scope="col">${t('変更', 'Change')}</th><th scope="col">${t('方法', 'How')}</th><th scope="col">${t('宛先', 'To')}</th><th scope="col">${t('通知', 'Notified')}</th><th scope="col">${t('送信', 'Sent')}</th></tr></thead>
<tbody>${records.map((r) => html`<tr><td>${r.change[locale]}</td><td>${r.channel === 'portal' ? t('ポータル掲載', 'portal') : t('電子メール', 'e-mail')}</td><td>${r.recipient ?? t('お客様ポータル', 'customer portal')}</td><td>${fmtTime(r.notifiedAt, locale)}</td><td>${r.email ? html`${state_(r.email.state)}${r.email.sentAt ? html` · ${fmtTime(r.email.sentAt, locale)}` : ''}` : '—'}</td></tr>`)}</tbody></table></div>` : html`<p>${t('記録はありません。', 'Nothing recorded.')}</p>`}`,
    });
  };
  app.get('/portal/terms/notices', { schema: { hide: true } }, async (req, reply) => noticesPage(req, reply, customer(req)));

  // ---- consultations (R2.2) -------------------------------------------------------------------
  app.get('/portal/terms/consultations', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const list = await listConsultations(ctx.db, { customerId: p.customerId });
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('協議', 'Consultations'),
      path: '/portal/terms/consultations',
      body: html`<p class="hint">${t('利用規約やお知らせの変更に同意いただけない場合の協議です（第2条第3項）。申し出はお客様の管理者が、利用規約またはお知らせのページから行えます。', 'Consultations about changes you do not agree with (Art. 2.3). Your admins open one from the terms or notices page.')}</p>
${list.length ? html`<ul>${list.map((c) => html`<li><a href="/portal/terms/consultations/${c.id}">${c.change.label[locale]}</a> · ${fmtTime(c.openedAt, locale)} · ${c.state === 'open' ? t('協議中', 'open') : t('終了', 'closed')}</li>`)}</ul>` : html`<p>${t('協議はありません。', 'No consultations.')}</p>`}`,
    });
  });

  const ownConsultation = async (p: Customer, id: string): Promise<ConsultationView> => {
    const c = z.uuid().safeParse(id).success ? await findConsultation(ctx.db, id) : undefined;
    if (!c || c.customerId !== p.customerId) throw errors.notFound('協議 / consultation', id);
    return c;
  };

  const consultationPage = async (req: FastifyRequest, reply: FastifyReply, p: Customer, state?: FormState, status = 200) => {
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const c = await ownConsultation(p, (req.params as { consultationId: string }).consultationId);
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('協議', 'Consultation'),
      path: `/portal/terms/consultations/${c.id}`,
      status,
      body: html`${doneNote(req, DONE(t))}<p><a href="/portal/terms/consultations">${t('協議の一覧', 'All consultations')}</a></p>
${consultationThread(c, pc)}
${c.state === 'open' && isAdmin(p)
  ? form({ id: 'reply', action: `/portal/terms/consultations/${c.id}/messages`, csrf: pc.csrf, submit: t('送信する', 'Send'), state, locale, fields: field('reply', { name: 'message', label: t('メッセージ', 'Message'), type: 'textarea', required: true }, state) })
  : ''}`,
    });
  };
  app.get('/portal/terms/consultations/:consultationId', { schema: { hide: true } }, async (req, reply) => consultationPage(req, reply, customer(req)));

  app.post('/portal/terms/consultations', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const f = (req.body ?? {}) as FormData;
    checkCsrf(deps.csrf, req, f);
    if (!isAdmin(p)) throw errors.forbidden("only the customer's admins can register disagreement", 'お客様の管理者のみが申し出ることができます');
    const locale: Locale = pcOf(req, reply, p).locale;
    const changeId = str(f, 'changeId') ?? '';
    const formId = `disagree-${changeId}`;
    // A refusal re-renders the page that holds the form: the notices, or that version's page.
    const back = (rq: FastifyRequest, rp: FastifyReply, pp: Customer, st: FormState, code: number) =>
      str(f, 'changeKind') === 'notice' || !z.uuid().safeParse(changeId).success ? noticesPage(rq, rp, pp, st, code) : versionPage(rq, rp, pp, changeId, st, code);
    const parsed = validate(disagreementBody, { changeKind: str(f, 'changeKind'), changeId, message: str(f, 'message') ?? '' }, locale);
    if (!parsed.ok) return back(req, reply, p, { form: formId, values: f, errors: parsed.errors }, 400);
    try {
      const c = await openConsultation(ctx.db, ctx.clock, actorOf(p), { customerId: p.customerId, changeKind: parsed.data.changeKind, changeId: parsed.data.changeId, message: parsed.data.message });
      return seeOther(reply, `/portal/terms/consultations/${c.id}?done=opened`);
    } catch (err) {
      if (err instanceof HokanError && err.httpStatus < 500 && err.code !== 'not_found') return back(req, reply, p, refusalState(formId, f, err, locale), err.httpStatus);
      throw err;
    }
  });

  app.post('/portal/terms/consultations/:consultationId/messages', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const f = (req.body ?? {}) as FormData;
    checkCsrf(deps.csrf, req, f);
    const c = await ownConsultation(p, (req.params as { consultationId: string }).consultationId);
    if (!isAdmin(p)) throw errors.forbidden("only the customer's admins take part in the consultation", '協議にはお客様の管理者が参加します');
    const locale = pcOf(req, reply, p).locale;
    const parsed = validate(consultationMessageBody, { message: str(f, 'message') ?? '' }, locale);
    if (!parsed.ok) return consultationPage(req, reply, p, { form: 'reply', values: f, errors: parsed.errors }, 400);
    try {
      await addConsultationMessage(ctx.db, ctx.clock, actorOf(p), c.id, parsed.data.message);
    } catch (err) {
      if (err instanceof HokanError && err.httpStatus < 500 && err.code !== 'not_found') return consultationPage(req, reply, p, refusalState('reply', f, err, locale), err.httpStatus);
      throw err;
    }
    return seeOther(reply, `/portal/terms/consultations/${c.id}?done=sent`);
  });

  // ---- incident and stop notices addressed to this customer (R8.1, R7.2) ----------------------
  app.get('/portal/notices', { schema: { hide: true } }, async (req, reply) => {
    const p = customer(req);
    const pc = pcOf(req, reply, p);
    const { t, locale } = pc;
    const posts = await listCustomerNotices(ctx.db, p.customerId);
    const state_ = (s: string) => (s === 'sent' ? t('送信済み', 'sent') : s === 'failed' ? t('送信失敗', 'failed') : t('送信待ち', 'queued'));
    return shell(reply, pc, {
      face: 'portal',
      nav: nav(pc),
      title: t('障害通知', 'Incident notices'),
      path: '/portal/notices',
      body: html`<p class="hint">${t('障害と停止について、お客様に送られた通知（第一報・続報・復旧報、計画停止のご案内）です。', 'The notices sent to you about incidents and stops (first report, updates, recovery, planned stops).')}</p>
${posts.length ? posts.map((n) => html`<section class="panel" data-testid="incident-notice"><h2>${n.label[locale]}: ${n.subject[locale]}</h2>
<p class="muted">${fmtTime(n.postedAt, locale)}${n.incidentId ? '' : n.stopId ? html` · ${t('停止', 'stop')}` : ''}</p>
<p class="diff-line">${n.body[locale]}</p>
<details><summary>${t('送信の記録', 'Delivery record')}</summary><ul>${n.recipients.map((r) => html`<li>${r.address} · ${state_(r.state)}${r.acceptedAt ? html` · ${fmtTime(r.acceptedAt, locale)}` : ''}</li>`)}</ul></details></section>`) : html`<p>${t('通知はありません。', 'No notices.')}</p>`}`,
    });
  });
}
