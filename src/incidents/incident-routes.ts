import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf, requireOperatorRole } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { instant, note, principalOf, router, uuid } from '../http/route-kit.js';
import { assessIncident, getIncident, LIABILITY_EXCLUSION_CODES, listIncidents, MILESTONES, openIncident, recordMilestone } from './incidents.js';
import { EMERGENCY_CAUSE_CODES } from './stops.js';

/** Request bodies, shared with the web forms (src/web/) so both validate alike. */
export const openIncidentBody = z.object({
        title: z.string().trim().min(1).max(200),
        severity: z.enum(['critical', 'major', 'minor']),
        cause: z.enum(EMERGENCY_CAUSE_CODES).nullable().optional(),
        occurredAt: instant,
        detectedAt: instant.optional(),
        customerIds: z.array(uuid).max(10_000).optional(),
        entirelyUnusable: z.boolean().optional(),
      });
export const milestoneBody = z.object({ milestone: z.enum(MILESTONES), at: instant.optional() });
export const assessmentBody = z.object({ entirelyUnusable: z.boolean(), providerFault: z.boolean(), exclusion: z.enum(LIABILITY_EXCLUSION_CODES).nullable(), note });

export function registerIncidentRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const params = z.object({ incidentId: uuid });

  r.get('/incidents', { schema: { tags: ['incidents'], summary: 'Incidents with SLA status (R8.3) and liability findings (R20); customers see those that touched them' } }, async (req) => {
    const p = principalOf(req);
    return { incidents: await listIncidents(ctx.db, ctx.clock, p.kind === 'operator' ? undefined : p.customerId) };
  });

  r.get('/incidents/:incidentId', { schema: { tags: ['incidents'], summary: 'One incident', params } }, async (req) => {
    const p = principalOf(req);
    const incident = await getIncident(ctx.db, ctx.clock, req.params.incidentId);
    if (p.kind !== 'operator' && incident.customerIds !== 'all' && !incident.customerIds.includes(p.customerId)) throw errors.notFound('障害 / incident', req.params.incidentId);
    return { incident: p.kind === 'operator' || incident.customerIds === 'all' ? incident : { ...incident, customerIds: [p.customerId] } };
  });

  r.post('/incidents', {
    schema: {
      tags: ['incidents'],
      summary: 'Open an incident (operator); occurred and detected times drive the SLA clocks',
      body: openIncidentBody,
    },
  }, async (req, reply) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    const b = req.body;
    const incident = await openIncident(ctx.db, ctx.clock, actorOf(p), {
      title: b.title,
      severity: b.severity,
      cause: b.cause ?? null,
      occurredAt: new Date(b.occurredAt),
      ...(b.detectedAt ? { detectedAt: new Date(b.detectedAt) } : {}),
      ...(b.customerIds ? { customerIds: b.customerIds } : {}),
      ...(b.entirelyUnusable !== undefined ? { entirelyUnusable: b.entirelyUnusable } : {}),
    });
    return reply.code(201).send({ incident });
  });

  r.post('/incidents/:incidentId/milestones', {
    schema: { tags: ['incidents'], summary: 'Record first notice, recovery, recovery notice or report (R8.1, R8.3)', params, body: milestoneBody },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    return { incident: await recordMilestone(ctx.db, ctx.clock, actorOf(p), req.params.incidentId, req.body.milestone, req.body.at ? new Date(req.body.at) : undefined) };
  });

  r.put('/incidents/:incidentId/assessment', {
    schema: {
      tags: ['incidents'],
      summary: 'Liability inputs (R20): entirely unusable, provider fault, exclusion ①–⑦ of Art. 20.2 (admin)',
      params,
      body: assessmentBody,
    },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin');
    return { incident: await assessIncident(ctx.db, ctx.clock, actorOf(p), req.params.incidentId, req.body) };
  });
}
