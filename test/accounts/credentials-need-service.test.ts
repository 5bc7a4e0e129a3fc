import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { suspendContract, terminateImmediately } from '../../src/contracts/contracts.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { csrfOf, mergeCookies, webSignIn } from '../web/helpers.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const newUser = (loginId: string) => ({ loginId, displayName: loginId, email: `${loginId}@customer.example.jp`, role: 'member', password: 'a long enough initial password' });

describe.each(databaseKinds)('new credentials need a customer in service on %s', (kind) => {
  let app: TestApp;
  let ops: string;

  beforeAll(async () => {
    app = await startTestApp(kind);
    await addOperator(app, 'cred-ops', ['operator']);
    ops = await app.signIn('cred-ops');
  });
  afterAll(async () => app?.close());

  async function customerWithAdmin(code: string) {
    const { customer, contractId } = await addCustomerWithContract(app, code);
    await addCustomerUser(app, customer.id, `${code}-admin`, 'customer_admin');
    const admin = await app.signIn(`${code}-admin`);
    const issued = await app.request({ method: 'POST', url: `/api/v1/customers/${customer.id}/api-tokens`, cookie: admin, payload: { name: 'before' } });
    expect(issued.statusCode).toBe(201);
    return { customerId: customer.id, contractId, admin, tokenId: issued.json().apiToken.id as string };
  }

  it('R11.1 a suspended customer cannot add API tokens or users (403 customer_suspended), can still list and revoke; operators still can add', async () => {
    const c = await customerWithAdmin('susp');
    await suspendContract(app.ctx.db, app.ctx.clock, systemActor('test'), c.contractId, { reason: 'credential_misuse', note: '不正利用の疑い' });

    const token = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/api-tokens`, cookie: c.admin, payload: { name: 'after' } });
    expect(token.statusCode).toBe(403);
    expect(token.json().error.code).toBe('customer_suspended');
    expect(token.json().error.message.ja).toContain('停止');
    expect(token.json().error.message.en).toContain('suspended');
    const user = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/users`, cookie: c.admin, payload: newUser('susp-new') });
    expect(user.statusCode).toBe(403);
    expect(user.json().error.code).toBe('customer_suspended');
    // A weak password is not what stops them: the suspension is named first.
    const weak = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/users`, cookie: c.admin, payload: { ...newUser('susp-weak'), password: 'short' } });
    expect(weak.json().error.code).toBe('customer_suspended');

    // The portal's form goes through the same domain function.
    const web = await webSignIn(app, 'portal', 'susp-admin');
    const page = await app.request({ method: 'GET', url: '/portal/users', headers: { cookie: web } });
    const viaPortal = await app.request({ method: 'POST', url: '/portal/api-tokens', headers: { ...FORM, cookie: mergeCookies(web, page) }, payload: new URLSearchParams({ _csrf: csrfOf(page.body), name: 'portal' }).toString() });
    expect(viaPortal.statusCode).toBe(403);

    const tokens = await app.ctx.db.selectFrom('api_tokens').select('name').where('customer_id', '=', c.customerId).execute();
    expect(tokens.map((t) => t.name)).toEqual(['before']);
    expect(await app.ctx.db.selectFrom('users').select('id').where('login_id', 'in', ['susp-new', 'susp-weak']).execute()).toEqual([]);

    // Withdrawing a leaked credential must stay possible while suspended.
    const list = await app.request({ method: 'GET', url: `/api/v1/customers/${c.customerId}/api-tokens`, cookie: c.admin });
    expect(list.statusCode).toBe(200);
    const revoke = await app.request({ method: 'DELETE', url: `/api/v1/customers/${c.customerId}/api-tokens/${c.tokenId}`, cookie: c.admin });
    expect(revoke.statusCode).toBe(200);

    const byOps = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/api-tokens`, cookie: ops, payload: { name: 'by-ops' } });
    expect(byOps.statusCode).toBe(201);
    const userByOps = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/users`, cookie: ops, payload: newUser('susp-by-ops') });
    expect(userByOps.statusCode).toBe(201);
  });

  it('R10.7 after the contract ended the customer cannot add API tokens or users (410 contract_ended); operators still can', async () => {
    const c = await customerWithAdmin('ended');
    await terminateImmediately(app.ctx.db, app.ctx.clock, systemActor('test'), c.contractId, { ground: 'gross_breach', note: '重大な違反' });

    const token = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/api-tokens`, cookie: c.admin, payload: { name: 'after' } });
    expect(token.statusCode).toBe(410);
    expect(token.json().error.code).toBe('contract_ended');
    expect(token.json().error.message.en).toContain('ended');
    const user = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/users`, cookie: c.admin, payload: newUser('ended-new') });
    expect(user.statusCode).toBe(410);
    expect(user.json().error.code).toBe('contract_ended');

    const byOps = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/api-tokens`, cookie: ops, payload: { name: 'by-ops' } });
    expect(byOps.statusCode).toBe(201);
  });

  it('R18.1 an active customer still manages its own credentials', async () => {
    const c = await customerWithAdmin('active');
    const user = await app.request({ method: 'POST', url: `/api/v1/customers/${c.customerId}/users`, cookie: c.admin, payload: newUser('active-new') });
    expect(user.statusCode).toBe(201);
  });
});
