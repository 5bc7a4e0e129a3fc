import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf, hasOperatorRole, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { instant, note, principalOf, router, uuid } from '../http/route-kit.js';
import { cancelPlannedStop, EMERGENCY_CAUSE_CODES, endStop, listStops, PLANNED_REASON_CODES, schedulePlannedStop, startEmergencyStop, stopView, type StopRecord } from './stops.js';

// Free text shown to customers in the 503: no control characters other than line breaks and tabs.
const description = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(2000)
  .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), { error: 'must not contain control characters' });
const customerIds = z.array(uuid).min(1).max(1000).optional().describe('omit to stop the service for every customer');
const stopParams = z.object({ stopId: uuid });

/** Request bodies, shared with the web forms (src/web/) so both validate alike. */
export const plannedStopBody = z.object({
        reason: z.enum(PLANNED_REASON_CODES),
        description,
        startsAt: instant,
        endsAt: instant,
        customerIds,
        override: z.object({ reason: note }).optional(),
      });
export const emergencyStopBody = z.object({ cause: z.enum(EMERGENCY_CAUSE_CODES), description, customerIds, /** R7.3: the incident behind the stop */ incidentId: uuid.optional() });
export const stopNoteBody = z.object({ note });

export function registerStopRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const operatorWrite = (p: Principal) => requireOperatorRole(p, 'admin', 'operator');
  const view = (s: StopRecord, p: Principal) => stopView(s, ctx.clock.now(), p.kind === 'operator' ? undefined : p.customerId);

  r.get('/stops', { schema: { tags: ['stops'], summary: 'Planned and emergency service stops (R7.2, R7.3): operators see all, customers those that touch them' } }, async (req) => {
    const p = principalOf(req);
    const stops = await listStops(ctx.db, p.kind === 'operator' ? {} : { customerId: p.customerId });
    return { stops: stops.map((s) => view(s, p)) };
  });

  r.post('/stops/planned', {
    schema: {
      tags: ['stops'],
      summary: 'Announce a planned stop with its reason ①–④ and period (R7.2); shorter notice than the minimum needs an admin override with a reason',
      body: plannedStopBody,
    },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    const b = req.body;
    if (b.override && !hasOperatorRole(p, 'admin')) {
      throw errors.forbidden('only an admin may shorten the notice of a planned stop', '計画停止の通知期間の短縮は管理者のみが承認できます');
    }
    const stop = await schedulePlannedStop(
      ctx.db,
      ctx.clock,
      actorOf(p),
      { reason: b.reason, description: b.description, startsAt: new Date(b.startsAt), endsAt: new Date(b.endsAt), ...(b.customerIds ? { customerIds: b.customerIds } : {}), ...(b.override ? { override: b.override } : {}) },
      { minLeadDays: ctx.config.plannedStopLeadDays },
    );
    return reply.code(201).send({ stop: view(stop, p) });
  });

  r.post('/stops/emergency', {
    schema: {
      tags: ['stops'],
      summary: 'Stop the service at once, without notice, for a cause ①–⑥ (R7.3)',
      body: emergencyStopBody,
    },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    const b = req.body;
    const stop = await startEmergencyStop(ctx.db, ctx.clock, actorOf(p), { cause: b.cause, description: b.description, ...(b.customerIds ? { customerIds: b.customerIds } : {}), ...(b.incidentId ? { incidentId: b.incidentId } : {}) });
    return reply.code(201).send({ stop: view(stop, p) });
  });

  r.post('/stops/:stopId/end', {
    schema: { tags: ['stops'], summary: 'End a stop in force (an emergency stop, or a planned stop finished early)', params: stopParams, body: stopNoteBody },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    return { stop: view(await endStop(ctx.db, ctx.clock, actorOf(p), req.params.stopId, req.body), p) };
  });

  r.post('/stops/:stopId/cancel', {
    schema: { tags: ['stops'], summary: 'Withdraw a planned stop before it starts', params: stopParams, body: stopNoteBody },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    return { stop: view(await cancelPlannedStop(ctx.db, ctx.clock, actorOf(p), req.params.stopId, req.body), p) };
  });
}
