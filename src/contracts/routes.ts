import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { listAudit } from '../core/audit/audit-log.js';
import { actorOf, canAccessCustomer, hasOperatorRole, isCustomerAdminOf, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { calendarDate, email, humanPrincipal, instant, note, optionalNote, principalOf, router, uuid } from '../http/route-kit.js';
import {
  contractView,
  createContract,
  extendTerm,
  fileTerminationNotice,
  findContract,
  issueBreachNotice,
  listBreachNotices,
  listContracts,
  listDataDeletionDue,
  listTerminationNotices,
  recordBreachCured,
  resumeContract,
  setLinkedContractEnd,
  setMonthlyFee,
  suspendContract,
  terminateForBreach,
  terminateImmediately,
  type ContractRow,
} from './contracts.js';
import { createCustomer, findCustomer, listCustomers } from './customers.js';
import { IMMEDIATE_GROUNDS, SUSPENSION_REASON_CODES } from './vocabulary.js';

const customerParams = z.object({ customerId: uuid });
const contractParams = z.object({ contractId: uuid });
const contractNumber = z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/, { error: '1–40 letters, digits, ".", "_" or "-"' });
const yen = z.number().int({ error: 'must be a whole number of yen' }).min(0).max(1_000_000_000);

/** Request bodies, shared with the web forms (src/web/) so both validate alike. */
export const suspendBody = z.object({ reason: z.enum(SUSPENSION_REASON_CODES), note });
export const terminationNoticeBody = z.object({ endDate: calendarDate.optional(), note: optionalNote, receivedAt: instant.optional().describe('operators recording a letter: when it was received (within 31 days); the 30 days run from then') });
export const breachNoticeBody = z.object({ description: note, cureDeadline: instant });
export const extendTermBody = z.object({ termEnd: calendarDate, note });
export const feeBody = z.object({ monthlyFeeYen: yen, note });
export const linkedEndBody = z.object({ endDate: calendarDate.nullable(), note });

export const terminateBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('breach'), breachNoticeId: uuid, note }),
  z.object({ kind: z.literal('immediate'), ground: z.enum(IMMEDIATE_GROUNDS), note }),
]);
export const noteBody = z.object({ note });

