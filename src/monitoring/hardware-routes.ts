import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import { actorOf, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import type { HardwareHostsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { instant, principalOf, router, uuid } from '../http/route-kit.js';
import { listAlerts } from './hardware-alerts.js';
import { getHostRow, hostView, listHosts, registerHost, reissueHostToken, renameHost, resolveHostToken, retireHost } from './hardware-hosts.js';
import { METRICS, pushBodySchema, SAMPLE_METRICS, type HardwareSample } from './hardware-metrics.js';
import { COMPARISONS, createRule, deleteRule, listRules, RULE_SEVERITIES, updateRule } from './hardware-rules.js';
import { ingestSamples, latestSample, querySeries } from './hardware-samples.js';

const hostName = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), { error: 'must not contain control characters' })
  .refine((s) => !s.startsWith('hokan:'), { error: 'names starting with "hokan:" are kept for hokan\'s own hosts' });

export const ruleBody = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(200)
      .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), { error: 'must not contain control characters (it goes into alert e-mail subjects)' }),
    hostId: uuid.nullable().default(null).describe('omit or null: every host'),
    metric: z.enum(METRICS),
    target: z.string().trim().min(1).max(200).nullable().default(null).describe('disk metrics only: one mount point or device'),
    comparison: z.enum(COMPARISONS),
    threshold: z.number().min(-1e12).max(1e12),
    durationSeconds: z.number().int().min(0).max(86_400).default(0).describe('how long the condition must hold before an alert'),
    severity: z.enum(RULE_SEVERITIES).describe('critical and major also open an incident'),
    enabled: z.boolean().default(true),
  })
  .strict();

type HostRow = Selectable<HardwareHostsTable>;
const pushingHost = new WeakMap<FastifyRequest, HostRow>();

