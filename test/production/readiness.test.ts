import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { startTestApp, type TestApp } from '../helpers/app.js';

describe.each(databaseKinds)('health and readiness on %s', (kind) => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('GET /readyz is 200 with details when the database answers, migrations are applied and the worker runs', async () => {
    app = await startTestApp(kind);
    // The worker is not started yet: not ready, and the failing check is named.
    let res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not_ready', failing: ['jobs'], checks: { jobs: { ok: false, state: 'idle' }, database: { ok: true } } });
    app.ctx.queue.start(60_000);
    res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ready');
    expect(body.checks.database.ok).toBe(true);
    expect(body.checks.migrations).toMatchObject({ ok: true });
    expect(body.checks.migrations.applied).toBe(body.checks.migrations.expected);
    expect(body.checks.jobs).toMatchObject({ ok: true, state: 'running' });
    expect(body.checks.draining).toMatchObject({ ok: true });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('a worker disabled by HOKAN_JOBS=false does not make the instance unready; draining does', async () => {
    app = await startTestApp(kind, undefined, { HOKAN_JOBS: 'false' });
    expect((await app.request({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    app.ctx.lifecycle.startDraining();
    const res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().failing).toEqual(['draining']);
    // Liveness is unaffected.
    expect((await app.request({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });

  it('a migration this build knows but the database lacks makes it unready, naming the migration', async () => {
    app = await startTestApp(kind, undefined, { HOKAN_JOBS: 'false' });
    await sql`delete from hokan_migrations where name = '0008-incidents'`.execute(app.ctx.db);
    const res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ failing: ['migrations'], checks: { migrations: { ok: false, missing: ['0008-incidents'] } } });
  });

  it('GET /healthz is liveness only: 200 even when the database is gone, while /readyz names the database', async () => {
    app = await startTestApp(kind, undefined, { HOKAN_JOBS: 'false' });
    await app.database.close();
    expect((await app.request({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const res = await app.request({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().failing).toEqual(expect.arrayContaining(['database', 'migrations']));
    expect(res.json().checks.database.ok).toBe(false);
  });
});
