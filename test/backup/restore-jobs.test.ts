import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackupChecks } from '../../src/backup/catalog.js';
import { restoreCustomer } from '../../src/backup/restore.js';
import { failOrphanedRestoreJobs, getRestoreJob, listRestoreJobs, runRestoreJob } from '../../src/backup/restore-jobs.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { listAudit } from '../../src/core/audit/audit-log.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';
import { removeTree } from '../helpers/backup.js';

type Customer = { id: string; token: string };

describe.each(databaseKinds)('R10.4 restore jobs through the API on %s', (kind) => {
  let app: TestApp;
  const dirs: string[] = [];
  const c: Record<string, Customer> = {};
  let admin: string;
  let operator: string;
  let support: string;
  let member: string;
  let backupId: string;
  const deps = () => ({ db: app.ctx.db, clock: app.clock, settings: app.ctx.backup, live: app.ctx.files, instanceId: 'test' });

  const records = async (customerId: string) =>
    app.ctx.db.selectFrom('data_records').select(['collection', 'id', 'version', 'data']).where('customer_id', '=', customerId).orderBy('collection').orderBy('id').execute();
  const restoreRows = async () => Number((await app.ctx.db.selectFrom('backup_restore_jobs').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
  const restoreQueueJobs = async () => Number((await app.ctx.db.selectFrom('jobs').select((eb) => eb.fn.countAll<string>().as('n')).where('queue', '=', 'backup.restore').executeTakeFirstOrThrow()).n);
  const start = (id: string, body: Record<string, unknown>, cookie = admin) => app.request({ method: 'POST', url: `/api/v1/backups/${id}/restore-jobs`, cookie, payload: body });

  beforeAll(async () => {
    const primary = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-rj-primary-'));
    const offsite = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-rj-offsite-'));
    dirs.push(primary, offsite);
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_BACKUP_URL: primary, HOKAN_OFFSITE_URL: offsite, HOKAN_BACKUP_SAME_DEVICE_OK: 'true' });
    await addOperator(app, 'rj-admin', ['admin']);
    await addOperator(app, 'rj-op', ['operator']);
    await addOperator(app, 'rj-support', ['support']);
    for (const code of ['kiku', 'ume']) {
      const { customer } = await addCustomerWithContract(app, code);
      await addCustomerUser(app, customer.id, `${code}-admin`, 'customer_admin');
      const cookie = await app.signIn(`${code}-admin`);
      const token = (await app.request({ method: 'POST', url: `/api/v1/customers/${customer.id}/api-tokens`, cookie, payload: { name: 'sw' } })).json().token as string;
      for (let i = 0; i < 40; i++) await app.request({ method: 'POST', url: '/api/v1/data/collections/residents/records', token, payload: { id: `${code}-${i}`, data: { name: `利用者${i}` } } });
      await app.request({ method: 'POST', url: '/api/v1/data/files?name=plan.pdf', token, headers: { 'content-type': 'application/pdf' }, payload: Buffer.from(`%PDF ${code}`) });
      c[code] = { id: customer.id, token };
    }
    await addCustomerUser(app, c.kiku!.id, 'kiku-staff', 'member');
    admin = await app.signIn('rj-admin');
    operator = await app.signIn('rj-op');
    support = await app.signIn('rj-support');
    member = await app.signIn('kiku-staff');
    backupId = (await runBackup(deps(), c.kiku!.id)).id;
    // Every write to a restore job's row, in order: what the progress page would have seen.
    await sql`create table restore_job_history (seq serial primary key, state text, phase text, done integer, total integer)`.execute(app.ctx.db);
    await sql`create function log_restore_job() returns trigger language plpgsql as $$ begin insert into restore_job_history (state, phase, done, total) values (new.state, new.phase, new.done, new.total); return new; end $$`.execute(app.ctx.db);
    await sql`create trigger restore_job_history after update on backup_restore_jobs for each row execute function log_restore_job()`.execute(app.ctx.db);
  });
  afterAll(async () => {
    await app?.close();
    dirs.forEach(removeTree);
  });

  it('R10.4 a restore requested through the API runs as a job; its progress advances to done and the data is back', async () => {
    const original = await records(c.kiku!.id);
    await app.request({ method: 'DELETE', url: '/api/v1/data/collections/residents/records/kiku-0', token: c.kiku!.token });
    await app.ctx.db.updateTable('data_records').set({ data: JSON.stringify({ broken: true }) }).where('customer_id', '=', c.kiku!.id).where('id', '=', 'kiku-1').execute();
    const umeBefore = await records(c.ume!.id);

    const res = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id });
    expect(res.statusCode).toBe(202);
    const job = res.json().restoreJob;
    expect(job).toMatchObject({ backupId, customerId: c.kiku!.id, from: 'primary', state: 'queued', percent: 0, requestedBy: { kind: 'operator', label: 'rj-admin (admin)' } });
    const queued = await app.request({ method: 'GET', url: `/api/v1/backups/restore-jobs/${job.id}`, cookie: support });
    expect(queued.json().restoreJob.state).toBe('queued');
    await sql`delete from restore_job_history`.execute(app.ctx.db);

    await app.ctx.queue.runDueJobs();

    const done = (await app.request({ method: 'GET', url: `/api/v1/backups/restore-jobs/${job.id}`, cookie: support })).json().restoreJob;
    expect(done).toMatchObject({ state: 'done', phase: 'done', percent: 100, records: 40, files: 1, error: null });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();
    const history = (await sql<{ state: string; phase: string }>`select state, phase from restore_job_history order by seq`.execute(app.ctx.db)).rows;
    expect(history[0]).toMatchObject({ state: 'running', phase: 'manifest' });
    expect(history.at(-1)).toMatchObject({ state: 'done', phase: 'done' });
    // The phases written only ever move forward.
    const order = ['manifest', 'records', 'files', 'cleanup', 'done'];
    const seen = history.map((h) => order.indexOf(h.phase));
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(history.filter((h) => h.state === 'running').length).toBeGreaterThanOrEqual(2);

    expect(await records(c.kiku!.id)).toEqual(original);
    expect(await records(c.ume!.id)).toEqual(umeBefore);
    const audit = await listAudit(app.ctx.db, { subjectType: 'customer', subjectId: c.kiku!.id });
    expect(audit.filter((e) => e.action === 'backup.restored').at(-1)?.actor.label).toBe('rj-admin (admin)');
    expect((await app.request({ method: 'GET', url: '/api/v1/backups/restore-jobs', cookie: admin })).json().restoreJobs.map((j: { id: string }) => j.id)).toContain(job.id);
  });

  it("R10.4 refuses a confirmation naming another customer, a backup that is not good and a missing remote copy, and writes nothing", async () => {
    const rows = await restoreRows();
    const jobs = await restoreQueueJobs();
    const wrong = await start(backupId, { from: 'primary', confirmCustomerId: c.ume!.id });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error).toMatchObject({ code: 'validation_failed', details: [{ path: 'confirmCustomerId' }] });
    expect(wrong.json().error.message.ja).toContain('一致しません');

    const offsite = await start(backupId, { from: 'offsite', confirmCustomerId: c.kiku!.id });
    expect(offsite.statusCode).toBe(409);
    expect(offsite.json().error.details[0].path).toBe('from');

    const bad = await runBackup(deps(), c.kiku!.id);
    await app.ctx.db.updateTable('backups').set({ state: 'expired' }).where('id', '=', bad.id).execute();
    const notGood = await start(bad.id, { from: 'primary', confirmCustomerId: c.kiku!.id });
    expect(notGood.statusCode).toBe(409);
    expect(notGood.json().error).toMatchObject({ code: 'conflict', details: [{ path: 'backupId' }] });
    expect(notGood.json().error.message.en).toContain('only good backups can be restored');

    expect((await start('5f2b7a52-3c1e-4d6f-9a8b-1c2d3e4f5a6b', { from: 'primary', confirmCustomerId: c.kiku!.id })).statusCode).toBe(404);
    expect((await start(backupId, { from: 'tape', confirmCustomerId: c.kiku!.id })).statusCode).toBe(400);
    expect(await restoreRows()).toBe(rows);
    expect(await restoreQueueJobs()).toBe(jobs);
  });

  it('R10.4 only admins start a restore; operators and support read it; customers do neither', async () => {
    const rows = await restoreRows();
    for (const cookie of [operator, support, member]) {
      const res = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id }, cookie);
      expect(res.statusCode).toBe(403);
    }
    expect(await restoreRows()).toBe(rows);
    const [latest] = await listRestoreJobs(app.ctx.db);
    expect((await app.request({ method: 'GET', url: `/api/v1/backups/restore-jobs/${latest!.id}`, cookie: operator })).statusCode).toBe(200);
    expect((await app.request({ method: 'GET', url: `/api/v1/backups/restore-jobs/${latest!.id}`, cookie: member })).statusCode).toBe(403);
    expect((await app.request({ method: 'GET', url: `/api/v1/backups/restore-jobs/${latest!.id}`, token: c.kiku!.token })).statusCode).toBe(403);
  });

  it('R10.4 a second restore of the same customer is refused while one is queued; the synchronous API waits its turn too', async () => {
    const first = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id });
    expect(first.statusCode).toBe(202);
    const second = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id });
    expect(second.statusCode).toBe(409);
    expect(second.json().error.message.en).toContain(first.json().restoreJob.id);
    const sync = await app.request({ method: 'POST', url: `/api/v1/backups/${backupId}/restore`, cookie: admin, payload: { from: 'primary', confirmCustomerId: c.kiku!.id } });
    expect(sync.statusCode).toBe(409);
    // Another customer is not held up.
    const umeBackup = await runBackup(deps(), c.ume!.id);
    expect((await start(umeBackup.id, { from: 'primary', confirmCustomerId: c.ume!.id })).statusCode).toBe(202);
    await app.ctx.queue.runDueJobs();
    expect((await listRestoreJobs(app.ctx.db)).slice(0, 2).map((j) => j.state)).toEqual(['done', 'done']);
    // Finished: the next one may start, synchronously as before.
    const again = await app.request({ method: 'POST', url: `/api/v1/backups/${backupId}/restore`, cookie: admin, payload: { from: 'primary', confirmCustomerId: c.kiku!.id } });
    expect(again.statusCode).toBe(200);
  });

  it('R10.4 a run cut off by a shutdown is settled as failed with a clear message, never re-run; the live data is untouched', async () => {
    app.clock.advance(60_000);
    const res = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id });
    const id = res.json().restoreJob.id as string;
    // What a handed-back (or lease-expired) job leaves: its row running, its queue job queued again.
    await app.ctx.db.updateTable('backup_restore_jobs').set({ state: 'running', started_at: app.clock.now(), phase: 'records', done: 10, total: 40 }).where('id', '=', id).execute();
    await app.request({ method: 'DELETE', url: '/api/v1/data/collections/residents/records/kiku-5', token: c.kiku!.token });
    const before = await records(c.kiku!.id);
    await app.ctx.queue.runDueJobs();
    const job = await getRestoreJob(app.ctx.db, id);
    expect(job.state).toBe('failed');
    expect(job.error).toMatch(/^interrupted: the instance running this restore stopped before it finished\. A restore is atomic, so the live data was left as it was/);
    expect(await records(c.kiku!.id)).toEqual(before);
    const qjob = await app.ctx.db.selectFrom('jobs').select(['state', 'attempts']).where('queue', '=', 'backup.restore').orderBy('created_at', 'desc').executeTakeFirstOrThrow();
    expect(qjob.state).toBe('completed');
  });

  it('R10.4 a restore job whose signal is aborted (the instance shutting down) stops before it commits and is failed with the reason', async () => {
    app.clock.advance(60_000);
    const res = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id });
    const id = res.json().restoreJob.id as string;
    await app.request({ method: 'DELETE', url: '/api/v1/data/collections/residents/records/kiku-6', token: c.kiku!.token });
    const before = await records(c.kiku!.id);
    const job = await runRestoreJob({ db: app.ctx.db, clock: app.clock, settings: app.ctx.backup, live: app.ctx.files }, id, AbortSignal.abort());
    expect(job).toMatchObject({ state: 'failed', error: expect.stringMatching(/stopped \(the instance is shutting down\) before it committed; the live data is as it was/) });
    expect(await records(c.kiku!.id)).toEqual(before);
  });

  it('R10.4 a run cut off after its transaction committed is recorded as done (the audit entry is the proof)', async () => {
    app.clock.advance(60_000);
    const res = await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id });
    const id = res.json().restoreJob.id as string;
    await app.ctx.db.updateTable('backup_restore_jobs').set({ state: 'running', started_at: app.clock.now(), phase: 'cleanup' }).where('id', '=', id).execute();
    // The stopped instance's run committed (it restores as the admin who asked) before the cut.
    const by = (await getRestoreJob(app.ctx.db, id)).requestedBy;
    await restoreCustomer(deps(), { backupId, actor: { kind: by.kind, id: by.id, label: by.label } });
    await app.ctx.queue.runDueJobs();
    expect(await getRestoreJob(app.ctx.db, id)).toMatchObject({ state: 'done', records: 40, files: 1 });
  });

  it('R10.4 a restore whose queue job ended without settling it is failed by the sweep', async () => {
    app.clock.advance(60_000);
    const id = (await start(backupId, { from: 'primary', confirmCustomerId: c.kiku!.id })).json().restoreJob.id as string;
    const row = await app.ctx.db.selectFrom('backup_restore_jobs').select('job_id').where('id', '=', id).executeTakeFirstOrThrow();
    await app.ctx.db.updateTable('jobs').set({ state: 'failed', last_error: 'database gone' }).where('id', '=', row.job_id!).execute();
    expect(await failOrphanedRestoreJobs(app.ctx.db, app.clock)).toBe(1);
    expect((await getRestoreJob(app.ctx.db, id)).state).toBe('failed');
    expect(await failOrphanedRestoreJobs(app.ctx.db, app.clock)).toBe(0);
  });

  it('R10.4 a drill queued through the API restores into scratch and records its result', async () => {
    const before = (await listBackupChecks(app.ctx.db)).length;
    expect((await app.request({ method: 'POST', url: '/api/v1/backups/drills', cookie: support, payload: { customerId: c.kiku!.id } })).statusCode).toBe(403);
    const res = await app.request({ method: 'POST', url: '/api/v1/backups/drills', cookie: operator, payload: { customerId: c.kiku!.id, target: 'primary' } });
    expect(res.statusCode).toBe(202);
    await app.ctx.queue.runDueJobs();
    const checks = await listBackupChecks(app.ctx.db, { customerId: c.kiku!.id });
    expect(checks.length).toBe(before + 2);
    expect(checks.find((x) => x.kind === 'drill')).toMatchObject({ ok: true, problems: [], target: 'primary' });
    // The drill first reads every part back (a verify row), then restores into scratch and compares.
    expect(checks.find((x) => x.kind === 'verify')).toMatchObject({ ok: true });
  });
});
