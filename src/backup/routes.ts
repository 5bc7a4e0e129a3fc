import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { findCustomer } from '../contracts/customers.js';
import { actorOf, canAccessCustomer, isCustomerAdminOf, requireOperatorRole } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { principalOf, router, uuid } from '../http/route-kit.js';
import { backupView, getBackup, listBackups } from './catalog.js';
import { renderCertificateHtml, renderCertificatePdf } from './certificate-render.js';
import { BACKUP_CUSTOMER, BACKUP_DRILL_CUSTOMER } from './jobs.js';
import { offsiteStatus } from './offsite.js';
import { getDeletionCertificate } from './purge.js';
import { restoreCustomer } from './restore.js';
import { assertNoActiveRestore, assertTargetConfigured, getRestoreJob, listRestoreJobs, requestRestore } from './restore-jobs.js';
import { verifyBackup } from './verify.js';

const target = z.enum(['primary', 'offsite']).default('primary');

export function registerBackupRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const deps = () => ({ db: ctx.db, clock: ctx.clock, settings: ctx.backup, live: ctx.files });

  r.get('/backups', {
    schema: { tags: ['backup'], summary: 'The backup catalog: time, size, target, state, remote-copy state (R10.1–R10.3)', querystring: z.object({ customerId: uuid.optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    const rows = await listBackups(ctx.db, { limit: req.query.limit, ...(req.query.customerId ? { customerId: req.query.customerId } : {}) });
    return { backups: rows.map(backupView) };
  });

  r.get('/backups/status', { schema: { tags: ['backup'], summary: 'Targets, remote-copy lag per customer, recent checks and drills' } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    const checks = await ctx.db.selectFrom('backup_checks').selectAll().orderBy('started_at', 'desc').limit(50).execute();
    return {
      primaryTarget: ctx.backup.primary?.description ?? null,
      offsiteTarget: ctx.backup.offsite?.description ?? null,
      configured: ctx.backup.primary !== null,
      dailyAtJst: `${String(ctx.backup.dailyAtJstHour).padStart(2, '0')}:00`,
      offsiteCycleDays: ctx.backup.offsiteCycleDays,
      retention: { daily: ctx.backup.retainDaily, weekly: ctx.backup.retainWeekly },
      offsite: await offsiteStatus(ctx.db, ctx.clock, ctx.backup),
      recentChecks: checks.map((c) => ({ id: c.id, backupId: c.backup_id, kind: c.kind, target: c.target, ok: c.ok, startedAt: c.started_at.toISOString(), finishedAt: c.finished_at.toISOString(), detail: typeof c.detail === 'string' ? JSON.parse(c.detail) : c.detail })),
    };
  });

  r.post('/backups', {
    schema: { tags: ['backup'], summary: 'Back a customer up now (queued; the catalog shows it)', body: z.object({ customerId: uuid }) },
  }, async (req, reply) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator');
    if (!ctx.backup.primary) throw errors.conflict('バックアップ先（HOKAN_BACKUP_URL）が設定されていません。', 'No backup target is configured (HOKAN_BACKUP_URL).');
    if (!(await findCustomer(ctx.db, req.body.customerId))) throw errors.notFound('お客様 / customer', req.body.customerId);
    const jobId = await ctx.queue.enqueue(ctx.db, BACKUP_CUSTOMER, { customerId: req.body.customerId, generation: 'manual' });
    return reply.code(202).send({ queued: true, jobId });
  });

  r.get('/backups/:backupId', { schema: { tags: ['backup'], summary: 'One backup with its checks', params: z.object({ backupId: uuid }) } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    const row = await getBackup(ctx.db, req.params.backupId);
    const checks = await ctx.db.selectFrom('backup_checks').selectAll().where('backup_id', '=', row.id).orderBy('started_at', 'desc').execute();
    return { backup: backupView(row), checks: checks.map((c) => ({ kind: c.kind, target: c.target, ok: c.ok, startedAt: c.started_at.toISOString(), detail: typeof c.detail === 'string' ? JSON.parse(c.detail) : c.detail })) };
  });

  r.post('/backups/:backupId/verify', {
    schema: { tags: ['backup'], summary: 'Re-read, check every checksum, decrypt', params: z.object({ backupId: uuid }), body: z.object({ target }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator');
    await getBackup(ctx.db, req.params.backupId);
    return { verification: await verifyBackup(deps(), req.params.backupId, req.body.target) };
  });

  r.post('/backups/:backupId/restore', {
    schema: { tags: ['backup'], summary: "Restore the backup's customer to this backup, atomically (R10.4; admin)", params: z.object({ backupId: uuid }), body: z.object({ from: target, confirmCustomerId: uuid }) },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin');
    const row = await getBackup(ctx.db, req.params.backupId);
    if (row.customer_id !== req.body.confirmCustomerId) {
      throw errors.invalidField('confirmCustomerId', '復元するお客様のIDが一致しません。', "does not match the backup's customer");
    }
    await assertNoActiveRestore(ctx.db, row.customer_id);
    return { restore: await restoreCustomer(deps(), { backupId: row.id, from: req.body.from, actor: actorOf(p) }) };
  });

  r.post('/backups/:backupId/restore-jobs', {
    schema: { tags: ['backup'], summary: "Queue a restore of the backup's customer and follow its progress (R10.4; admin)", params: z.object({ backupId: uuid }), body: z.object({ from: target, confirmCustomerId: uuid }) },
  }, async (req, reply) => {
    const p = requireOperatorRole(principalOf(req), 'admin');
    const job = await requestRestore({ db: ctx.db, clock: ctx.clock, queue: ctx.queue, settings: ctx.backup }, actorOf(p), { backupId: req.params.backupId, from: req.body.from, confirmCustomerId: req.body.confirmCustomerId });
    return reply.code(202).send({ restoreJob: job });
  });

  r.get('/backups/restore-jobs', {
    schema: { tags: ['backup'], summary: 'Recent restore jobs, newest first (R10.4)', querystring: z.object({ customerId: uuid.optional(), limit: z.coerce.number().int().min(1).max(200).default(20) }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    return { restoreJobs: await listRestoreJobs(ctx.db, { limit: req.query.limit, ...(req.query.customerId ? { customerId: req.query.customerId } : {}) }) };
  });

  r.get('/backups/restore-jobs/:restoreJobId', {
    schema: { tags: ['backup'], summary: 'One restore job: state, phase and progress (R10.4)', params: z.object({ restoreJobId: uuid }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    return { restoreJob: await getRestoreJob(ctx.db, req.params.restoreJobId) };
  });

  r.post('/backups/drills', {
    schema: { tags: ['backup'], summary: "Queue a restore drill of a customer's latest good backup (R10.4); the result shows in /backups/status", body: z.object({ customerId: uuid, target }) },
  }, async (req, reply) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator');
    if (!(await findCustomer(ctx.db, req.body.customerId))) throw errors.notFound('お客様 / customer', req.body.customerId);
    assertTargetConfigured(ctx.backup, req.body.target);
    const jobId = await ctx.queue.enqueue(ctx.db, BACKUP_DRILL_CUSTOMER, { customerId: req.body.customerId, target: req.body.target }, { maxAttempts: 1 });
    return reply.code(202).send({ queued: true, jobId });
  });

  const certParams = z.object({ customerId: uuid, format: z.enum(['json', 'html', 'pdf']) });
  r.get('/customers/:customerId/deletion-certificate.:format', {
    schema: { tags: ['backup'], summary: 'データ消去証明書: the deletion certificate (R10.7) as JSON, HTML or PDF', params: certParams },
  }, async (req, reply) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId)) throw errors.notFound('お客様 / customer', req.params.customerId);
    if (p.kind !== 'operator' && !isCustomerAdminOf(p, req.params.customerId)) throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
    const found = await getDeletionCertificate(ctx.db, req.params.customerId);
    if (!found) throw errors.notFound('データ消去証明書 / deletion certificate', req.params.customerId);
    const base = `deletion-certificate-${found.certificate.customer.code}`;
    if (req.params.format === 'json') return reply.header('x-content-sha256', found.sha256).send({ certificate: found.certificate, sha256: found.sha256 });
    if (req.params.format === 'html') return reply.type('text/html; charset=utf-8').send(renderCertificateHtml(found.certificate, found.sha256));
    return reply
      .type('application/pdf')
      .header('content-disposition', `attachment; filename="${base}.pdf"`)
      .send(await renderCertificatePdf(found.certificate, found.sha256));
  });
}
