import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calendarDate, instant } from '../../src/http/route-kit.js';
import { databaseKinds } from '../helpers/databases.js';
import { addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { createCustomer } from '../../src/contracts/customers.js';
import { systemActor } from '../../src/core/audit/audit-log.js';

describe('date schemas', () => {
  it('calendarDate takes the years 1900–9999 only, besides being a real date', () => {
    for (const ok of ['1900-01-01', '2026-04-01', '2028-02-29', '9999-12-31']) expect(calendarDate.safeParse(ok).success).toBe(true);
    for (const bad of ['0000-01-01', '0001-01-01', '1899-12-31', '2027-02-29', '2026-13-01', '26-04-01', '']) expect(calendarDate.safeParse(bad).success).toBe(false);
  });

  it('a malformed date gets one message, not a second one about its year', () => {
    const r = calendarDate.safeParse('not a date');
    expect(r.success).toBe(false);
    expect(r.error?.issues).toHaveLength(1);
    expect(r.error?.issues[0]?.message).toBe('must be a calendar date YYYY-MM-DD');
    expect(calendarDate.safeParse('0000-01-01').error?.issues.map((i) => i.message)).toEqual(['the year must be between 1900 and 9999']);
  });

  it('instant takes the years 1900–9999 only, as written', () => {
    for (const ok of ['1900-01-01T00:00:00+09:00', '2026-12-01T09:00:00+09:00', '9999-12-31T23:59:59Z']) expect(instant.safeParse(ok).success).toBe(true);
    for (const bad of ['0000-01-01T00:00:00Z', '1899-12-31T23:59:59Z', '2026-12-01T09:00:00']) expect(instant.safeParse(bad).success).toBe(false);
  });
});

describe.each(databaseKinds)('dates PostgreSQL cannot store are refused as 400 on %s', (kind) => {
  let app: TestApp;
  let ops: string;
  let customerId: string;

  beforeAll(async () => {
    app = await startTestApp(kind);
    await addOperator(app, 'date-ops', ['admin', 'operator']);
    ops = await app.signIn('date-ops');
    customerId = (await createCustomer(app.ctx.db, app.ctx.clock, systemActor('test'), { code: 'dates', name: '日付 株式会社', contactEmail: 'dates@example.jp' })).id;
  });
  afterAll(async () => app?.close());

  const contract = (n: string, termStart: string) => ({
    contractNumber: `C-${n}`,
    termStart,
    termEnd: '2027-03-31',
    systemUseContractNumber: `SU-${n}`,
    supportContractNumber: `SP-${n}`,
  });

  it('R21.1 a contract starting in year 0 is a 400 naming termStart, not a 500', async () => {
    const res = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/contracts`, cookie: ops, payload: contract('y0', '0000-01-01') });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details).toEqual([{ path: 'body.termStart', message: 'the year must be between 1900 and 9999' }]);
    expect(body.error.message.ja).toContain('termStart');
    expect(body.error.message.en).toContain('termStart');
    const fine = await app.request({ method: 'POST', url: `/api/v1/customers/${customerId}/contracts`, cookie: ops, payload: contract('y1900', '1900-01-01') });
    expect(fine.statusCode).toBe(201);
  });

  it('R8.3 an incident that occurred in year 0 is a 400 naming occurredAt, not a 500', async () => {
    const res = await app.request({ method: 'POST', url: '/api/v1/incidents', cookie: ops, payload: { title: '年0の障害', severity: 'minor', occurredAt: '0000-06-01T00:00:00Z' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual([{ path: 'body.occurredAt', message: 'the year must be between 1900 and 9999' }]);
  });
});
