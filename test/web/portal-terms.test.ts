import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { databaseKinds } from '../helpers/databases.js';
import { postForm, webSignIn } from './helpers.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const TERMS = fs.readFileSync(path.join(repoRoot, 'test/fixtures/terms-of-use.ja.txt'), 'utf8');
const OLD_LINE = '1. 本件サービス等の提供区域は、特に定める場合を除き、日本国内に限るものとします。';
const NEW_LINE = '1. 本件サービス等の提供区域は、特に定める場合を除き、日本国内（離島を含みます。）に限るものとします。';
const TERMS_7 = TERMS.replace(OLD_LINE, NEW_LINE);

for (const kind of databaseKinds) {
  describe(`portal and console: terms, notices, consultations, reports, breaches (${kind})`, () => {
    let app: TestApp;
    let sakura: string;
    let midori: string;
    let ope: string;
    let sakuraAdmin: string;
    let sakuraMember: string;
    let midoriAdmin: string;
    let v65: string;
    let v7: string;
    let noticeId: string;
    let consultationId: string;
    let incidentId: string;
    let breachId: string;

    beforeAll(async () => {
      app = await startTestApp(kind);
      await addOperator(app, 'ope', ['admin', 'operator']);
      sakura = (await addCustomerWithContract(app, 'sakura')).customer.id;
      midori = (await addCustomerWithContract(app, 'midori', { termStart: '2026-09-01' })).customer.id;
      await addCustomerUser(app, sakura, 'sakura-admin', 'customer_admin');
      await addCustomerUser(app, sakura, 'sakura-member', 'member');
      await addCustomerUser(app, midori, 'midori-admin', 'customer_admin');
      ope = await webSignIn(app, 'console', 'ope');
      sakuraAdmin = await webSignIn(app, 'portal', 'sakura-admin');
      sakuraMember = await webSignIn(app, 'portal', 'sakura-member');
      midoriAdmin = await webSignIn(app, 'portal', 'midori-admin');
    });
    afterAll(async () => app?.close());

    const get = (url: string, cookie: string) => app.request({ method: 'GET', url, headers: { cookie } });

    it('R1.1 the console imports the terms through its form (errors next to the field, ja and en), previews the parsed articles and publishes', async () => {
      const empty = await postForm(app, ope, '/console/terms', '/console/terms/versions', { edition: '6.5版', effectiveDate: '2021-08-16', text: '' });
      expect(empty.statusCode).toBe(400);
      expect(empty.body).toContain('id="import-text-error">入力してください。');
      const malformed = await postForm(app, `${ope}; hokan_lang=en`, '/console/terms', '/console/terms/versions', { edition: '6.5版', effectiveDate: '2021-08-16', text: '第1条（a）\n1. x\n\n第3条（b）\n1. y' });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.body).toContain('id="import-text-error">terms document line 4: expected article 2, found article 3');
      expect(await app.ctx.db.selectFrom('terms_versions').select('id').execute()).toEqual([]);

      const ok = await postForm(app, ope, '/console/terms', '/console/terms/versions', { edition: '6.5版', effectiveDate: '2021-08-16', text: TERMS });
      expect(ok.statusCode).toBe(303);
      const preview = String(ok.headers['location']);
      v65 = /\/console\/terms\/versions\/([0-9a-f-]{36})/.exec(preview)![1]!;
      const page = await get(preview, ope);
      expect(page.body).toContain('data-testid="parsed-counts">24 条 · 59 項 · 41 号 · 7 版の履歴');
      expect(page.body).toContain('data-testid="version-state">下書き');
      expect(page.body).toContain('第4条（提供区域）');
      // A draft is not shown to customers.
      expect((await get(`/portal/terms/versions/${v65}`, sakuraAdmin)).statusCode).toBe(404);
      const pub = await postForm(app, ope, preview, `/console/terms/versions/${v65}/publish`, {});
      expect(pub.statusCode).toBe(303);
      expect((await get(`/console/terms/versions/${v65}`, ope)).body).toContain('data-testid="version-state">公開');

      app.clock.advance(60_000);
      const second = await postForm(app, ope, '/console/terms', '/console/terms/versions', { edition: '7版', effectiveDate: '2026-11-24', text: TERMS_7 });
      expect(second.statusCode).toBe(303);
      v7 = /\/console\/terms\/versions\/([0-9a-f-]{36})/.exec(String(second.headers['location']))![1]!;
      expect((await postForm(app, ope, `/console/terms/versions/${v7}`, `/console/terms/versions/${v7}/publish`, {})).statusCode).toBe(303);
      // Publishing twice is refused on the page, not as a crash.
      const again = await postForm(app, ope, `/console/terms/versions/${v7}`, `/console/terms/versions/${v7}/publish`, {});
      expect(again.statusCode).toBe(409);
      expect(again.body).toContain('この版は公開済みで、変更できません。');
    });

    it('R1.1 R1.3 the customer sees the version governing it now with its edition history, and a highlighted diff between two versions (ja and en)', async () => {
      const page = await get('/portal/terms', sakuraAdmin);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('data-testid="governing-edition">7版');
      expect(page.body).toContain('日本国内（離島を含みます。）に限るものとします');
      expect(page.body).toMatch(/data-testid="edition-history">.*第六、五版/s);
      expect(page.body).not.toContain('<script');
      const diff = await get(`/portal/terms/diff?from=${v65}&to=${v7}`, sakuraAdmin);
      expect(diff.statusCode).toBe(200);
      expect(diff.body).toContain('data-testid="diff-summary">6.5版 → 7版: 新設 0 · 削除 0 · 変更 1 · 変更なし 23');
      expect(diff.body).toContain('data-status="changed"');
      expect(diff.body).toContain('<ins class="d">（離島を含みます。）</ins>');
      expect(diff.body).not.toContain('第5条（データセンターサービスの提供）');
      const en = await get(`/portal/terms/diff?from=${v65}&to=${v7}&lang=en`, sakuraMember);
      expect(en.body).toContain('<html lang="en">');
      expect(en.body).toContain('added 0 · removed 0 · changed 1 · unchanged 23');
      // A version id that is not a published version is not found.
      expect((await get(`/portal/terms/diff?from=${v65}&to=${midori}`, sakuraAdmin)).statusCode).toBe(404);
    });

    it('R1.2 R2.1 a notice for one chosen customer, drafted and published in the console, reaches that customer only, with the record of how it was told', async () => {
      const bad = await postForm(app, ope, '/console/terms', '/console/terms/notices', { channel: 'support_guide', topic: 'article:4', titleJa: '提供区域について', bodyJa: '本文', effectiveAt: '2026-11-24T10:00', customerIds: [sakura] });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/id="notice-guideEdition-error">[^<]*サポートガイドの版を指定してください。/);
      const ok = await postForm(app, ope, '/console/terms', '/console/terms/notices', { channel: 'support_site', topic: 'article:4', titleJa: '提供区域の補足', bodyJa: '沖縄本島以外の離島からのご利用も対象です。', titleEn: 'Service area', effectiveAt: '2026-11-24T10:00', customerIds: [sakura] });
      expect(ok.statusCode).toBe(303);
      const list = await get('/console/terms', ope);
      noticeId = /action="\/console\/terms\/notices\/([0-9a-f-]{36})\/publish"/.exec(list.body)![1]!;
      expect((await postForm(app, ope, '/console/terms', `/console/terms/notices/${noticeId}/publish`, {})).statusCode).toBe(303);

      const mine = await get('/portal/terms/notices', sakuraMember);
      expect(mine.body).toContain('提供区域の補足');
      expect(mine.body).toContain('data-testid="notification-records"');
      expect(mine.body).toContain('sakura@example.jp');
      expect(mine.body).toContain('お知らせ「提供区域の補足」');
      expect(mine.body).toContain('利用規約 7版');
      // A member reads it but cannot register disagreement.
      expect(mine.body).not.toContain(`id="disagree-${noticeId}"`);
      const theirs = await get('/portal/terms/notices', midoriAdmin);
      expect(theirs.body).not.toContain('提供区域の補足');
      expect(theirs.body).not.toContain('sakura');
    });

    it('R2.2 a customer admin registers disagreement, which opens a consultation the operator sees and answers; other customers get 404', async () => {
      const empty = await postForm(app, sakuraAdmin, '/portal/terms/notices', '/portal/terms/consultations', { changeKind: 'notice', changeId: noticeId, message: '' });
      expect(empty.statusCode).toBe(400);
      expect(empty.body).toContain(`id="disagree-${noticeId}-message-error">入力してください。`);
      expect((await postForm(app, sakuraMember, '/portal/terms/notices', '/portal/terms/consultations', { changeKind: 'notice', changeId: noticeId, message: '同意できません' })).statusCode).toBe(403);
      // Another customer cannot even name the notice addressed to sakura.
      expect((await postForm(app, midoriAdmin, '/portal/terms', '/portal/terms/consultations', { changeKind: 'notice', changeId: noticeId, message: '同意できません' })).statusCode).toBe(404);

      const opened = await postForm(app, sakuraAdmin, '/portal/terms/notices', '/portal/terms/consultations', { changeKind: 'notice', changeId: noticeId, message: '離島の扱いについて協議を希望します。' });
      expect(opened.statusCode).toBe(303);
      consultationId = /\/portal\/terms\/consultations\/([0-9a-f-]{36})/.exec(String(opened.headers['location']))![1]!;
      const twice = await postForm(app, sakuraAdmin, '/portal/terms/notices', '/portal/terms/consultations', { changeKind: 'notice', changeId: noticeId, message: 'もう一度' });
      expect(twice.statusCode).toBe(409);
      expect(twice.body).toContain('この変更についての協議は既に開かれています');

      // Disagreeing with a terms version: a refusal shows on that version's page, next to the field.
      const emptyV = await postForm(app, sakuraAdmin, `/portal/terms/versions/${v7}`, '/portal/terms/consultations', { changeKind: 'terms_version', changeId: v7, message: '' });
      expect(emptyV.statusCode).toBe(400);
      expect(emptyV.body).toContain(`id="disagree-${v7}-message-error">入力してください。`);
      expect(emptyV.body).toContain('第4条（提供区域）');
      const onVersion = await postForm(app, sakuraAdmin, '/portal/terms', '/portal/terms/consultations', { changeKind: 'terms_version', changeId: v7, message: '7版の第4条に同意できません。' });
      expect(onVersion.statusCode).toBe(303);
      expect((await get('/portal/terms/consultations', sakuraMember)).body).toContain('利用規約 7版');

      const inbox = await get('/console/consultations', ope);
      expect(inbox.body).toContain(`href="/console/consultations/${consultationId}"`);
      expect(inbox.body).toContain('sakura 株式会社');
      const replyBad = await postForm(app, ope, `/console/consultations/${consultationId}`, `/console/consultations/${consultationId}/messages`, { message: ' ' });
      expect(replyBad.statusCode).toBe(400);
      expect(replyBad.body).toContain('id="reply-message-error"');
      expect((await postForm(app, ope, `/console/consultations/${consultationId}`, `/console/consultations/${consultationId}/messages`, { message: '担当よりご連絡いたします。' })).statusCode).toBe(303);

      const thread = await get(`/portal/terms/consultations/${consultationId}`, sakuraAdmin);
      expect(thread.body).toMatch(/data-testid="consultation-thread">.*離島の扱いについて協議を希望します。.*担当よりご連絡いたします。/s);
      expect((await postForm(app, sakuraAdmin, `/portal/terms/consultations/${consultationId}`, `/portal/terms/consultations/${consultationId}/messages`, { message: '承知しました。' })).statusCode).toBe(303);
      expect((await postForm(app, ope, `/console/consultations/${consultationId}`, `/console/consultations/${consultationId}/close`, { note: '補足のお知らせで合意' })).statusCode).toBe(303);
      expect((await get(`/portal/terms/consultations/${consultationId}`, sakuraAdmin)).body).toContain('data-testid="consultation-state">終了');

      // Isolation: another customer's consultation is not found, to read or to write.
      expect((await get(`/portal/terms/consultations/${consultationId}`, midoriAdmin)).statusCode).toBe(404);
      expect((await postForm(app, midoriAdmin, '/portal/terms', `/portal/terms/consultations/${consultationId}/messages`, { message: 'x' })).statusCode).toBe(404);
      expect((await get('/portal/terms/consultations', midoriAdmin)).body).not.toContain(consultationId);
    });

    it('R8.1 the incident notices addressed to the customer are listed for it and for nobody else', async () => {
      const opsApi = await app.signIn('ope');
      const inc = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: opsApi, payload: { title: 'ストレージ応答遅延', severity: 'major', occurredAt: '2026-11-24T00:30:00Z', customerIds: [sakura] } });
      expect(inc.statusCode, inc.body).toBe(201);
      incidentId = inc.json().incident.id;
      const post = await app.request({ method: 'POST', url: `/api/v1/incidents/${incidentId}/notices`, cookie: opsApi, payload: { stage: 'first' } });
      expect(post.statusCode, post.body).toBe(201);
      const mine = await get('/portal/notices', sakuraMember);
      expect(mine.body).toContain('data-testid="incident-notice"');
      expect(mine.body).toContain('第一報');
      expect(mine.body).toContain('sakura@example.jp');
      const theirs = await get('/portal/notices', midoriAdmin);
      expect(theirs.body).not.toContain('data-testid="incident-notice"');
    });

    it('R12.4 R8.3 the monthly report page lists the months since the contract start and shows the figures with charts; HTML and PDF open with the session; other customers see neither', async () => {
      app.clock.advance(2 * 3_600_000);
      const list = await get('/portal/reports', sakuraAdmin);
      expect(list.statusCode).toBe(200);
      for (const m of ['2026-04', '2026-11']) expect(list.body).toContain(`href="/portal/reports/${m}"`);
      expect(list.body).not.toContain('href="/portal/reports/2026-03"');
      expect(list.body).toContain(`href="/api/v1/customers/${sakura}/reports/2026-11.pdf"`);
      const month = await get('/portal/reports/2026-11', sakuraMember);
      expect(month.statusCode).toBe(200);
      expect(month.body).toContain('data-testid="incident-count">1<');
      expect(month.body).toContain('ストレージ応答遅延');
      expect(month.body).toContain('<svg class="chart"');
      expect(month.body).toMatch(/data-testid="availability">\d+\.\d{3}%/);
      expect((await get('/portal/reports/2026-03', sakuraAdmin)).statusCode).toBe(404);
      expect((await get('/portal/reports/2026-12', sakuraAdmin)).statusCode).toBe(404);

      const reportHtml = await get(`/api/v1/customers/${sakura}/reports/2026-11.html`, sakuraMember);
      expect(reportHtml.statusCode).toBe(200);
      expect(reportHtml.headers['content-type']).toMatch(/^text\/html/);
      const pdf = await get(`/api/v1/customers/${sakura}/reports/2026-11.pdf`, sakuraAdmin);
      expect(pdf.statusCode).toBe(200);
      expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
      expect((await get(`/api/v1/customers/${sakura}/reports/2026-11.html`, midoriAdmin)).statusCode).toBe(404);

      const theirs = await get('/portal/reports/2026-11', midoriAdmin);
      expect(theirs.body).toContain('data-testid="incident-count">0<');
      expect(theirs.body).not.toContain('ストレージ応答遅延');
      expect((await get('/portal/reports/2026-08', midoriAdmin)).statusCode).toBe(404);

      const provider = await get('/console/reports?month=2026-11', ope);
      expect(provider.statusCode).toBe(200);
      expect(provider.body).toContain('data-testid="provider-incidents">1<');
      expect(provider.body).toContain('<svg class="chart"');
      expect(provider.body).toContain(`/api/v1/customers/${midori}/reports/2026-11.html`);
      expect((await get('/console/reports', sakuraAdmin)).statusCode).toBe(303);
    });

    it('APPI Art. 26 the console fills the breach report and records the preliminary notice; the affected customer sees deadlines and what was reported, others get 404', async () => {
      const opsApi = await app.signIn('ope');
      const mark = await app.request({ method: 'POST', url: `/api/v1/incidents/${incidentId}/breach`, cookie: opsApi, payload: { kinds: ['leak'], status: 'suspected', unauthorisedPurpose: false, customers: [{ customerId: sakura }] } });
      expect(mark.statusCode, mark.body).toBe(201);
      breachId = mark.json().breach.id;
      const list = await get('/console/breaches', ope);
      expect(list.body).toContain(`href="/console/breaches/${breachId}"`);

      const details = await postForm(app, ope, `/console/breaches/${breachId}`, `/console/breaches/${breachId}/details`, { status: 'confirmed', cause: '設定誤りによる公開', secondaryDamage: '確認されていません', countermeasures: '設定を修正し監視を追加', contact: 'privacy@provider.example.jp' });
      expect(details.statusCode).toBe(303);
      const badPeople = await postForm(app, ope, `/console/breaches/${breachId}`, `/console/breaches/${breachId}/customers`, { customerId: sakura, dataItems: '氏名', peopleCount: 'many' });
      expect(badPeople.statusCode).toBe(400);
      expect(badPeople.body).toContain(`id="customer-${sakura}-peopleCount-error"`);
      expect((await postForm(app, ope, `/console/breaches/${breachId}`, `/console/breaches/${breachId}/customers`, { customerId: sakura, dataItems: '氏名\nメールアドレス', peopleCount: '1200', sensitive: 'on' })).statusCode).toBe(303);
      const early = await postForm(app, ope, `/console/breaches/${breachId}`, `/console/breaches/${breachId}/notices`, { customerId: sakura, stage: 'preliminary', at: '2026-11-01T09:00' });
      expect(early.statusCode).toBe(400);
      expect(early.body).toContain(`id="notice-${sakura}-at-error"`);
      expect((await postForm(app, ope, `/console/breaches/${breachId}`, `/console/breaches/${breachId}/notices`, { customerId: sakura, stage: 'preliminary', at: '' })).statusCode).toBe(303);

      const mine = await get('/portal/breaches', sakuraMember);
      expect(mine.body).toContain('data-testid="preliminary-due"');
      expect(mine.body).toMatch(/data-testid="preliminary-at">2026年11月24日/);
      expect(mine.body).toContain('氏名、メールアドレス');
      const detail = await get(`/portal/breaches/${breachId}`, sakuraAdmin);
      expect(detail.body).toContain('設定誤りによる公開');
      expect(detail.body).toContain('data-testid="breach-status">確定');
      expect((await get(`/portal/breaches/${breachId}`, midoriAdmin)).statusCode).toBe(404);
      expect((await get('/portal/breaches', midoriAdmin)).body).not.toContain(breachId);
    });
  });
}
