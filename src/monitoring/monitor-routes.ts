import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf, requireOperatorRole } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { instant, principalOf, router, uuid } from '../http/route-kit.js';
import { createMonitor, deleteMonitor, getMonitor, listMonitors, monitorInput, monitorResults, recordHeartbeat, updateMonitor } from './monitors.js';

/**
 * R12.3②: service monitors, for the provider's operators only (customers see incidents and the
 * status page, never the monitors). The heartbeat push is the one route without a session: a
 * periodic job proves itself with its monitor's secret token.
 */
export function registerMonitorRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const params = z.object({ monitorId: uuid });
  const reader = (req: Parameters<typeof principalOf>[0]) => requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
  const writer = (req: Parameters<typeof principalOf>[0]) => requireOperatorRole(principalOf(req), 'admin', 'operator');

  r.get('/monitors', { schema: { tags: ['monitoring'], summary: 'Service monitors with their current state (R12.3②; operators)' } }, async (req) => {
    reader(req);
    return { monitors: await listMonitors(ctx.db) };
  });

  r.post('/monitors', {
    schema: {
      tags: ['monitoring'],
      summary: 'Create a monitor: http, tcp, dns, tls, heartbeat, database, backup_freshness or offsite_lag (R12.3②); a heartbeat monitor\'s push token is shown once',
      body: monitorInput,
    },
  }, async (req, reply) => {
    const p = writer(req);
    const { monitor, heartbeatToken } = await createMonitor(ctx.db, ctx.clock, actorOf(p), req.body);
    return reply.code(201).send({ monitor, ...(heartbeatToken ? { heartbeatToken } : {}) });
  });

  r.get('/monitors/:monitorId', { schema: { tags: ['monitoring'], summary: 'One monitor', params } }, async (req) => {
    reader(req);
    return { monitor: await getMonitor(ctx.db, req.params.monitorId) };
  });

  r.put('/monitors/:monitorId', {
    schema: { tags: ['monitoring'], summary: 'Replace a monitor\'s definition (its kind stays); it is checked again at once', params, body: monitorInput },
  }, async (req) => {
    const p = writer(req);
    return { monitor: (await updateMonitor(ctx.db, ctx.clock, actorOf(p), req.params.monitorId, req.body)).monitor };
  });

  r.post('/monitors/:monitorId/heartbeat-token', {
    schema: { tags: ['monitoring'], summary: 'Issue a new push token for a heartbeat monitor (the old one stops working); shown once', params, body: z.object({}) },
  }, async (req) => {
    const p = writer(req);
    const current = await getMonitor(ctx.db, req.params.monitorId);
    if (current.kind !== 'heartbeat') throw errors.invalidField('monitorId', 'ハートビート監視ではありません。', 'not a heartbeat monitor');
    const t = current.target as { graceSeconds: number };
    const same = { kind: current.kind, name: current.name, intervalSeconds: current.intervalSeconds, retryIntervalSeconds: current.retryIntervalSeconds, timeoutMs: current.timeoutMs, retries: current.retries, recoverAfter: current.recoverAfter, severity: current.severity, component: current.component, customerIds: current.customerIds, enabled: current.enabled, graceSeconds: t.graceSeconds };
    const res = await updateMonitor(ctx.db, ctx.clock, actorOf(p), req.params.monitorId, same, { rotateToken: true });
    return { monitor: res.monitor, heartbeatToken: res.heartbeatToken };
  });

  r.delete('/monitors/:monitorId', { schema: { tags: ['monitoring'], summary: 'Delete a monitor and its result history (an incident it opened stays)', params, querystring: z.object({ reason: z.string().trim().max(2000).optional() }) } }, async (req, reply) => {
    const p = writer(req);
    await deleteMonitor(ctx.db, ctx.clock, actorOf(p), req.params.monitorId, req.query.reason ?? null);
    return reply.code(204).send();
  });

  r.get('/monitors/:monitorId/results', {
    schema: {
      tags: ['monitoring'],
      summary: 'Check results in [from, to) (default: the last 24 hours) for charts: every check (status, latency, error) or, over a long range, fixed-width buckets; at most 93 days',
      params,
      querystring: z.object({ from: instant.optional().describe('default: 24 hours before `to`'), to: instant.optional().describe('default: now') }),
    },
  }, async (req) => {
    reader(req);
    // Without `to`, up to and including now.
    const to = req.query.to ? new Date(req.query.to) : new Date(ctx.clock.now().getTime() + 1);
    const from = req.query.from ? new Date(req.query.from) : new Date(to.getTime() - 86_400_000);
    return { results: await monitorResults(ctx.db, req.params.monitorId, from, to) };
  });

  r.post('/monitors/:monitorId/heartbeat', {
    schema: {
      tags: ['monitoring'],
      summary: 'Heartbeat push from a periodic job, proven by the monitor\'s token (no sign-in); an unknown monitor or wrong token is 404',
      params,
      body: z.object({ token: z.string().min(1).max(200) }),
      security: [],
    },
  }, async (req, reply) => {
    const { at } = await recordHeartbeat(ctx.db, ctx.clock, req.params.monitorId, req.body.token);
    return reply.code(202).send({ receivedAt: at.toISOString() });
  });
}
