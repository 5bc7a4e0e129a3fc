import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { canAccessCustomer, requireOperatorRole } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { principalOf, router, uuid } from '../http/route-kit.js';
import { renderReportHtml, renderReportPdf } from './report-render.js';
import { customerMonthStatistics, providerMonthStatistics, type ResourceTrendProvider } from './statistics.js';

const monthParam = z
  .string()
  .regex(/^\d{4}-\d{2}(\.(json|html|pdf))?$/, { error: 'must be a month YYYY-MM, optionally followed by .json, .html or .pdf' })
  .describe('YYYY-MM (Japan calendar month), with .html or .pdf for those renderings');

function splitMonth(value: string): { month: string; format: 'json' | 'html' | 'pdf' } {
  const [month, format] = value.split('.') as [string, ('json' | 'html' | 'pdf') | undefined];
  return { month, format: format ?? 'json' };
}

/** R12.4: monthly reports; a customer reads only its own, operators every customer's and the provider summary. */
export function registerReportRoutes(app: FastifyInstance, ctx: AppContext, opts: { resources?: ResourceTrendProvider } = {}): void {
  const r = router(app);

  r.get('/customers/:customerId/reports/:month', {
    schema: { tags: ['incidents'], summary: '月次稼働報告書: availability, incidents, stops and liability for one customer and month (R12.4) as JSON, .html or .pdf', params: z.object({ customerId: uuid, month: monthParam }) },
  }, async (req, reply) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId)) throw errors.notFound('お客様 / customer', req.params.customerId);
    const { month, format } = splitMonth(req.params.month);
    const stats = await customerMonthStatistics(ctx.db, ctx.clock, req.params.customerId, month, opts.resources ? { resources: opts.resources } : {});
    if (format === 'json') return { report: stats };
    if (format === 'html') return reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").send(renderReportHtml(stats));
    return reply
      .type('application/pdf')
      .header('content-disposition', `attachment; filename="report-${stats.customer.code.replace(/[^A-Za-z0-9_-]/g, '_')}-${month}.pdf"`)
      .send(await renderReportPdf(stats));
  });

  r.get('/reports/:month', {
    schema: { tags: ['incidents'], summary: 'Provider-wide monthly summary for operators (R12.4)', params: z.object({ month: z.string().regex(/^\d{4}-\d{2}$/, { error: 'must be a month YYYY-MM' }) }) },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support', 'billing');
    return { report: await providerMonthStatistics(ctx.db, ctx.clock, req.params.month) };
  });
}
