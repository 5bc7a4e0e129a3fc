import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContract } from '../../src/contracts/contracts.js';
import { createCustomer } from '../../src/contracts/customers.js';
import { listAudit, systemActor } from '../../src/core/audit/audit-log.js';
import { createMailTransport, deliverDueEmails } from '../../src/notify/outbox.js';
import { notifyChange } from '../../src/terms/notifications.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener } from '../helpers/smtp.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const TERMS = fs.readFileSync(path.join(repoRoot, 'test/fixtures/terms-of-use.ja.txt'), 'utf8');
const FROM = 'hokan <noreply@hokan.example.jp>';

describe.each(databaseKinds)('terms, notices, precedence, notification records and consultations over HTTP on %s', (kind) => {
  let app: TestApp;
  let smtp: TestSmtpListener;
  let sakura: string;
  let ume: string;
  let kiri: string;
  let ops: string;
  let sakuraAdmin: string;
  let sakuraMember: string;
  let umeAdmin: string;
  let versionId: string;
  let noticeId: string;
  const signInAll = async () => {
    ops = await app.signIn('terms-ops');
    sakuraAdmin = await app.signIn('sakura-admin');
    sakuraMember = await app.signIn('sakura-member');
    umeAdmin = await app.signIn('ume-admin');
  };

  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T01:00:00Z');
    await addOperator(app, 'terms-ops', ['operator']);
    sakura = (await addCustomerWithContract(app, 'sakura')).customer.id;
    ume = (await addCustomerWithContract(app, 'ume')).customer.id;
    await addCustomerUser(app, sakura, 'sakura-admin', 'customer_admin');
    await addCustomerUser(app, sakura, 'sakura-member', 'member');
    await addCustomerUser(app, ume, 'ume-admin', 'customer_admin');
    // A customer whose registered contact address is also its admin's: one e-mail, both roles.
    const k = await createCustomer(app.ctx.db, app.clock, systemActor('test'), { code: 'kiri', name: 'kiri 株式会社', contactEmail: 'kiri-admin@customer.example.jp' });
    kiri = k.id;
    await createContract(app.ctx.db, app.clock, systemActor('test'), { customerId: kiri, contractNumber: 'C-kiri', termStart: '2026-04-01', termEnd: '2027-03-31', monthlyFeeYen: 1, systemUseContractNumber: 'SU-kiri', supportContractNumber: 'SP-kiri', supportContractEnd: null });
    await addCustomerUser(app, kiri, 'kiri-admin', 'customer_admin');
    await signInAll();
  });
  afterAll(async () => {
    await app?.close();
    await smtp?.stop();
  });

  it('R1.1 imports the real terms document, refuses bad input naming the field or the line, and publishes once (immutable)', async () => {
    const post = (payload: object, cookie = ops) => app.request({ method: 'POST', url: '/api/v1/terms/versions', cookie, payload });
    const empty = await post({ edition: '6.5版', effectiveDate: '2021-08-16', text: '   ' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.details).toEqual([{ path: 'text', message: 'the document is empty' }]);
    const malformed = await post({ edition: '6.5版', effectiveDate: '2021-08-16', text: '第1条（a）\n1. x\n\n第3条（b）\n1. y' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.details).toEqual([{ path: 'text', message: 'line 4: expected article 2, found article 3' }]);
    expect(malformed.json().error.message.ja).toContain('4行目');
    const badDate = await post({ edition: '6.5版', effectiveDate: '2021-02-30', text: TERMS });
    expect(badDate.statusCode).toBe(400);
    expect(badDate.json().error.details[0].path).toBe('body.effectiveDate');
    expect((await post({ edition: '6.5版', effectiveDate: '2021-08-16', text: TERMS }, sakuraAdmin)).statusCode).toBe(403);
    expect(await app.ctx.db.selectFrom('terms_versions').select('id').execute()).toEqual([]);

    const ok = await post({ edition: '6.5版', effectiveDate: '2021-08-16', text: TERMS });
    expect(ok.statusCode).toBe(201);
    const v = ok.json().version;
    versionId = v.id;
    expect(v).toMatchObject({ edition: '6.5版', effectiveDate: '2021-08-16', effectiveAt: '2021-08-15T15:00:00.000Z', state: 'draft', title: 'データセンターサービス利用規約', counts: { articles: 24, paragraphs: 59, items: 41 } });
    expect(v.history.map((h: { label: string }) => h.label)).toEqual(['1', '2', '3', '4', '5', '6', '6.5']);
    expect(ok.json().warnings).toEqual([]);
    expect((await post({ edition: '6.5版', effectiveDate: '2021-08-16', text: TERMS })).statusCode).toBe(409);
    const other = await post({ edition: '7版', effectiveDate: '2027-01-01', text: TERMS });
    expect(other.json().warnings[0]).toContain('2021-08-16');

    // A draft is the operators' alone.
    expect((await app.request({ method: 'GET', url: '/api/v1/terms/versions', cookie: sakuraAdmin })).json().versions).toEqual([]);
    expect((await app.request({ method: 'GET', url: `/api/v1/terms/versions/${versionId}`, cookie: sakuraAdmin })).statusCode).toBe(404);

    const pub = await app.request({ method: 'POST', url: `/api/v1/terms/versions/${versionId}/publish`, cookie: ops, payload: {} });
    expect(pub.statusCode).toBe(200);
    // sakura: contact + admin (not the member); ume: contact + admin; kiri: one address for both.
    expect(pub.json().notified).toEqual({ customers: 3, emails: 5, skipped: 0 });
    expect((await app.request({ method: 'POST', url: `/api/v1/terms/versions/${versionId}/publish`, cookie: ops, payload: {} })).statusCode).toBe(409);
    // The database itself refuses to change or delete a published version.
    await expect(app.ctx.db.updateTable('terms_versions').set({ edition: 'tampered' }).where('id', '=', versionId).execute()).rejects.toThrow(/immutable/);
    await expect(app.ctx.db.deleteFrom('terms_versions').where('id', '=', versionId).execute()).rejects.toThrow(/immutable/);

    const list = (await app.request({ method: 'GET', url: '/api/v1/terms/versions', cookie: sakuraMember })).json().versions;
    expect(list.map((x: { edition: string }) => x.edition)).toEqual(['6.5版']);
    const full = (await app.request({ method: 'GET', url: `/api/v1/terms/versions/${versionId}`, cookie: sakuraMember })).json().version;
    expect(full.document.articles[6].paragraphs[1].items[3].text).toBe('その他合理的な理由により弊社が必要と認めた場合');
    const audit = await listAudit(app.ctx.db, { subjectType: 'terms_version', subjectId: versionId });
    expect(audit.map((a) => a.action)).toEqual(['terms.version_imported', 'terms.version_published']);
  });

  it('R2.1 e-mails the change to each customer\'s contact and admins through a real SMTP listener, once per recipient, and records when and how', async () => {
    const records = async (customerId: string, cookie = sakuraAdmin) => app.request({ method: 'GET', url: `/api/v1/customers/${customerId}/terms-notifications?changeKind=terms_version&changeId=${versionId}`, cookie });
    const before = (await records(sakura)).json().records;
    expect(before.map((r: { channel: string; recipient: string | null }) => [r.channel, r.recipient])).toEqual([
      ['portal', null],
      ['email', 'sakura-admin@customer.example.jp'],
      ['email', 'sakura@example.jp'],
    ]);
    expect(before[0]).toMatchObject({ notifiedAt: '2026-11-24T01:00:00.000Z', email: null, recipientRoles: ['customer_users'] });
    expect(before[1]).toMatchObject({ recipientRoles: ['customer_admin'], email: { state: 'queued', queuedAt: '2026-11-24T01:00:00.000Z', sentAt: null } });
    expect(before[2]).toMatchObject({ recipientRoles: ['contact'] });

    app.clock.advance(90_000);
    expect(await deliverDueEmails(app.ctx.db, app.clock, createMailTransport(smtp.url, FROM))).toEqual({ sent: 5, retried: 0, failed: 0 });
    const got = smtp.received.filter((m) => m.subject.includes('利用規約改定'));
    expect(got.map((m) => m.to[0]).sort()).toEqual(['kiri-admin@customer.example.jp', 'sakura-admin@customer.example.jp', 'sakura@example.jp', 'ume-admin@customer.example.jp', 'ume@example.jp']);
    const mail = got.find((m) => m.to[0] === 'sakura-admin@customer.example.jp')!;
    expect(mail.subject).toBe('【重要】利用規約改定のお知らせ（6.5版）/ Revised terms of use (edition 6.5版)');
    expect(mail.text).toContain('sakura-admin 様');
    expect(mail.text).toContain('施行日: 2021年8月16日(月)');
    expect(mail.text).toContain('第2条第3項');
    expect(mail.text).toContain('Art. 2.3');

    const after = (await records(sakura)).json().records;
    expect(after[1].email).toMatchObject({ state: 'sent', queuedAt: '2026-11-24T01:00:00.000Z', sentAt: '2026-11-24T01:01:30.000Z', attempts: 1 });
    const kiriRecords = (await records(kiri, ops)).json().records.filter((r: { channel: string }) => r.channel === 'email');
    expect(kiriRecords.map((r: { recipient: string; recipientRoles: string[] }) => [r.recipient, r.recipientRoles])).toEqual([['kiri-admin@customer.example.jp', ['contact', 'customer_admin']]]);

    // Notifying the same change again queues nothing: one e-mail per change and recipient.
    const again = await app.ctx.db.transaction().execute((trx) => notifyChange(trx, app.clock, { kind: 'terms_version', id: versionId, subject: 'x', text: () => 'x' }, [sakura, ume, kiri]));
    expect(again.emails).toBe(0);
    expect(await app.ctx.db.selectFrom('outbound_emails').select('id').where('dedupe_key', 'like', `terms:terms_version:${versionId}:%`).execute()).toHaveLength(5);
    expect((await records(sakura)).json().records).toHaveLength(3);

    // Another customer's records are not found; a member sees its own customer's.
    expect((await records(sakura, umeAdmin)).statusCode).toBe(404);
    expect((await records(sakura, sakuraMember)).statusCode).toBe(200);
  });

  it('R1.2 notices: drafted, edited and published to chosen customers on the support site or a Support Guide edition; bad input refused; customers see only their own', async () => {
    const topics = (await app.request({ method: 'GET', url: '/api/v1/terms/topics', cookie: sakuraMember })).json();
    expect(topics.articles).toHaveLength(24);
    expect(topics.articles[9]).toEqual({ topic: 'article:10', heading: 'データの取扱', paragraphs: ['article:10.1', 'article:10.2', 'article:10.3', 'article:10.4', 'article:10.5'] });
    expect(topics.named.map((t: { topic: string }) => t.topic)).toContain('offsite_cycle');
    const post = (payload: object) => app.request({ method: 'POST', url: '/api/v1/terms/notices', cookie: ops, payload });
    const base = { channel: 'support_site', topic: 'article:10.1', titleJa: 'バックアップの取得時刻について', bodyJa: 'バックアップは毎日午前2時（日本時間）に取得します。', effectiveAt: '2026-12-01T00:00:00+09:00', customerIds: [sakura] };
    const refused: Array<[object, string]> = [
      [{ ...base, topic: 'weather' }, 'topic'],
      [{ ...base, topic: 'article:99' }, 'topic'],
      [{ ...base, topic: 'article:3.2' }, 'topic'],
      [{ ...base, effectiveAt: '2026-13-01T00:00:00+09:00' }, 'body.effectiveAt'],
      [{ ...base, effectiveAt: '2026-12-01' }, 'body.effectiveAt'],
      [{ ...base, channel: 'support_guide' }, 'guideEdition'],
      [{ ...base, customerIds: ['0b6f7a52-3c1e-4d6f-9a8b-1c2d3e4f5a6b'] }, 'customerIds'],
      [{ ...base, bodyJa: '  ' }, 'body.bodyJa'],
      [{ ...base, titleJa: '一行目\n二行目' }, 'body.titleJa'],
    ];
    for (const [payload, field] of refused) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.details.map((d: { path: string }) => d.path), JSON.stringify(payload)).toContain(field);
    }
    expect((await app.request({ method: 'POST', url: '/api/v1/terms/notices', cookie: sakuraAdmin, payload: base })).statusCode).toBe(403);

    const created = await post(base);
    expect(created.statusCode).toBe(201);
    noticeId = created.json().notice.id;
    expect(created.json().notice).toMatchObject({ state: 'draft', audience: 'chosen', customerIds: [sakura], topic: 'article:10.1' });
    expect((await app.request({ method: 'GET', url: `/api/v1/terms/notices/${noticeId}`, cookie: sakuraAdmin })).statusCode).toBe(404);
    const edited = await app.request({ method: 'PUT', url: `/api/v1/terms/notices/${noticeId}`, cookie: ops, payload: { ...base, topic: '第10条', channel: 'support_guide', guideEdition: '2026年12月版', titleEn: 'Backup time', bodyEn: 'Backups are taken daily at 02:00 JST.' } });
    expect(edited.statusCode).toBe(200);
    expect(edited.json().notice).toMatchObject({ topic: 'article:10', channel: 'support_guide', guideEdition: '2026年12月版' });
    const throwaway = (await post({ ...base, customerIds: undefined })).json().notice.id;
    expect((await app.request({ method: 'DELETE', url: `/api/v1/terms/notices/${throwaway}`, cookie: ops })).statusCode).toBe(204);

    app.clock.set('2026-11-25T03:00:00Z');
    await signInAll();
    const pub = await app.request({ method: 'POST', url: `/api/v1/terms/notices/${noticeId}/publish`, cookie: ops, payload: {} });
    expect(pub.statusCode).toBe(200);
    expect(pub.json().notified).toEqual({ customers: 1, emails: 2, skipped: 0 });
    expect((await app.request({ method: 'PUT', url: `/api/v1/terms/notices/${noticeId}`, cookie: ops, payload: base })).statusCode).toBe(409);
    expect((await app.request({ method: 'DELETE', url: `/api/v1/terms/notices/${noticeId}`, cookie: ops })).statusCode).toBe(409);
    await expect(app.ctx.db.updateTable('terms_notices').set({ body_ja: 'x' }).where('id', '=', noticeId).execute()).rejects.toThrow(/immutable/);

    const drafts = (await app.request({ method: 'GET', url: '/api/v1/terms/notices?state=draft', cookie: ops })).json().notices;
    expect(drafts).toEqual([]);
    const all = (await app.request({ method: 'GET', url: '/api/v1/terms/notices', cookie: ops })).json().notices;
    expect(all.map((n: { id: string; customerIds: string[] }) => [n.id, n.customerIds])).toEqual([[noticeId, [sakura]]]);
    const mine = (await app.request({ method: 'GET', url: '/api/v1/terms/notices', cookie: sakuraMember })).json().notices;
    expect(mine.map((n: { id: string }) => n.id)).toEqual([noticeId]);
    expect(mine[0]).toMatchObject({ audience: 'chosen', customerIds: [sakura], title: { ja: 'バックアップの取得時刻について', en: 'Backup time' }, publishedAt: '2026-11-25T03:00:00.000Z' });
    const theirs = await app.request({ method: 'GET', url: '/api/v1/terms/notices', cookie: umeAdmin });
    expect(theirs.json().notices).toEqual([]);
    expect((await app.request({ method: 'GET', url: `/api/v1/terms/notices/${noticeId}`, cookie: umeAdmin })).statusCode).toBe(404);
    const ums = (await app.request({ method: 'GET', url: `/api/v1/customers/${ume}/terms-notifications`, cookie: umeAdmin })).json().records;
    expect(ums.some((r: { changeId: string }) => r.changeId === noticeId)).toBe(false);
    const sak = (await app.request({ method: 'GET', url: `/api/v1/customers/${sakura}/terms-notifications?changeKind=notice`, cookie: sakuraAdmin })).json().records;
    expect(sak.map((r: { channel: string; change: { ja: string } }) => [r.channel, r.change.ja])).toEqual([
      ['portal', 'お知らせ「バックアップの取得時刻について」'],
      ['email', 'お知らせ「バックアップの取得時刻について」'],
      ['email', 'お知らせ「バックアップの取得時刻について」'],
    ]);
    const queued = await app.ctx.db.selectFrom('outbound_emails').select(['to_address', 'subject', 'text_body']).where('dedupe_key', 'like', `terms:notice:${noticeId}:%`).execute();
    expect(queued.map((q) => q.to_address).sort()).toEqual(['sakura-admin@customer.example.jp', 'sakura@example.jp']);
    expect(queued[0]!.subject).toBe('【お知らせ】バックアップの取得時刻について / Backup time');
    expect(queued[0]!.text_body).toContain('サポートガイド（2026年12月版）');
  });

  it('R1.3 which text governs: the notice for the customer it addresses, the terms for the other; customers ask only for themselves', async () => {
    const ask = (q: string, cookie: string) => app.request({ method: 'GET', url: `/api/v1/terms/governing?${q}`, cookie });
    const s = await ask('topic=article:10.1&at=2026-12-02T00:00:00%2B09:00', sakuraAdmin);
    expect(s.statusCode).toBe(200);
    const a = s.json().answer;
    expect(a).toMatchObject({ topic: 'article:10.1', customerId: sakura, termsVersion: { id: versionId, edition: '6.5版' }, governing: { kind: 'notice', id: noticeId, status: 'governs', text: { ja: 'バックアップは毎日午前2時（日本時間）に取得します。' } } });
    expect(a.chain.map((c: { kind: string; status: string }) => [c.kind, c.status])).toEqual([['terms', 'overridden'], ['notice', 'governs']]);
    expect(a.chain[0].text.ja).toContain('バックアップ作業を日次で実施する');
    expect(a.chain[0].reason.ja).toContain('第1条第3項');

    // Before the notice takes effect, the terms govern and the notice is shown as pending.
    const early = (await ask('topic=article:10.1&at=2026-11-30T00:00:00Z', sakuraAdmin)).json().answer;
    expect(early.governing).toMatchObject({ kind: 'terms', status: 'governs' });
    expect(early.chain.map((c: { kind: string; status: string }) => [c.kind, c.status])).toEqual([['terms', 'governs'], ['notice', 'pending']]);
    // Before the terms version was published nothing governs.
    expect((await ask('topic=article:10&at=2026-01-01T00:00:00Z', sakuraAdmin)).json().answer).toMatchObject({ governing: null, termsVersion: null, chain: [] });

    const u = await ask('topic=article:10.1&at=2026-12-02T00:00:00%2B09:00', umeAdmin);
    expect(u.json().answer.governing).toMatchObject({ kind: 'terms', id: versionId });
    expect(u.body).not.toContain(noticeId);
    expect((await ask(`topic=article:10.1&customerId=${sakura}`, umeAdmin)).statusCode).toBe(404);
    expect((await ask(`topic=article:10.1&customerId=${ume}`, ops)).statusCode).toBe(200);
    expect((await ask('topic=article:10.1', ops)).json().error.details[0].path).toBe('customerId');
    expect((await ask('topic=weather', sakuraAdmin)).json().error.details[0].path).toBe('topic');
    expect((await ask('topic=article:30', sakuraAdmin)).statusCode).toBe(400);
    expect((await ask('topic=article:1&at=yesterday', sakuraAdmin)).statusCode).toBe(400);
  });

  it('R2.2 a customer admin registers disagreement, which opens a consultation; operators reply and close; others see nothing of it', async () => {
    const open = (customerId: string, payload: object, cookie: string) => app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/consultations`, cookie, payload });
    const body = { changeKind: 'terms_version', changeId: versionId, message: '第20条の変更に同意できません。協議をお願いします。' };
    expect((await open(sakura, body, sakuraMember)).statusCode).toBe(403);
    expect((await open(sakura, body, umeAdmin)).statusCode).toBe(404);
    expect((await open(ume, { changeKind: 'notice', changeId: noticeId, message: 'x' }, umeAdmin)).statusCode).toBe(404);
    expect((await open(sakura, { ...body, message: ' ' }, sakuraAdmin)).statusCode).toBe(400);
    const res = await open(sakura, body, sakuraAdmin);
    expect(res.statusCode).toBe(201);
    const c = res.json().consultation;
    expect(c).toMatchObject({ customerId: sakura, state: 'open', change: { kind: 'terms_version', id: versionId, label: { ja: '利用規約 6.5版' } }, messages: [{ author: { kind: 'customer_user' }, body: body.message }] });
    expect((await open(sakura, body, sakuraAdmin)).statusCode).toBe(409);

    expect((await app.request({ method: 'GET', url: `/api/v1/consultations/${c.id}`, cookie: umeAdmin })).statusCode).toBe(404);
    expect((await app.request({ method: 'POST', url: `/api/v1/consultations/${c.id}/messages`, cookie: umeAdmin, payload: { message: 'x' } })).statusCode).toBe(404);
    expect((await app.request({ method: 'GET', url: '/api/v1/consultations', cookie: umeAdmin })).json().consultations).toEqual([]);
    expect((await app.request({ method: 'POST', url: `/api/v1/consultations/${c.id}/close`, cookie: sakuraAdmin, payload: { note: 'x' } })).statusCode).toBe(403);

    const reply = await app.request({ method: 'POST', url: `/api/v1/consultations/${c.id}/messages`, cookie: ops, payload: { message: 'ご連絡ありがとうございます。担当よりご説明いたします。' } });
    expect(reply.json().consultation.messages.map((m: { author: { kind: string } }) => m.author.kind)).toEqual(['customer_user', 'operator']);
    const closed = await app.request({ method: 'POST', url: `/api/v1/consultations/${c.id}/close`, cookie: ops, payload: { note: '説明により合意' } });
    expect(closed.json().consultation).toMatchObject({ state: 'closed', closeNote: '説明により合意' });
    expect((await app.request({ method: 'POST', url: `/api/v1/consultations/${c.id}/messages`, cookie: sakuraAdmin, payload: { message: 'x' } })).statusCode).toBe(409);
    const listed = (await app.request({ method: 'GET', url: `/api/v1/customers/${sakura}/consultations`, cookie: sakuraMember })).json().consultations;
    expect(listed.map((x: { id: string }) => x.id)).toEqual([c.id]);
    // A new consultation about the same change may open once the first is closed.
    expect((await open(sakura, body, sakuraAdmin)).statusCode).toBe(201);
    const audit = await listAudit(app.ctx.db, { subjectType: 'terms_consultation', subjectId: c.id });
    expect(audit.map((x) => x.action)).toEqual(['terms.disagreement_registered', 'terms.consultation_replied', 'terms.consultation_closed']);
    expect(audit.every((x) => x.customerId === sakura)).toBe(true);
    expect(audit[2]!.reason).toBe('説明により合意');
  });

  it('R1.1 the differences between two published versions, per article', async () => {
    const revised = TERMS.replace('データのバックアップ作業を日次で実施する', 'データのバックアップ作業を毎日実施する');
    const v7 = (await app.request({ method: 'POST', url: '/api/v1/terms/versions', cookie: ops, payload: { edition: '第七版', effectiveDate: '2027-04-01', text: revised } })).json().version;
    expect((await app.request({ method: 'GET', url: `/api/v1/terms/diff?from=${versionId}&to=${v7.id}`, cookie: sakuraAdmin })).statusCode).toBe(404);
    await app.request({ method: 'POST', url: `/api/v1/terms/versions/${v7.id}/publish`, cookie: ops, payload: {} });
    const d = (await app.request({ method: 'GET', url: `/api/v1/terms/diff?from=${versionId}&to=${v7.id}`, cookie: sakuraAdmin })).json().diff;
    expect(d.summary).toEqual({ added: 0, removed: 0, changed: 1, unchanged: 23 });
    expect(d.articles.find((a: { status: string }) => a.status === 'changed')).toMatchObject({ number: 10, title: '第10条（データの取扱）' });
    const mail = await app.ctx.db.selectFrom('outbound_emails').select('text_body').where('dedupe_key', '=', `terms:terms_version:${v7.id}:${sakura}:sakura@example.jp`).executeTakeFirstOrThrow();
    expect(mail.text_body).toContain('第10条（データの取扱）（変更）');
    // Published but not yet effective: the 6.5 edition still governs, 第七版 is pending.
    const g = (await app.request({ method: 'GET', url: '/api/v1/terms/governing?topic=article:4', cookie: umeAdmin })).json().answer;
    expect(g.termsVersion.edition).toBe('6.5版');
    expect(g.chain.map((c: { label: { ja: string }; status: string }) => c.status)).toEqual(['governs', 'pending']);
  });
});
