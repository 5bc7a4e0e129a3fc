import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { listAudit, verifyAuditChain } from '../core/audit/audit-log.js';
import { requireOperatorRole } from '../core/auth/principal.js';
import type { AppContext } from './context.js';
import { principalOf, router, uuid } from './route-kit.js';

export function registerAuditRoutes(app: FastifyInstance, ctx: AppContext): void {
  const r = router(app);
  r.get('/audit', {
    schema: {
      tags: ['audit'],
      summary: 'The audit log, oldest first (provider admin and support)',
      querystring: z.object({
        customerId: uuid.optional(),
        subjectType: z.string().max(50).optional(),
        subjectId: z.string().max(100).optional(),
        afterSeq: z.coerce.number().int().min(0).optional(),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      }),
    },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'support');
    const entries = await listAudit(ctx.db, req.query);
    return { entries, nextAfterSeq: entries.length === req.query.limit ? entries[entries.length - 1]?.seq ?? null : null };
  });

  r.get('/audit/verify', { schema: { tags: ['audit'], summary: 'Re-hash the whole chain and report the first broken link (admin)' } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin');
    return verifyAuditChain(ctx.db);
  });
}
