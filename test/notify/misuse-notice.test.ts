import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MISUSE_NOTICE_SUBJECT } from '../../src/notify/misuse-notice.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

const JP = '133.11.0.1';

describe.each(databaseKinds)('R11.1③ misuse notice by e-mail on %s', (kind) => {
  let app: TestApp;
  let customerId: string;
  let token: string;
  const users: Record<string, string> = {};

  beforeAll(async () => {
    app = await startTestApp(kind);
    const c = await addCustomerWithContract(app, 'sakura');
    customerId = c.customer.id;
    for (const [loginId, role] of [['sakura-admin', 'customer_admin'], ['sakura-admin2', 'customer_admin'], ['sakura-member', 'member']] as const) {
      users[loginId] = (await addCustomerUser(app, customerId, loginId, role)).id;
    }
    const other = await addCustomerWithContract(app, 'ume');
    users['ume-admin'] = (await addCustomerUser(app, other.customer.id, 'ume-admin', 'customer_admin')).id;
    const admin = await app.signIn('sakura-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie: admin, payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => app?.close());

  it("queues one notice per admin of the flagged customer, none to others, with what, what was done and when, and no secret", async () => {
    expect(await app.ctx.db.selectFrom('outbound_emails').selectAll().execute()).toEqual([]);
    for (let i = 1; i <= 6; i++) {
      await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: `133.11.0.${i + 10}` });
    }
    expect((await app.request({ method: 'GET', url: '/api/v1/data/collections', token, remoteAddress: JP })).statusCode).toBe(423);

    const flags = await app.ctx.db.selectFrom('misuse_flags').selectAll().where('customer_id', '=', customerId).execute();
    expect(flags.map((f) => f.kind)).toContain('many_sources');
    const mails = await app.ctx.db.selectFrom('outbound_emails').selectAll().orderBy('to_address').execute();
    expect(new Set(mails.map((m) => m.to_address))).toEqual(new Set(['sakura-admin@customer.example.jp', 'sakura-admin2@customer.example.jp']));
    expect(mails).toHaveLength(flags.length * 2);
    const expectedKeys = flags.flatMap((f) => [`misuse:${f.id}:${users['sakura-admin']}`, `misuse:${f.id}:${users['sakura-admin2']}`]);
    expect(mails.map((m) => m.dedupe_key).sort()).toEqual(expectedKeys.sort());

    const flag = flags.find((f) => f.kind === 'many_sources')!;
    const mail = mails.find((m) => m.dedupe_key === `misuse:${flag.id}:${users['sakura-admin']}`)!;
    expect(mail).toMatchObject({ state: 'queued', subject: MISUSE_NOTICE_SUBJECT });
    expect(mail.subject).toBe('【重要】IDの不正利用の疑いについて / Suspected misuse of your credentials');
    const body = mail.text_body;
    expect(body).toContain('不正利用の疑い');
    expect(body).toContain('many_sources');
    expect(body).toContain(flag.detail);
    expect(body).toContain('ロックしました');
    expect(body).toContain('has been locked');
    expect(body).toContain('2026年11月24日(火) 10:00 JST');
    expect(body.indexOf('不正利用の疑いを検知しました')).toBeLessThan(body.indexOf('We have detected a suspected misuse'));
    expect(body).toContain('misuse-flags');
    for (const m of mails) {
      expect(m.text_body).not.toContain(token);
      expect(m.text_body).not.toContain(token.slice(0, 12));
      expect(m.text_body).not.toContain(TEST_PASSWORD);
    }
  });
});
