import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { csrfOf, mergeCookies, postForm, webSignIn } from '../web/helpers.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * R12.2: the IDS reads a request body as it was sent (a form as `a=1&b=2`, JSON as its text), not a
 * re-serialisation of what the parser made of it: otherwise a form field is inspected as a piece of
 * JSON, its attacks pass, and the masking of secret fields never applies.
 */
describe('R12.2 the IDS inspects the body as received', () => {
  let app: TestApp;
  let ops: string;
  beforeAll(async () => {
    app = await startTestApp('pglite');
    await addOperator(app, 'raw-ops', ['operator']);
    ops = await webSignIn(app, 'console', 'raw-ops');
  });
  afterAll(async () => app?.close());

  const idsRows = async (path: string) => {
    await app.ctx.gateway!.events.flush();
    return app.ctx.db.selectFrom('gateway_events').select(['class', 'rule_id', 'action', 'sample', 'details']).where('kind', '=', 'ids').where('path', '=', path).execute();
  };

  it('R12.2 a form post with an attack-looking password stores no part of the password', async () => {
    const password = 'My Secret Phrase <script> 2026';
    const page = await app.request({ method: 'GET', url: '/portal/sign-in' });
    const cookie = mergeCookies('', page);
    const res = await app.request({ method: 'POST', url: '/portal/sign-in', headers: { ...FORM, cookie }, payload: new URLSearchParams({ _csrf: csrfOf(page.body), loginId: 'someone', password }).toString() });
    expect(res.statusCode).toBe(403);
    const rows = await idsRows('/portal/sign-in');
    // Still detected (the field is masked in the record, not left out of the inspection).
    expect(rows.map((r) => r.class)).toContain('xss');
    const stored = JSON.stringify(rows.map((r) => ({ sample: r.sample, details: r.details })));
    for (const part of ['secret', 'phrase', 'script', '2026', 'My ']) expect(stored.toLowerCase()).not.toContain(part.toLowerCase());
    expect(rows.filter((r) => r.class === 'xss').map((r) => r.sample)).toEqual(rows.filter((r) => r.class === 'xss').map(() => '***'));
  });

  it("R12.2 SQL injection in a console form field is detected the same as in a query string", async () => {
    const attack = "x' or 1=1 --";
    const viaQuery = await app.request({ method: 'GET', url: `/console/incidents?title=${encodeURIComponent(attack)}`, headers: { cookie: ops } });
    expect(viaQuery.statusCode).toBe(403);
    const queryRules = (await idsRows('/console/incidents')).filter((r) => r.class === 'sql_injection').map((r) => r.rule_id);
    expect(queryRules.length).toBeGreaterThan(0);

    const viaForm = await postForm(app, ops, '/console/incidents', '/console/incidents', { title: attack, severity: 'minor', occurredAt: '2026-11-24T09:00' });
    expect(viaForm.statusCode).toBe(403);
    const all = (await idsRows('/console/incidents')).filter((r) => r.class === 'sql_injection');
    expect(all.length).toBe(queryRules.length * 2);
    expect(all.slice(queryRules.length).map((r) => r.rule_id)).toEqual(queryRules);
    expect(all.every((r) => r.action === 'block')).toBe(true);
    // Nothing was created behind the refusal.
    expect(await app.ctx.db.selectFrom('incidents').select('id').execute()).toEqual([]);
  });

  it('R12.2 a JSON body is inspected as sent, and its secret fields are masked', async () => {
    const res = await app.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"loginId":"x\' or 1=1 --","password":"Other Secret <script>alert(1)</script>"}' });
    expect(res.statusCode).toBe(403);
    const rows = await idsRows('/api/v1/auth/login');
    expect(rows.map((r) => r.class)).toEqual(expect.arrayContaining(['sql_injection', 'xss']));
    expect(JSON.stringify(rows).toLowerCase()).not.toContain('other secret');
  });
});

describe('R12.2 deeply nested JSON is refused with a 4xx and recorded, never a 500', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp('pglite');
  });
  afterAll(async () => app?.close());

  it('R12.2 100,000 levels of nesting to the sign-in route: 400 naming the nesting, recorded as a DoS attempt', async () => {
    const body = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const res = await app.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode).toBe(400);
    const err = res.json().error;
    expect(err.code).toBe('validation_failed');
    expect(err.message.en).toMatch(/nested too deeply/);
    expect(err.message.ja).toContain('入れ子');
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').select(['kind', 'class', 'rule_id', 'action']).where('path', '=', '/api/v1/auth/login').execute();
    expect(rows).toEqual([{ kind: 'ids', class: 'dos', rule_id: 'JSON-DEPTH', action: 'block' }]);
  });

  it('R12.2 nesting within what the parser takes but deeper than any record needs meets the json_depth rule (DOS-001)', async () => {
    const nested = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    const res = await app.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: `{"loginId":"x","password":"y","extra":${nested(40)}}` });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.details).toEqual([{ path: 'request', message: 'ids:dos' }]);
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').select(['rule_id']).where('path', '=', '/api/v1/auth/login').where('rule_id', '=', 'DOS-001').execute();
    expect(rows).toHaveLength(1);
  });
});
