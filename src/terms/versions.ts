import { createHash, randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { TermsVersionsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import { formatJapanDate, isValidDate, startOfJapanDay } from '../core/japan-time.js';
import { diffLines, type LineChange } from './diff.js';
import { customersUnderContract, notifyChange, type NotifyResult } from './notifications.js';
import { articleTitle, parseTermsDocument, renderArticle, type EditionEntry, type TermsDocument } from './parser.js';

type VersionRow = Selectable<TermsVersionsTable>;

/** R1.1: a terms version as the API and the pages show it. */
export interface TermsVersionSummary {
  id: string;
  edition: string;
  /** Japan calendar date from which it applies (once notified, R2.1). */
  effectiveDate: string;
  /** 00:00 JST of the effective date. */
  effectiveAt: string;
  title: string | null;
  state: 'draft' | 'published';
  publishedAt: string | null;
  createdAt: string;
  createdBy: string;
  sourceSha256: string;
  counts: { articles: number; paragraphs: number; items: number };
  /** The edition history of its 附則. */
  history: EditionEntry[];
}

export interface TermsVersionView extends TermsVersionSummary {
  document: TermsDocument;
}

const MAX_TEXT = 512 * 1024;

function counts(doc: TermsDocument): TermsVersionSummary['counts'] {
  return {
    articles: doc.articles.length,
    paragraphs: doc.articles.reduce((n, a) => n + a.paragraphs.length, 0),
    items: doc.articles.reduce((n, a) => n + a.paragraphs.reduce((m, p) => m + p.items.length, 0), 0),
  };
}

export function documentOf(row: Pick<VersionRow, 'document'>): TermsDocument {
  return row.document as TermsDocument;
}

function summary(r: VersionRow): TermsVersionSummary {
  const doc = documentOf(r);
  return {
    id: r.id,
    edition: r.edition,
    effectiveDate: r.effective_date,
    effectiveAt: startOfJapanDay(r.effective_date).toISOString(),
    title: r.title,
    state: r.state,
    publishedAt: r.published_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    createdBy: r.created_by,
    sourceSha256: r.source_sha256,
    counts: counts(doc),
    history: doc.history,
  };
}

const view = (r: VersionRow): TermsVersionView => ({ ...summary(r), document: documentOf(r) });

export interface ImportTermsInput {
  edition: string;
  effectiveDate: string;
  text: string;
}

export interface ImportResult {
  version: TermsVersionView;
  /** Things worth a second look that do not stop the import. */
  warnings: string[];
}

export function validateEdition(edition: string): string {
  const e = edition.trim();
  if (e === '' || e.length > 40 || /[\u0000-\u001f\u007f]/.test(e)) throw errors.invalidField('edition', '版の名前は1〜40文字で、制御文字を含められません。', 'must be 1–40 characters without control characters');
  return e;
}

export function validateEffectiveDate(date: string): string {
  if (!isValidDate(date)) throw errors.invalidField('effectiveDate', `「${date}」は日付（YYYY-MM-DD）ではありません。`, `"${date}" is not a calendar date YYYY-MM-DD`);
  return date;
}

/** R1.1: imports a terms document as a draft version (published later by publishTermsVersion). */
export async function importTermsVersion(db: Db, clock: Clock, actor: Actor, input: ImportTermsInput): Promise<ImportResult> {
  const edition = validateEdition(input.edition);
  const effectiveDate = validateEffectiveDate(input.effectiveDate);
  if (input.text.trim() === '') throw errors.invalidField('text', '本文が空です。', 'the document is empty');
  if (input.text.length > MAX_TEXT) throw errors.invalidField('text', '本文が長すぎます。', `longer than ${MAX_TEXT} characters`);
  const doc = parseTermsDocument(input.text);
  const warnings: string[] = [];
  const last = doc.history.at(-1);
  if (last && last.date !== effectiveDate) warnings.push(`the 附則's newest edition ${last.ordinal} is dated ${last.date}, not ${effectiveDate} / 附則の最新の版（${last.ordinal}）の日付は ${last.date} で、施行日 ${effectiveDate} と異なります`);
  return db.transaction().execute(async (trx) => {
    const taken = await trx.selectFrom('terms_versions').select('id').where('edition', '=', edition).executeTakeFirst();
    if (taken) throw errors.duplicate('利用規約の版 / terms edition', edition);
    const row = await trx
      .insertInto('terms_versions')
      .values({
        id: randomUUID(),
        edition,
        effective_date: effectiveDate,
        title: doc.title,
        document: JSON.stringify(doc),
        source_text: input.text,
        source_sha256: createHash('sha256').update(input.text, 'utf8').digest('hex'),
        state: 'draft',
        published_at: null,
        published_by: null,
        created_by: actor.label,
        created_at: clock.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const c = counts(doc);
    await appendAudit(trx, clock, { actor, action: 'terms.version_imported', subjectType: 'terms_version', subjectId: row.id, details: { edition, effectiveDate, sha256: row.source_sha256, ...c, editions: doc.history.length } });
    return { version: view(row), warnings };
  });
}

const SUBJECT = (edition: string) => `【重要】利用規約改定のお知らせ（${edition}）/ Revised terms of use (edition ${edition})`;

function versionNoticeText(v: VersionRow, changed: string[], to: { customerName: string; displayName: string }): string {
  const list = changed.length ? changed.map((c) => `  - ${c}`).join('\n') : '  - (全文 / full text)';
  return [
    `${to.customerName}`,
    `${to.displayName} 様`,
    '',
    `データセンターサービス利用規約を改定しました（${v.edition}）。`,
    `施行日: ${formatJapanDate(v.effective_date)}（この通知の時点より前の場合は、通知の時点から適用されます。第2条第2項）`,
    '',
    '変更された条:',
    list,
    '',
    '全文と新旧の差分はお客様ポータルの「利用規約」でご覧いただけます。',
    '変更後の規約に同意いただけない場合は、ポータルからお申し出ください。誠意をもって協議いたします（第2条第3項）。',
    '',
    '----',
    '',
    `Dear ${to.displayName},`,
    '',
    `The data-center service terms of use have been revised (edition ${v.edition}).`,
    `Effective: ${v.effective_date} (Japan), or from this notice if that is later (Art. 2.2).`,
    `Articles changed: ${changed.length ? changed.length : 'full text'} (listed above).`,
    'The full text and the differences are in the customer portal under "Terms of use".',
    'If you do not agree with the revised terms, tell us through the portal and we will consult in good faith (Art. 2.3).',
    '',
  ].join('\n');
}

/**
 * R1.1, R2.1: publishes a draft version. From then on it is immutable (the database refuses
 * changes), shown on every customer's portal and e-mailed to every customer under contract, all
 * in one transaction; each notification is recorded per customer.
 */
export async function publishTermsVersion(db: Db, clock: Clock, actor: Actor, id: string): Promise<{ version: TermsVersionView; notified: NotifyResult }> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('terms_versions').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('利用規約の版 / terms version', id);
    if (row.state === 'published') throw errors.conflict('この版は公開済みで、変更できません。', 'This version is already published and cannot change.');
    const now = clock.now();
    const published = await trx.updateTable('terms_versions').set({ state: 'published', published_at: now, published_by: actor.label }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    const previous = await trx
      .selectFrom('terms_versions')
      .selectAll()
      .where('state', '=', 'published')
      .where('id', '!=', id)
      .orderBy('effective_date', 'desc')
      .orderBy('published_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    const changed = previous ? diffDocuments(documentOf(previous), documentOf(published)).filter((a) => a.status !== 'unchanged').map((a) => `${a.title}（${STATUS_JA[a.status]}）`) : [];
    const notified = await notifyChange(trx, clock, { kind: 'terms_version', id, subject: SUBJECT(published.edition), text: (to) => versionNoticeText(published, changed, to) }, await customersUnderContract(trx));
    await appendAudit(trx, clock, { actor, action: 'terms.version_published', subjectType: 'terms_version', subjectId: id, details: { edition: published.edition, effectiveDate: published.effective_date, customers: notified.customers, emails: notified.emails, skipped: notified.skipped.length } });
    return { version: view(published), notified };
  });
}

/** Published versions, newest effective date first; drafts too when asked (operators). */
export async function listTermsVersions(db: DbOrTx, opts: { includeDrafts?: boolean } = {}): Promise<TermsVersionSummary[]> {
  let q = db.selectFrom('terms_versions').selectAll();
  if (!opts.includeDrafts) q = q.where('state', '=', 'published');
  const rows = await q.orderBy('effective_date', 'desc').orderBy('created_at', 'desc').execute();
  return rows.map(summary);
}

export async function getTermsVersion(db: DbOrTx, id: string, opts: { includeDrafts?: boolean } = {}): Promise<TermsVersionView> {
  const row = await db.selectFrom('terms_versions').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || (row.state !== 'published' && !opts.includeDrafts)) throw errors.notFound('利用規約の版 / terms version', id);
  return view(row);
}

/** The published versions as rows, for precedence (same domain). */
export async function publishedVersionRows(db: DbOrTx): Promise<VersionRow[]> {
  return db.selectFrom('terms_versions').selectAll().where('state', '=', 'published').orderBy('effective_date', 'asc').orderBy('published_at', 'asc').execute();
}

/** Every version's document (drafts included): what topics may name. */
export async function allDocuments(db: DbOrTx): Promise<TermsDocument[]> {
  return (await db.selectFrom('terms_versions').select('document').execute()).map(documentOf);
}

export type ArticleStatus = 'added' | 'removed' | 'changed' | 'unchanged';
const STATUS_JA: Record<ArticleStatus, string> = { added: '新設', removed: '削除', changed: '変更', unchanged: '変更なし' };

export interface ArticleDiff {
  number: number;
  status: ArticleStatus;
  /** The title in the newer version (the older one's when removed). */
  title: string;
  fromTitle: string | null;
  toTitle: string | null;
  /** Line-level changes with character-level detail; empty when unchanged. */
  lines: LineChange[];
}

/** R1.1: per article, added / removed / changed with a text diff. Articles are matched by number. */
export function diffDocuments(from: TermsDocument, to: TermsDocument): ArticleDiff[] {
  const numbers = [...new Set([...from.articles.map((a) => a.number), ...to.articles.map((a) => a.number)])].sort((x, y) => x - y);
  return numbers.map((n) => {
    const a = from.articles.find((x) => x.number === n);
    const b = to.articles.find((x) => x.number === n);
    const ta = a ? renderArticle(a) : '';
    const tb = b ? renderArticle(b) : '';
    const status: ArticleStatus = !a ? 'added' : !b ? 'removed' : ta === tb ? 'unchanged' : 'changed';
    const lines = status === 'unchanged' ? [] : status === 'added' ? tb.split('\n').map((text) => ({ op: 'insert' as const, text })) : status === 'removed' ? ta.split('\n').map((text) => ({ op: 'delete' as const, text })) : diffLines(ta, tb);
    return { number: n, status, title: articleTitle((b ?? a)!), fromTitle: a ? articleTitle(a) : null, toTitle: b ? articleTitle(b) : null, lines };
  });
}

export interface TermsDiff {
  from: TermsVersionSummary;
  to: TermsVersionSummary;
  summary: Record<ArticleStatus, number>;
  articles: ArticleDiff[];
}

export async function diffTermsVersions(db: DbOrTx, fromId: string, toId: string, opts: { includeDrafts?: boolean } = {}): Promise<TermsDiff> {
  const from = await getTermsVersion(db, fromId, opts);
  const to = await getTermsVersion(db, toId, opts);
  const articles = diffDocuments(from.document, to.document);
  const s: Record<ArticleStatus, number> = { added: 0, removed: 0, changed: 0, unchanged: 0 };
  for (const a of articles) s[a.status]++;
  const strip = ({ document: _d, ...rest }: TermsVersionView): TermsVersionSummary => rest;
  return { from: strip(from), to: strip(to), summary: s, articles };
}
