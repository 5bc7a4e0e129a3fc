import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { ManualClock } from '../../src/core/clock.js';
import { loadConfig } from '../../src/core/config.js';
import { jsonValueProblem, MAX_JSON_DEPTH } from '../../src/data/records.js';
import { databaseKinds, openTestDatabase } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.js';

const recordsUrl = '/api/v1/data/collections/residents/records';
/** `{"a":[[[…]]]}` with `levels` containers in all, the outer object included. */
const nested = (levels: number) => `{"a":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;

describe('R3.1 values PostgreSQL jsonb cannot hold are found before it is asked', () => {
  it('finds NUL and lone surrogates in strings and keys, nesting past the limit and numbers past a double, naming where', () => {
    expect(jsonValueProblem({ name: '山田 花子', tags: ['😀', { n: 1.5, ok: true, none: null }] })).toBeNull();
    expect(jsonValueProblem({ a: { b: ['x\u0000y'] } })).toMatchObject({ path: ['a', 'b', 0], message: expect.stringContaining('NUL') });
    expect(jsonValueProblem({ a: { 'k\u0000': 1 } })).toMatchObject({ path: ['a', 'k\u0000'], message: expect.stringContaining('key') });
    expect(jsonValueProblem({ a: '\ud800' })).toMatchObject({ path: ['a'], message: expect.stringContaining('surrogate') });
    expect(jsonValueProblem({ a: 'x\udc00' })).toMatchObject({ path: ['a'] });
    expect(jsonValueProblem({ '\udbff': 1 })).toMatchObject({ path: ['\udbff'] });
    expect(jsonValueProblem({ a: Number.POSITIVE_INFINITY })).toMatchObject({ path: ['a'] });
    expect(jsonValueProblem(JSON.parse(nested(MAX_JSON_DEPTH)))).toBeNull();
    expect(jsonValueProblem(JSON.parse(nested(MAX_JSON_DEPTH + 1)))).toMatchObject({ message: expect.stringContaining('deeper than 64') });
    // A depth that would overflow the stack of a recursive walk.
    expect(jsonValueProblem(JSON.parse(nested(200_000)))).toMatchObject({ message: expect.stringContaining('deeper') });
  });
});

describe.each(databaseKinds)('R3.1 record data and filters jsonb cannot hold are 400 naming the field, not 500, on %s', (kind) => {
  let app: TestApp;
  let token: string;

  beforeAll(async () => {
    app = await startTestApp(kind);
    const customerId = (await addCustomerWithContract(app, 'aoi')).customer.id;
    await addCustomerUser(app, customerId, 'aoi-admin', 'customer_admin');
    const cookie = await app.signIn('aoi-admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, cookie, payload: { name: 'sw' } })).json().token;
  });
  afterAll(async () => app?.close());

  const post = (raw: string) => app.request({ method: 'POST', url: recordsUrl, token, headers: { 'content-type': 'application/json' }, payload: raw });
  const detailPaths = (res: { json(): { error: { details: Array<{ path: string }> } } }) => res.json().error.details.map((d) => d.path);

  it('R3.1 a lone surrogate in a value or a key of a record is 400 naming it, on create and on update', async () => {
    const value = await post('{"id":"s1","data":{"name":"\\ud800"}}');
    expect(value.statusCode).toBe(400);
    expect(value.json().error.code).toBe('validation_failed');
    expect(detailPaths(value)).toEqual(['body.data.name']);
    const key = await post('{"id":"s2","data":{"memo":{"\\udc00":1}}}');
    expect(key.statusCode).toBe(400);
    expect(detailPaths(key)[0]).toMatch(/^body\.data\.memo\./);

    expect((await post('{"id":"s3","data":{"name":"ok 😀"}}')).statusCode).toBe(201);
    const update = await app.request({ method: 'PUT', url: `${recordsUrl}/s3`, token, headers: { 'content-type': 'application/json', 'if-match': '"v1"' }, payload: '{"data":{"name":"\\ud83d"}}' });
    expect(update.statusCode).toBe(400);
    expect(detailPaths(update)).toEqual(['body.data.name']);
    expect((await app.request({ method: 'GET', url: `${recordsUrl}/s3`, token })).json().record.data.name).toBe('ok 😀');
  });

  it('R3.1 a number beyond a double is 400, not silently stored as null', async () => {
    const res = await post('{"id":"n1","data":{"dose":1e999}}');
    expect(res.statusCode).toBe(400);
    expect(detailPaths(res)).toEqual(['body.data.dose']);
  });

  it('R3.1 a where filter with a lone surrogate is 400 naming where', async () => {
    const surrogate = await app.request({ method: 'GET', url: `${recordsUrl}?where=${encodeURIComponent('{"name":"\\udc00"}')}`, token });
    expect(surrogate.statusCode).toBe(400);
    expect(detailPaths(surrogate)).toEqual(['where.name']);
  });
});

/*
 * The gateway's IDS refuses a JSON body or query holding \u0000, or nesting a few dozen levels
 * deep, before any route sees it (403). The data API does not lean on that: an instance run
 * without the gateway answers 400 naming the field too.
 */
describe.each(databaseKinds)('R3.1 NUL and deep nesting in record data and filters are 400 without the gateway too, on %s', (kind) => {
  let app: App;
  let filesDir: string;
  let token: string;

  beforeAll(async () => {
    const clock = new ManualClock('2026-11-24T01:00:00Z');
    filesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-files-'));
    const config = loadConfig({ HOKAN_LOG_LEVEL: 'silent', HOKAN_DATA_DIR: '.tmp/unused', HOKAN_INSTANCE_ID: 'test', HOKAN_FILES_URL: filesDir });
    app = await createApp(config, { clock, database: await openTestDatabase(kind), logger: pino({ level: 'silent' }), env: { HOKAN_MASTER_KEY: 'cd'.repeat(32) }, gateway: false });
    const customerId = (await addCustomerWithContract(app, 'aoi')).customer.id;
    await addCustomerUser(app, customerId, 'aoi-admin', 'customer_admin');
    const login = await app.server.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { loginId: 'aoi-admin', password: TEST_PASSWORD } });
    const session = login.cookies.find((c) => c.name === 'hokan_session');
    const created = await app.server.inject({ method: 'POST', url: `/api/v1/customers/${customerId}/api-tokens`, headers: { cookie: `hokan_session=${session?.value ?? ''}` }, payload: { name: 'sw' } });
    token = created.json().token;
  });
  afterAll(async () => {
    await app?.close();
    fs.rmSync(filesDir, { recursive: true, force: true });
  });

  it('R3.1 NUL in a value, in a key, and in a where filter', async () => {
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const value = await app.server.inject({ method: 'POST', url: recordsUrl, headers: auth, payload: '{"id":"z1","data":{"note":"a\\u0000b"}}' });
    expect(value.statusCode).toBe(400);
    expect(value.json().error.details.map((d: { path: string }) => d.path)).toEqual(['body.data.note']);
    const key = await app.server.inject({ method: 'POST', url: recordsUrl, headers: auth, payload: '{"id":"z2","data":{"a\\u0000":1}}' });
    expect(key.statusCode).toBe(400);
    const where = await app.server.inject({ method: 'GET', url: `${recordsUrl}?where=${encodeURIComponent('{"note":"\\u0000"}')}`, headers: { authorization: `Bearer ${token}` } });
    expect(where.statusCode).toBe(400);
    expect(where.json().error.details.map((d: { path: string }) => d.path)).toEqual(['where.note']);
  });
  it(`R3.1 a record or a filter nesting deeper than ${MAX_JSON_DEPTH} levels is 400, even 5,000 levels deep; ${MAX_JSON_DEPTH} levels are kept`, async () => {
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const post = (raw: string) => app.server.inject({ method: 'POST', url: recordsUrl, headers: auth, payload: raw });
    // Refused by whichever check meets it first (the body parser may refuse far deeper JSON itself).
    const deep = await post(`{"id":"d1","data":${nested(5_000)}}`);
    expect(deep.statusCode).toBe(400);
    expect(deep.json().error.code).toBe('validation_failed');
    const over = await post(`{"id":"d2","data":${nested(MAX_JSON_DEPTH + 1)}}`);
    expect(over.statusCode).toBe(400);
    expect(over.json().error.details[0]).toMatchObject({ path: expect.stringMatching(/^body\.data\.a\.0\./), message: `nests deeper than ${MAX_JSON_DEPTH} levels` });
    const kept = await post(`{"id":"d3","data":${nested(MAX_JSON_DEPTH)}}`);
    expect(kept.statusCode).toBe(201);
    expect(JSON.stringify(kept.json().record.data)).toBe(nested(MAX_JSON_DEPTH));
    const where = await app.server.inject({ method: 'GET', url: `${recordsUrl}?where=${encodeURIComponent(nested(MAX_JSON_DEPTH + 1))}`, headers: { authorization: `Bearer ${token}` } });
    expect(where.statusCode).toBe(400);
    expect(where.json().error.details[0].path).toMatch(/^where\.a\.0\./);
  });
});
