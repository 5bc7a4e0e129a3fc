import type { FastifyInstance, FastifyRequest } from 'fastify';
import { assertCustomerServed } from './routes.js';
import { actorOf } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { principalOf, router } from '../http/route-kit.js';
import { attachmentDisposition, exportCustomerData } from './export.js';
import type { DataAccessor } from './records.js';

/**
 * Only the customer's admin takes the whole of its data. Provider staff never do (R10.5 is the
 * customer's right, not a back door); API tokens and members get 403 because an export is every
 * record and file at once, more than either needs for its daily work.
 *
 * The contract-state answers mirror `dataAccessor` in ./routes.ts (not exported): suspended is
 * 403 `customer_suspended` (R11.1), ended is 410 `contract_ended` (R10.7).
 */
async function exportAccessor(ctx: AppContext, req: FastifyRequest): Promise<DataAccessor> {
  const p = principalOf(req);
  if (p.kind === 'operator') {
    throw errors.forbidden("the provider's staff do not export customer data; the customer's admin does", '事業者の担当者はお客様のデータをエクスポートできません。お客様の管理者が行います');
  }
  if (p.kind !== 'customer_user' || p.role !== 'customer_admin') {
    throw errors.forbidden("exporting all data requires the customer's admin (signed in, not an API token)", 'データの一括エクスポートにはお客様の管理者としてのサインインが必要です（APIトークンは使えません）');
  }
  await assertCustomerServed(ctx, p.customerId);
  return { customerId: p.customerId, actor: actorOf(p), sourceIp: req.ip ?? null };
}

export function registerExportRoutes(app: FastifyInstance, ctx: AppContext): void {
  // No automatic HEAD: it would run this handler, build a whole archive only to drop it, and log an export.
  router(app).get('/data/export', {
    exposeHeadRoute: false,
    schema: {
      tags: ['data'],
      summary: "Download all of the customer's records and files as one ZIP (R10.5; customer admin only; streamed)",
      description:
        'application/zip, streamed without Content-Length. records/<collection>.ndjson, files/<fileId>/<name>, README.txt, and manifest.json last ' +
        '(counts, sizes, SHA-256). A file whose stored bytes do not match its SHA-256 aborts the download: an archive without manifest.json is incomplete.',
    },
  }, async (req, reply) => {
    const who = await exportAccessor(ctx, req);
    const { filename, stream } = await exportCustomerData({ db: ctx.db, clock: ctx.clock, files: ctx.files }, who);
    stream.once('error', (err) => req.log.error({ err, customerId: who.customerId }, 'data export aborted'));
    return reply
      .header('content-type', 'application/zip')
      .header('content-disposition', attachmentDisposition(filename))
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .send(stream);
  });
}
