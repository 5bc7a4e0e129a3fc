import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { actorOf, requireOperatorRole } from '../core/auth/principal.js';
import type { AppContext } from '../http/context.js';
import { instant, principalOf, router, uuid } from '../http/route-kit.js';
import { BREACH_KIND_CODES, BREACH_STATUSES, getBreach, listBreaches, markBreach, NOTICE_STAGES, recordBreachNotice, updateBreach, type BreachCustomerInput } from './breach-clock.js';

// Free text of the report: no control characters other than line breaks and tabs.
const text = z
  .string()
  .trim()
  .max(4000)
  .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), { error: 'must not contain control characters' });
const customer = z.object({
  customerId: uuid,
  learnedAt: instant.optional(),
  dataItems: z.array(z.string().trim().min(1).max(200)).max(50).optional().describe('kinds of personal data, e.g. 氏名, 住所, クレジットカード番号'),
  peopleCount: z.number().int().min(0).max(1_000_000_000).nullable().optional().describe('null while unknown'),
  peopleEstimated: z.boolean().optional(),
  sensitive: z.boolean().optional().describe('要配慮個人情報 (施行規則 第7条第1号)'),
  financialRisk: z.boolean().optional().describe('財産的被害のおそれ (第7条第2号)'),
  advancedMeasures: z.boolean().optional().describe('高度な暗号化その他の措置 (encrypted / protected)'),
  protectionNote: text.optional(),
});
const details = {
  beganAt: instant.nullable().optional(),
  cause: text.optional(),
  secondaryDamage: text.optional().describe('二次被害またはそのおそれ'),
  countermeasures: text.optional().describe('再発防止策・本人への対応'),
  contact: text.optional().describe('問合せ窓口'),
  timeline: z.array(z.object({ at: instant, event: z.string().trim().min(1).max(1000) })).max(200).optional(),
};
const params = z.object({ breachId: uuid });

function customers(list: z.infer<typeof customer>[] | undefined): BreachCustomerInput[] | undefined {
  return list?.map(({ learnedAt, ...c }) => ({ ...c, ...(learnedAt ? { learnedAt: new Date(learnedAt) } : {}) }) as BreachCustomerInput);
}

function detailsOf(b: { beganAt?: string | null | undefined; timeline?: Array<{ at: string; event: string }> | undefined; cause?: string | undefined; secondaryDamage?: string | undefined; countermeasures?: string | undefined; contact?: string | undefined }) {
  return {
    ...(b.beganAt !== undefined ? { beganAt: b.beganAt === null ? null : new Date(b.beganAt) } : {}),
    ...(b.timeline ? { timeline: b.timeline.map((t) => ({ at: new Date(t.at), event: t.event })) } : {}),
    ...(b.cause !== undefined ? { cause: b.cause } : {}),
    ...(b.secondaryDamage !== undefined ? { secondaryDamage: b.secondaryDamage } : {}),
    ...(b.countermeasures !== undefined ? { countermeasures: b.countermeasures } : {}),
    ...(b.contact !== undefined ? { contact: b.contact } : {}),
  };
}

/** The personal-data breach clock (Decision 0020): operators record; each customer reads its own part. */
export function registerBreachRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);

  r.post('/incidents/:incidentId/breach', {
    schema: {
      tags: ['incidents'],
      summary: 'Mark an incident as a possible leak, loss or damage of personal data (漏えい・滅失・毀損); the notice clocks start per affected customer',
      params: z.object({ incidentId: uuid }),
      body: z.object({
        kinds: z.array(z.enum(BREACH_KIND_CODES)).min(1).max(3),
        status: z.enum(['suspected', 'confirmed']),
        learnedAt: instant.optional().describe("when the provider learned of it; defaults to the incident's detection"),
        unauthorisedPurpose: z.boolean().describe('不正の目的をもって行われたおそれ (第7条第3号): the final report is due in 60 days instead of 30'),
        customers: z.array(customer).min(1).max(10_000),
        ...details,
      }),
    },
  }, async (req, reply) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    const b = req.body;
    const breach = await markBreach(ctx.db, ctx.clock, actorOf(p), req.params.incidentId, {
      kinds: b.kinds,
      status: b.status,
      unauthorisedPurpose: b.unauthorisedPurpose,
      customers: customers(b.customers) ?? [],
      ...(b.learnedAt ? { learnedAt: new Date(b.learnedAt) } : {}),
      ...detailsOf(b),
    });
    return reply.code(201).send({ breach });
  });

  r.get('/breaches', { schema: { tags: ['incidents'], summary: 'Personal-data breach records: operators see all, a customer its own part of those that affect it' } }, async (req) => {
    const p = principalOf(req);
    return { breaches: await listBreaches(ctx.db, ctx.clock, p.kind === 'operator' ? undefined : p.customerId) };
  });

  r.get('/breaches/:breachId', { schema: { tags: ['incidents'], summary: 'One personal-data breach record with deadlines per customer', params } }, async (req) => {
    const p = principalOf(req);
    return { breach: await getBreach(ctx.db, ctx.clock, req.params.breachId, p.kind === 'operator' ? undefined : p.customerId) };
  });

  r.patch('/breaches/:breachId', {
    schema: {
      tags: ['incidents'],
      summary: 'Fill in what the report needs: data, people, cause, protection, timeline, secondary damage, countermeasures, contact; add customers',
      params,
      body: z.object({
        kinds: z.array(z.enum(BREACH_KIND_CODES)).min(1).max(3).optional(),
        status: z.enum(BREACH_STATUSES).optional(),
        unauthorisedPurpose: z.boolean().optional(),
        customers: z.array(customer).max(10_000).optional(),
        ...details,
      }),
    },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    const b = req.body;
    const list = customers(b.customers);
    return {
      breach: await updateBreach(ctx.db, ctx.clock, actorOf(p), req.params.breachId, {
        ...(b.kinds ? { kinds: b.kinds } : {}),
        ...(b.status ? { status: b.status } : {}),
        ...(b.unauthorisedPurpose !== undefined ? { unauthorisedPurpose: b.unauthorisedPurpose } : {}),
        ...(list ? { customers: list } : {}),
        ...detailsOf(b),
      }),
    };
  });

  r.post('/breaches/:breachId/notices', {
    schema: {
      tags: ['incidents'],
      summary: 'Record that the preliminary (速報) or final (確報) notice was given to an affected customer',
      params,
      body: z.object({ customerId: uuid, stage: z.enum(NOTICE_STAGES), at: instant.optional() }),
    },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    const b = req.body;
    return { breach: await recordBreachNotice(ctx.db, ctx.clock, actorOf(p), req.params.breachId, { customerId: b.customerId, stage: b.stage, ...(b.at ? { at: new Date(b.at) } : {}) }) };
  });
}
