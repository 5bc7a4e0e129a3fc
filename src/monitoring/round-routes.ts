import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { actorOf, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import type { AppContext } from '../http/context.js';
import { instant, principalOf, router, uuid } from '../http/route-kit.js';
import { createChecklist, getChecklist, listChecklists, listRounds, recordRound, retireChecklist, roundDueStates, updateChecklist } from './rounds.js';

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(max)
    .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), { error: 'must not contain control characters' });

// A name or label stands on one line: it goes into e-mail subjects and list rows.
const line = (max: number) => text(max).refine((s) => !/[\t\n\r]/.test(s), { error: 'must be a single line' });

export const checklistItem = z
  .object({
    key: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, { error: 'a key of 1–64 lower-case letters, digits, "_" or "-"' }),
    label: line(200),
    description: text(2000).nullable().default(null),
  })
  .strict();

export const checklistBody = z
  .object({
    name: line(200),
    intervalHours: z.number().int().min(1).max(8760).nullable().default(null).describe('hours between rounds; null: HOKAN_ROUND_INTERVAL_HOURS'),
    items: z.array(checklistItem).min(1).max(500),
  })
  .strict();

/** R12.3③: checklists, visual rounds and whether one is overdue; operators only. */
export function registerRoundRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  const reader = (p: Principal) => requireOperatorRole(p, 'admin', 'operator', 'support');
  const writer = (p: Principal) => requireOperatorRole(p, 'admin', 'operator');
  // Roles are checked before the input is validated: a caller without them learns nothing of its shape.
  const canRead = { preValidation: async (req: FastifyRequest) => void reader(principalOf(req)) };
  const canWrite = { preValidation: async (req: FastifyRequest) => void writer(principalOf(req)) };
  const checklistParams = z.object({ checklistId: uuid });

  r.get('/rounds/checklists', { ...canRead, schema: { tags: ['rounds'], summary: 'Checklists of the visual rounds (R12.3③), current versions' } }, async (req) => {
    reader(principalOf(req));
    return { checklists: await listChecklists(ctx.db) };
  });

  r.post('/rounds/checklists', { ...canWrite, schema: { tags: ['rounds'], summary: 'Create a checklist', body: checklistBody } }, async (req, reply) => {
    const p = writer(principalOf(req));
    return reply.code(201).send({ checklist: await createChecklist(ctx.db, ctx.clock, actorOf(p), req.body) });
  });

  r.get('/rounds/checklists/:checklistId', { ...canRead, schema: { tags: ['rounds'], summary: 'One checklist with every version (history)', params: checklistParams } }, async (req) => {
    reader(principalOf(req));
    return { checklist: await getChecklist(ctx.db, req.params.checklistId) };
  });

  r.put('/rounds/checklists/:checklistId', { ...canWrite, schema: { tags: ['rounds'], summary: 'Edit a checklist: its items become a new version', params: checklistParams, body: checklistBody.extend({ note: text(2000).nullable().default(null) }) },
  }, async (req) => {
    const p = writer(principalOf(req));
    return { checklist: await updateChecklist(ctx.db, ctx.clock, actorOf(p), req.params.checklistId, req.body) };
  });

  r.delete('/rounds/checklists/:checklistId', { ...canWrite, schema: { tags: ['rounds'], summary: 'Retire a checklist (its rounds stay)', params: checklistParams } }, async (req, reply) => {
    const p = writer(principalOf(req));
    await retireChecklist(ctx.db, ctx.clock, actorOf(p), req.params.checklistId);
    return reply.code(204).send();
  });

  r.post('/rounds', { ...canWrite, schema: {
      tags: ['rounds'],
      summary: 'Record a visual round: every item of the checklist ok or a finding with a note; a finding can open an incident',
      body: z
        .object({
          checklistId: uuid,
          performedAt: instant.optional().describe('when the round was walked; default now, at most 7 days back'),
          results: z
            .array(
              z
                .object({
                  itemKey: z.string().min(1).max(64),
                  status: z.enum(['ok', 'finding']),
                  note: text(2000).nullable().default(null),
                  incident: z.object({ severity: z.enum(['critical', 'major', 'minor']), title: text(200).nullable().default(null) }).strict().nullable().default(null),
                })
                .strict(),
            )
            .min(1)
            .max(500),
        })
        .strict(),
    },
  }, async (req, reply) => {
    const p = writer(principalOf(req));
    const b = req.body;
    const round = await recordRound(ctx.db, ctx.clock, actorOf(p), { checklistId: b.checklistId, performedAt: b.performedAt ? new Date(b.performedAt) : null, results: b.results });
    return reply.code(201).send({ round });
  });

  r.get('/rounds', { ...canRead, schema: { tags: ['rounds'], summary: 'Recorded rounds, newest first', querystring: z.object({ checklistId: uuid.optional(), limit: z.coerce.number().int().min(1).max(500).default(100) }).strict() },
  }, async (req) => {
    reader(principalOf(req));
    return { rounds: await listRounds(ctx.db, { ...(req.query.checklistId ? { checklistId: req.query.checklistId } : {}), limit: req.query.limit }) };
  });

  r.get('/rounds/due', { ...canRead, schema: { tags: ['rounds'], summary: 'When each checklist\'s next round is due and whether it is overdue' } }, async (req) => {
    reader(principalOf(req));
    return { rounds: await roundDueStates(ctx.db, ctx.clock, ctx.config.roundIntervalHours) };
  });
}