export function registerContractRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);

  /** Loads a contract the principal may see; another customer's contract is "not found". */
  async function visibleContract(p: Principal, id: string): Promise<ContractRow> {
    const row = await findContract(ctx.db, id);
    if (!row || !canAccessCustomer(p, row.customer_id)) throw errors.notFound('契約 / contract', id);
    return row;
  }
  const operatorWrite = (p: Principal) => requireOperatorRole(p, 'admin', 'operator');

  r.get('/customers', { schema: { tags: ['customers'], summary: 'Customers the caller may see' } }, async (req) => {
    const p = principalOf(req);
    if (p.kind === 'operator') return { customers: await listCustomers(ctx.db) };
    const own = await findCustomer(ctx.db, p.customerId);
    return { customers: own ? [own] : [] };
  });

  r.post('/customers', {
    schema: {
      tags: ['customers'],
      summary: 'Register a customer (provider admin/operator)',
      body: z.object({ code: z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$/, { error: '2–32 letters, digits, "_" or "-"' }), name: z.string().trim().min(1).max(200), contactEmail: email }),
    },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    return reply.code(201).send({ customer: await createCustomer(ctx.db, ctx.clock, actorOf(p), req.body) });
  });

  r.get('/customers/:customerId', { schema: { tags: ['customers'], summary: 'One customer', params: customerParams } }, async (req) => {
    const p = principalOf(req);
    const customer = canAccessCustomer(p, req.params.customerId) ? await findCustomer(ctx.db, req.params.customerId) : undefined;
    if (!customer) throw errors.notFound('お客様 / customer', req.params.customerId);
    return { customer };
  });

  r.get('/customers/:customerId/contracts', { schema: { tags: ['contracts'], summary: "A customer's contracts", params: customerParams } }, async (req) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId) || !(await findCustomer(ctx.db, req.params.customerId))) {
      throw errors.notFound('お客様 / customer', req.params.customerId);
    }
    const rows = await listContracts(ctx.db, { customerId: req.params.customerId });
    return { contracts: rows.map((c) => contractView(c, p)) };
  });

  r.post('/customers/:customerId/contracts', {
    schema: {
      tags: ['contracts'],
      summary: 'Conclude a contract (R21.1); only the billing role may set the fee (R14.1)',
      params: customerParams,
      body: z.object({
        contractNumber,
        termStart: calendarDate,
        termEnd: calendarDate,
        monthlyFeeYen: yen.optional(),
        systemUseContractNumber: contractNumber,
        systemUseContractEnd: calendarDate.nullable().optional(),
        supportContractNumber: contractNumber,
        supportContractEnd: calendarDate.nullable().optional(),
      }),
    },
  }, async (req, reply) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator', 'billing');
    if (req.body.monthlyFeeYen !== undefined && !hasOperatorRole(p, 'billing')) {
      throw errors.forbidden('only the billing role may set the fee (R14.1)', '利用料金は請求担当のみが設定できます（第14条）');
    }
    if (!hasOperatorRole(p, 'admin', 'operator') && req.body.monthlyFeeYen === undefined) {
      throw errors.forbidden('requires provider role admin or operator', '事業者の管理者または運用担当の権限が必要です');
    }
    const row = await createContract(ctx.db, ctx.clock, actorOf(p), { ...req.body, customerId: req.params.customerId });
    return reply.code(201).send({ contract: contractView(row, p) });
  });

  r.get('/contracts', {
    schema: { tags: ['contracts'], summary: 'Contracts the caller may see', querystring: z.object({ status: z.enum(['active', 'suspended', 'ended']).optional() }) },
  }, async (req) => {
    const p = principalOf(req);
    const filter = p.kind === 'operator' ? { status: req.query.status } : { status: req.query.status, customerId: p.customerId };
    const rows = await listContracts(ctx.db, filter);
    return { contracts: rows.map((c) => contractView(c, p)) };
  });

  r.get('/contracts/:contractId', { schema: { tags: ['contracts'], summary: 'One contract', params: contractParams } }, async (req) => {
    const p = principalOf(req);
    return { contract: contractView(await visibleContract(p, req.params.contractId), p) };
  });

  r.post('/contracts/:contractId/suspend', {
    schema: { tags: ['lifecycle'], summary: 'Suspend for a reason of R11.1 ①–④; the data is kept', params: contractParams, body: suspendBody },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    await visibleContract(p, req.params.contractId);
    return { contract: contractView(await suspendContract(ctx.db, ctx.clock, actorOf(p), req.params.contractId, req.body), p) };
  });

  r.post('/contracts/:contractId/resume', {
    schema: { tags: ['lifecycle'], summary: 'Lift a suspension', params: contractParams, body: noteBody },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    await visibleContract(p, req.params.contractId);
    return { contract: contractView(await resumeContract(ctx.db, ctx.clock, actorOf(p), req.params.contractId, req.body), p) };
  });

  r.post('/contracts/:contractId/termination-notice', {
    schema: {
      tags: ['lifecycle'],
      summary: "The customer's written termination notice, at least 30 days ahead (R22.3); the end date is computed in Japan time",
      params: contractParams,
      body: terminationNoticeBody,
    },
  }, async (req, reply) => {
    const p = humanPrincipal(req);
    const row = await visibleContract(p, req.params.contractId);
    if (!isCustomerAdminOf(p, row.customer_id) && !hasOperatorRole(p, 'admin', 'operator')) {
      throw errors.forbidden("requires the customer's admin (or an operator recording a written notice)", 'お客様の管理者（または書面を受領した事業者の運用担当）のみ解約通知を登録できます');
    }
    if (req.body.endDate !== undefined && req.body.endDate > row.term_end) {
      throw errors.invalidField('endDate', `契約期間の終了日（${row.term_end}）より後の日付は指定できません。`, `must not be after the end of the term (${row.term_end})`);
    }
    // The customer's own notice is received when it is sent; only a letter has an earlier receipt.
    if (req.body.receivedAt !== undefined && !hasOperatorRole(p, 'admin', 'operator')) {
      throw errors.invalidField('receivedAt', '受領日時は書面を受領した事業者のみ指定できます。', 'only an operator recording a written notice may give its receipt time');
    }
    const result = await fileTerminationNotice(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, req.params.contractId, {
      endDate: req.body.endDate,
      note: req.body.note,
      receivedAt: req.body.receivedAt === undefined ? undefined : new Date(req.body.receivedAt),
    });
    return reply.code(201).send({ contract: contractView(result.contract, p), terminationNotice: result.notice });
  });

  r.get('/contracts/:contractId/termination-notices', { schema: { tags: ['lifecycle'], summary: 'Termination notices received', params: contractParams } }, async (req) => {
    const p = principalOf(req);
    await visibleContract(p, req.params.contractId);
    return { terminationNotices: await listTerminationNotices(ctx.db, req.params.contractId) };
  });

  r.post('/contracts/:contractId/breach-notices', {
    schema: {
      tags: ['lifecycle'],
      summary: 'Written notice of a breach with a cure deadline (R22.1)',
      params: contractParams,
      body: breachNoticeBody,
    },
  }, async (req, reply) => {
    const p = operatorWrite(principalOf(req));
    await visibleContract(p, req.params.contractId);
    const result = await issueBreachNotice(ctx.db, ctx.clock, { ...actorOf(p), id: p.userId }, req.params.contractId, {
      description: req.body.description,
      cureDeadline: new Date(req.body.cureDeadline),
    });
    return reply.code(201).send({ contract: contractView(result.contract, p), breachNotice: result.breachNotice });
  });

  r.get('/contracts/:contractId/breach-notices', { schema: { tags: ['lifecycle'], summary: 'Breach notices', params: contractParams } }, async (req) => {
    const p = principalOf(req);
    await visibleContract(p, req.params.contractId);
    return { breachNotices: await listBreachNotices(ctx.db, req.params.contractId) };
  });

  r.post('/contracts/:contractId/breach-notices/:noticeId/cure', {
    schema: { tags: ['lifecycle'], summary: 'Record that a breach was cured', params: z.object({ contractId: uuid, noticeId: uuid }), body: noteBody },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    await visibleContract(p, req.params.contractId);
    return { contract: contractView(await recordBreachCured(ctx.db, ctx.clock, actorOf(p), req.params.contractId, req.params.noticeId, req.body), p) };
  });

  r.post('/contracts/:contractId/terminate', {
    schema: {
      tags: ['lifecycle'],
      summary: 'Terminate: for an uncured breach after its deadline (R22.1), or immediately for gross breach (R22.2), anti-social forces (R16.1) or an unresolved third-party claim (R17.1) — admin only',
      params: contractParams,
      body: terminateBody,
    },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin');
    await visibleContract(p, req.params.contractId);
    const b = req.body;
    const row =
      b.kind === 'breach'
        ? await terminateForBreach(ctx.db, ctx.clock, actorOf(p), req.params.contractId, { breachNoticeId: b.breachNoticeId, note: b.note })
        : await terminateImmediately(ctx.db, ctx.clock, actorOf(p), req.params.contractId, { ground: b.ground, note: b.note });
    return { contract: contractView(row, p) };
  });

  r.put('/contracts/:contractId/linked-contracts/:linked', {
    schema: {
      tags: ['lifecycle'],
      summary: 'End date of the linked system-use or support contract; when it passes this contract ends (R22.4)',
      params: z.object({ contractId: uuid, linked: z.enum(['system-use', 'support']) }),
      body: linkedEndBody,
    },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    await visibleContract(p, req.params.contractId);
    const linked = req.params.linked === 'system-use' ? 'system_use' : 'support';
    return { contract: contractView(await setLinkedContractEnd(ctx.db, ctx.clock, actorOf(p), req.params.contractId, { linked, ...req.body }), p) };
  });

  r.put('/contracts/:contractId/term', {
    schema: { tags: ['lifecycle'], summary: 'Extend the agreed term (R21.1)', params: contractParams, body: extendTermBody },
  }, async (req) => {
    const p = operatorWrite(principalOf(req));
    await visibleContract(p, req.params.contractId);
    return { contract: contractView(await extendTerm(ctx.db, ctx.clock, actorOf(p), req.params.contractId, req.body), p) };
  });

  r.put('/contracts/:contractId/fee', {
    schema: { tags: ['contracts'], summary: 'Set the monthly fee (billing role only, R14.1)', params: contractParams, body: feeBody },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'billing');
    await visibleContract(p, req.params.contractId);
    return { contract: contractView(await setMonthlyFee(ctx.db, ctx.clock, actorOf(p), req.params.contractId, req.body), p) };
  });

  r.get('/contracts/:contractId/history', {
    schema: { tags: ['contracts'], summary: "The contract's audit trail: who did what, when and why", params: contractParams },
  }, async (req) => {
    const p = principalOf(req);
    const row = await visibleContract(p, req.params.contractId);
    if (p.kind !== 'operator' && !isCustomerAdminOf(p, row.customer_id)) {
      throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
    }
    return { entries: await listAudit(ctx.db, { subjectType: 'contract', subjectId: row.id, limit: 1000 }) };
  });

  r.get('/data-deletion-due', {
    schema: { tags: ['contracts'], summary: 'Ended contracts whose data is due for deletion (R10.7)', querystring: z.object({ pending: z.enum(['true', 'false']).default('false') }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator');
    return { dataDeletionDue: await listDataDeletionDue(ctx.db, { pendingOnly: req.query.pending === 'true' }) };
  });
}