/** R12.3①: hosts, samples, threshold rules and alerts; operators only, except the hosts' own push. */
export function registerHardwareRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const reader = (p: Principal) => requireOperatorRole(p, 'admin', 'operator', 'support');
  const writer = (p: Principal) => requireOperatorRole(p, 'admin', 'operator');
  // Roles are checked before the input is validated: a caller without them learns nothing of its shape.
  const canRead = { preValidation: async (req: FastifyRequest) => void reader(principalOf(req)) };
  const canWrite = { preValidation: async (req: FastifyRequest) => void writer(principalOf(req)) };
  const hostParams = z.object({ hostId: uuid });
  const ruleParams = z.object({ ruleId: uuid });

  r.post('/hardware/samples', {
    schema: {
      tags: ['hardware'],
      summary: "A host's agent pushes samples (R12.3①) with `Authorization: Bearer hkh_…` (its own push token)",
      security: [{ hostToken: [] }],
      body: pushBodySchema,
    },
    // The token is checked before the body is read: an unknown sender learns nothing about the format.
    onRequest: async (req) => {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const host = m ? await resolveHostToken(ctx.db, m[1]!) : null;
      if (!host) throw errors.unauthenticated();
      pushingHost.set(req, host);
    },
  }, async (req, reply) => {
    const host = pushingHost.get(req);
    if (!host) throw errors.unauthenticated();
    const result = await ingestSamples(ctx.db, ctx.clock, host.id, req.body.samples as HardwareSample[], ctx.config.hardwareRetentionDays);
    return reply.code(202).send({ accepted: result.accepted, duplicates: result.duplicates });
  });

  r.get('/hardware/hosts', { ...canRead, schema: { tags: ['hardware'], summary: 'Monitored hosts (R12.3①)', querystring: z.object({ includeRetired: z.enum(['true', 'false']).optional() }) } }, async (req) => {
    reader(principalOf(req));
    return { hosts: await listHosts(ctx.db, { includeRetired: req.query.includeRetired === 'true' }) };
  });

  r.post('/hardware/hosts', { ...canWrite, schema: { tags: ['hardware'], summary: 'Register a host; its push token is shown only in this answer', body: z.object({ name: hostName }).strict() } }, async (req, reply) => {
    const p = writer(principalOf(req));
    return reply.code(201).send(await registerHost(ctx.db, ctx.clock, actorOf(p), req.body.name));
  });

  r.get('/hardware/hosts/:hostId', { ...canRead, schema: { tags: ['hardware'], summary: 'One host with its latest sample and open alerts', params: hostParams } }, async (req) => {
    reader(principalOf(req));
    const host = await getHostRow(ctx.db, req.params.hostId);
    return { host: hostView(host), latestSample: await latestSample(ctx.db, host.id), openAlerts: await listAlerts(ctx.db, { open: true, hostId: host.id }) };
  });

  r.put('/hardware/hosts/:hostId', { ...canWrite, schema: { tags: ['hardware'], summary: 'Rename a host', params: hostParams, body: z.object({ name: hostName }).strict() } }, async (req) => {
    const p = writer(principalOf(req));
    return { host: await renameHost(ctx.db, ctx.clock, actorOf(p), req.params.hostId, req.body.name) };
  });

  r.delete('/hardware/hosts/:hostId', { ...canWrite, schema: { tags: ['hardware'], summary: 'Retire a host: its token stops working, its open alerts close; samples stay until the retention', params: hostParams } }, async (req) => {
    const p = writer(principalOf(req));
    return { host: await retireHost(ctx.db, ctx.clock, actorOf(p), req.params.hostId) };
  });

  r.post('/hardware/hosts/:hostId/token', { ...canWrite, schema: { tags: ['hardware'], summary: "Issue a new push token (shown once); the host's old token stops working", params: hostParams, body: z.object({}).strict() } }, async (req, reply) => {
    const p = writer(principalOf(req));
    return reply.code(201).send(await reissueHostToken(ctx.db, ctx.clock, actorOf(p), req.params.hostId));
  });

  r.get('/hardware/hosts/:hostId/samples', { ...canRead, schema: {
      tags: ['hardware'],
      summary: 'One metric of a host over a range of at most 31 days, for charts (at most 1,000 points; longer ranges are averaged in buckets)',
      params: hostParams,
      querystring: z.object({ from: instant, to: instant, metric: z.enum(SAMPLE_METRICS), target: z.string().min(1).max(200).optional() }).strict(),
    },
  }, async (req) => {
    reader(principalOf(req));
    const q = req.query;
    const series = await querySeries(ctx.db, req.params.hostId, q.metric, new Date(q.from), new Date(q.to), q.target ?? null);
    return { hostId: req.params.hostId, metric: q.metric, from: new Date(q.from).toISOString(), to: new Date(q.to).toISOString(), ...series };
  });

  r.get('/hardware/rules', { ...canRead, schema: { tags: ['hardware'], summary: 'Threshold rules' } }, async (req) => {
    reader(principalOf(req));
    return { rules: await listRules(ctx.db) };
  });

  r.post('/hardware/rules', { ...canWrite, schema: { tags: ['hardware'], summary: 'Add a threshold rule (metric, comparison, threshold, duration, severity)', body: ruleBody } }, async (req, reply) => {
    const p = writer(principalOf(req));
    return reply.code(201).send({ rule: await createRule(ctx.db, ctx.clock, actorOf(p), req.body) });
  });

  r.put('/hardware/rules/:ruleId', { ...canWrite, schema: { tags: ['hardware'], summary: "Replace a rule; its open episodes close", params: ruleParams, body: ruleBody } }, async (req) => {
    const p = writer(principalOf(req));
    return { rule: await updateRule(ctx.db, ctx.clock, actorOf(p), req.params.ruleId, req.body) };
  });

  r.delete('/hardware/rules/:ruleId', { ...canWrite, schema: { tags: ['hardware'], summary: 'Delete a rule; its open episodes close', params: ruleParams } }, async (req, reply) => {
    const p = writer(principalOf(req));
    await deleteRule(ctx.db, ctx.clock, actorOf(p), req.params.ruleId);
    return reply.code(204).send();
  });

  r.get('/hardware/alerts', { ...canRead, schema: { tags: ['hardware'], summary: 'Alert episodes, newest first', querystring: z.object({ open: z.enum(['true', 'false']).optional(), hostId: uuid.optional(), limit: z.coerce.number().int().min(1).max(1000).default(200) }).strict() },
  }, async (req) => {
    reader(principalOf(req));
    return { alerts: await listAlerts(ctx.db, { open: req.query.open === 'true', ...(req.query.hostId ? { hostId: req.query.hostId } : {}), limit: req.query.limit }) };
  });
}
