import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { findCustomer } from '../contracts/customers.js';
import { actorOf, canAccessCustomer, canSeeFee, isCustomerAdminOf, requireOperatorRole, type Principal } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { note, principalOf, router, uuid } from '../http/route-kit.js';
import { findContract } from '../contracts/contracts.js';
import { getMigrationRequest, listMigrationRequests, markMigrationDelivered, openMigrationPackage, produceMigrationPackage, requestMigration } from './migration.js';

export function registerMigrationRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);

  /** The provider's staff and the customer's own admins; another customer's id is "not found". */
  async function requireCustomerSide(p: Principal, customerId: string): Promise<void> {
    if (!canAccessCustomer(p, customerId) || !(await findCustomer(ctx.db, customerId))) throw errors.notFound('お客様 / customer', customerId);
    if (p.kind !== 'operator' && !isCustomerAdminOf(p, customerId)) throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
  }

  r.post('/customers/:customerId/migration-requests', {
    schema: { tags: ['migration'], summary: 'Request migration of the data at contract end (R10.6); holds the purge until delivered', params: z.object({ customerId: uuid }), body: z.object({ note }) },
  }, async (req, reply) => {
    const p = principalOf(req);
    await requireCustomerSide(p, req.params.customerId);
    if (p.kind === 'operator') requireOperatorRole(p, 'admin', 'operator');
    if (p.kind === 'api_token') throw errors.forbidden('API tokens cannot do this', 'APIトークンでは実行できません');
    return reply.code(201).send({ migrationRequest: await requestMigration(ctx.db, ctx.clock, actorOf(p), req.params.customerId, req.body.note) });
  });

  r.get('/customers/:customerId/migration-requests', { schema: { tags: ['migration'], summary: 'Migration requests of a customer', params: z.object({ customerId: uuid }) } }, async (req) => {
    const p = principalOf(req);
    await requireCustomerSide(p, req.params.customerId);
    return { migrationRequests: await listMigrationRequests(ctx.db, req.params.customerId) };
  });

  const requestParams = z.object({ requestId: uuid });

  r.post('/migration-requests/:requestId/package', {
    schema: { tags: ['migration'], summary: 'Produce the migration package (open export format + schema.json); recorded as a billable item', params: requestParams },
  }, async (req, reply) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    return reply.code(201).send({ migrationRequest: await produceMigrationPackage({ db: ctx.db, clock: ctx.clock, live: ctx.files }, actorOf(p), req.params.requestId) });
  });

  r.get('/migration-requests/:requestId/package', {
    schema: { tags: ['migration'], summary: "Download the migration package; a complete download by the customer's admin marks it delivered", params: requestParams },
  }, async (req, reply) => {
    const p = principalOf(req);
    const request = await getMigrationRequest(ctx.db, req.params.requestId);
    await requireCustomerSide(p, request.customer_id);
    const { stream, request: v } = await openMigrationPackage(ctx.db, ctx.files, request.id);
    if (p.kind === 'customer_user') {
      reply.raw.on('finish', () => {
        void markMigrationDelivered(ctx.db, ctx.clock, actorOf(p), request.id).catch((err: unknown) => req.log.error({ err }, 'could not record the delivery'));
      });
    }
    return reply
      .type('application/zip')
      .header('content-length', String(v.package?.size ?? ''))
      .header('x-content-sha256', v.package?.sha256 ?? '')
      .header('content-disposition', `attachment; filename="hokan-migration-${request.id}.zip"`)
      .send(stream);
  });

  r.post('/migration-requests/:requestId/delivered', {
    schema: { tags: ['migration'], summary: 'Record that the package was handed over by other means', params: requestParams, body: z.object({ note }) },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin', 'operator');
    await getMigrationRequest(ctx.db, req.params.requestId);
    return { migrationRequest: await markMigrationDelivered(ctx.db, ctx.clock, { ...actorOf(p), label: `${actorOf(p).label}: ${req.body.note}` }, req.params.requestId) };
  });

  r.get('/contracts/:contractId/billable-items', {
    schema: { tags: ['migration'], summary: 'Billable items on a contract; amounts only for billing and the customer admin (R14.1)', params: z.object({ contractId: uuid }) },
  }, async (req) => {
    const p = principalOf(req);
    const contract = await findContract(ctx.db, req.params.contractId);
    if (!contract || !canAccessCustomer(p, contract.customer_id)) throw errors.notFound('契約 / contract', req.params.contractId);
    if (p.kind !== 'operator' && !isCustomerAdminOf(p, contract.customer_id)) throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
    const rows = await ctx.db.selectFrom('billable_items').selectAll().where('contract_id', '=', contract.id).orderBy('created_at').execute();
    const seeAmount = canSeeFee(p, contract.customer_id);
    return { billableItems: rows.map((b) => ({ id: b.id, kind: b.kind, description: b.description, createdAt: b.created_at.toISOString(), ...(seeAmount ? { amountYen: b.amount_yen } : {}) })) };
  });

  r.put('/billable-items/:itemId/amount', {
    schema: { tags: ['migration'], summary: 'Set the amount of a billable item (billing role)', params: z.object({ itemId: uuid }), body: z.object({ amountYen: z.number().int().min(0).max(1_000_000_000) }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'billing');
    const row = await ctx.db.updateTable('billable_items').set({ amount_yen: req.body.amountYen }).where('id', '=', req.params.itemId).returningAll().executeTakeFirst();
    if (!row) throw errors.notFound('請求項目 / billable item', req.params.itemId);
    return { billableItem: { id: row.id, kind: row.kind, description: row.description, amountYen: row.amount_yen } };
  });
}
