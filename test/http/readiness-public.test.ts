import { sql } from 'kysely';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

/** The texts the readiness check logged as the database failure. */
function loggedDetails(warn: { mock: { calls: unknown[][] } }): string[] {
  return warn.mock.calls.filter((c) => c[1] === 'readiness: database check failed').map((c) => String((c[0] as { err: unknown }).err));
}

describe('GET /readyz answers anyone: which check fails, never the database error text', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await app?.close();
    app = undefined;
  });

  it('R12.1 a failing database query is named with a generic reason; its text goes to the log once', async () => {
    app = await startTestApp('pglite', undefined, { HOKAN_JOBS: 'false' });
    const warn = vi.spyOn(app.ctx.logger, 'warn');
    await sql`alter table hokan_migrations rename to hokan_migrations_aside`.execute(app.ctx.db);
    const res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not_ready', failing: ['database', 'migrations'], checks: { database: { ok: false, error: 'query failed' }, migrations: { ok: false } } });
    expect(res.body).not.toMatch(/hokan_migrations|does not exist|relation/);
    const logged = loggedDetails(warn);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('hokan_migrations');
    // The next probe fails the same way: no second log line.
    await app.request({ method: 'GET', url: '/readyz' });
    expect(loggedDetails(warn)).toHaveLength(1);
    await sql`alter table hokan_migrations_aside rename to hokan_migrations`.execute(app.ctx.db);
    expect((await app.request({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('R12.1 a closed database: 503 naming the database, without the driver\'s message', async () => {
    app = await startTestApp('pglite', undefined, { HOKAN_JOBS: 'false' });
    const warn = vi.spyOn(app.ctx.logger, 'warn');
    await app.database.close();
    const res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().failing).toEqual(['database', 'migrations']);
    expect(['unreachable', 'timed out', 'query failed']).toContain(res.json().checks.database.error);
    const [detail] = loggedDetails(warn);
    expect(detail).toBeTruthy();
    expect(res.body).not.toContain(detail);
  });
});
