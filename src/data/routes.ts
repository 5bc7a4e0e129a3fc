import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { customerServiceState } from '../contracts/contracts.js';
import { actorOf, isCustomerAdminOf, requireOperatorRole } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { activeStopFor, stopUnavailableError } from '../incidents/stops.js';
import type { AppContext } from '../http/context.js';
import { instant, principalOf, router, uuid } from '../http/route-kit.js';
import { StorageError, type BlobStore } from '../storage/index.js';
import { searchDataAccess } from './access-log.js';
import { attachmentDisposition } from './export.js';
import { deleteFile, getFile, listFiles, openFileContent, uploadFile } from './files.js';
import { COLLECTION_RE, createRecord, deleteRecord, getRecord, jsonValueProblem, listCollections, listRecords, MAX_PAGE, RECORD_ID_RE, updateRecord, type DataAccessor, type VersionCondition } from './records.js';

const collection = z.string().regex(COLLECTION_RE, { error: 'a collection name: a–z first, then up to 63 of a–z 0–9 _ -' });
const recordId = z.string().regex(RECORD_ID_RE, { error: 'a record id: up to 128 of A–Z a–z 0–9 . _ -, not starting with . _ -' });
// R3.1: what jsonb cannot hold is a 400 naming the part, not a 500 from the database.
const recordData = z.record(z.string(), z.unknown(), { error: 'must be a JSON object' }).superRefine((data, ctx) => {
  const problem = jsonValueProblem(data);
  if (problem) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
});
const limit = z.coerce.number().int().min(1).max(MAX_PAGE).default(100);

/**
 * Whether the customer's data may be used now: not after the end (R10.7), not while suspended
 * (R11.1, data kept), not during a planned or emergency stop (R7.4, 503 saying what the stop is).
 * Every path to the customer's data (data API, export) asks this.
 */
export async function assertCustomerServed(ctx: AppContext, customerId: string): Promise<void> {
  const state = await customerServiceState(ctx.db, customerId);
  if (state === 'ended' || state === 'none') {
    // R10.7: after the end nothing of the data can be viewed, operated on or obtained.
    throw new HokanError('contract_ended', bi('ご契約は終了しています。データの閲覧・操作・取得はできません。', 'The contract has ended: the data can no longer be viewed, changed or obtained.'));
  }
  if (state === 'suspended') {
    // R11.1: suspension blocks access and keeps the data.
    throw new HokanError('customer_suspended', bi('サービスの利用が停止されています。データは保持されています。詳しくはお問い合わせください。', 'Service is suspended for this customer; the data is kept. Please contact the provider.'));
  }
  // R7.4: during a planned or emergency stop the data API answers 503, saying what the stop is.
  const stop = await activeStopFor(ctx.db, ctx.clock, customerId);
  if (stop) throw stopUnavailableError(stop, ctx.clock.now());
}

/**
 * The data API serves the Software (API tokens) and the customer's own users. Provider staff do
 * not read customer data through it. The customer always comes from the credential.
 */
async function dataAccessor(ctx: AppContext, req: FastifyRequest): Promise<DataAccessor> {
  const p = principalOf(req);
  if (p.kind === 'operator') {
    throw errors.forbidden("the provider's staff do not use the data API; customer data is reached only by the customer's credentials", '事業者の担当者はデータAPIを使用できません');
  }
  await assertCustomerServed(ctx, p.customerId);
  return { customerId: p.customerId, actor: actorOf(p), sourceIp: req.ip ?? null };
}

/**
 * If-Match (RFC 9110 §13.1.1): `*` (the record as it is now, whatever its version) or a list of
 * ETags (`"v3", "v4"`; repeated headers arrive joined the same way). `"3"` and `3` are taken too.
 * So are weak tags (`W/"v3"`), though If-Match compares strongly: a proxy that compresses a
 * response weakens its ETag, and the version the tag names is still exact, so refusing it would
 * leave such a client no way to update.
 */
function parseIfMatch(header: string | undefined): VersionCondition | null {
  if (header === undefined) return null;
  if (header.trim() === '*') return 'any';
  const versions: number[] = [];
  for (const tag of header.split(',')) {
    const m = /^(?:W\/)?"?v?(\d{1,9})"?$/.exec(tag.trim());
    if (!m) throw errors.invalidField('If-Match', 'If-Match には ETag（例: "v3"）または * を指定してください。', 'must be * or the ETag of the record (e.g. "v3"), or a list of them');
    versions.push(Number(m[1]));
  }
  return versions;
}

const etag = (version: number) => `"v${version}"`;

/** A file store that cannot answer is the operators' to fix: the 503 says little, the log says which store and why. */
function logStorageOutage(req: FastifyRequest, err: unknown): void {
  if (err instanceof HokanError && err.code === 'service_unavailable' && err.cause instanceof StorageError) req.log.error({ err: err.cause }, 'file store unavailable');
}

function parseWhere(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw errors.invalidField('where', 'where はJSONオブジェクトで指定してください。', 'must be a JSON object, e.g. {"status":"active"}');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || Object.keys(parsed).length > 20) {
    throw errors.invalidField('where', 'where は20項目以内のJSONオブジェクトで指定してください。', 'must be a JSON object with at most 20 fields');
  }
  // R3.1: a filter jsonb cannot hold is refused like a record that it cannot hold.
  const problem = jsonValueProblem(parsed);
  if (problem) {
    const path = ['where', ...problem.path].join('.');
    throw errors.invalidField(path, '扱えない値です（NUL文字、対になっていないサロゲート、深すぎる入れ子、大きすぎる数は使えません）。', problem.message);
  }
  return parsed as Record<string, unknown>;
}

export function registerDataRoutes(app: FastifyInstance, ctx: AppContext, files: BlobStore): void {
  const r = router(app);

  r.get('/data/collections', { schema: { tags: ['data'], summary: 'Collections with their record counts (R3.1)' } }, async (req) => {
    const who = await dataAccessor(ctx, req);
    return { collections: await listCollections(ctx.db, ctx.clock, who) };
  });

  r.get('/data/collections/:collection/records', {
    schema: {
      tags: ['data'],
      summary: 'List records by id, filtered by JSON containment (`where`), paged by cursor',
      params: z.object({ collection }),
      querystring: z.object({ limit, cursor: z.string().max(400).optional(), where: z.string().max(2000).optional() }),
    },
  }, async (req) => {
    const who = await dataAccessor(ctx, req);
    const where = parseWhere(req.query.where);
    return listRecords(ctx.db, ctx.clock, who, req.params.collection, { limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}), ...(where ? { where } : {}) });
  });

  r.post('/data/collections/:collection/records', {
    schema: { tags: ['data'], summary: 'Create a record; id optional (a UUID is chosen)', params: z.object({ collection }), body: z.object({ id: recordId.optional(), data: recordData }) },
  }, async (req, reply) => {
    const who = await dataAccessor(ctx, req);
    const record = await createRecord(ctx.db, ctx.clock, who, req.params.collection, { id: req.body.id ?? crypto.randomUUID(), data: req.body.data });
    return reply.code(201).header('etag', etag(record.version)).send({ record });
  });

  const recordParams = z.object({ collection, id: recordId });

  r.get('/data/collections/:collection/records/:id', { schema: { tags: ['data'], summary: 'Read a record; its ETag is its version', params: recordParams } }, async (req, reply) => {
    const who = await dataAccessor(ctx, req);
    const record = await getRecord(ctx.db, ctx.clock, who, req.params.collection, req.params.id);
    return reply.header('etag', etag(record.version)).send({ record });
  });

  r.put('/data/collections/:collection/records/:id', {
    schema: { tags: ['data'], summary: 'Replace a record; If-Match with the ETag read is required (optimistic concurrency)', params: recordParams, body: z.object({ data: recordData }) },
  }, async (req, reply) => {
    const who = await dataAccessor(ctx, req);
    const expected = parseIfMatch(req.headers['if-match']);
    if (expected === null) {
      throw new HokanError('precondition_required', bi('更新には If-Match ヘッダー（読み取った ETag）が必要です。', 'Updating needs an If-Match header with the ETag you read.'), [{ path: 'If-Match', message: 'required' }]);
    }
    const record = await updateRecord(ctx.db, ctx.clock, who, req.params.collection, req.params.id, expected, req.body.data);
    return reply.header('etag', etag(record.version)).send({ record });
  });

  r.delete('/data/collections/:collection/records/:id', { schema: { tags: ['data'], summary: 'Delete a record (If-Match optional)', params: recordParams } }, async (req) => {
    const who = await dataAccessor(ctx, req);
    await deleteRecord(ctx.db, ctx.clock, who, req.params.collection, req.params.id, parseIfMatch(req.headers['if-match']));
    return { deleted: true };
  });

  r.get('/data/files', { schema: { tags: ['data'], summary: 'List files', querystring: z.object({ limit, after: uuid.optional() }) } }, async (req) => {
    const who = await dataAccessor(ctx, req);
    return listFiles(ctx.db, ctx.clock, who, { limit: req.query.limit, ...(req.query.after ? { after: req.query.after } : {}) });
  });

  const fileParams = z.object({ fileId: uuid });
  r.get('/data/files/:fileId', { schema: { tags: ['data'], summary: "A file's metadata (name, size, SHA-256)", params: fileParams } }, async (req) => {
    const who = await dataAccessor(ctx, req);
    return { file: await getFile(ctx.db, ctx.clock, who, req.params.fileId) };
  });

  // No automatic HEAD: it would run this handler, read the whole file and log a download. The
  // metadata route answers what a HEAD would ask.
  r.get('/data/files/:fileId/content', { exposeHeadRoute: false, schema: { tags: ['data'], summary: 'Download a file (streamed)', params: fileParams } }, async (req, reply) => {
    const who = await dataAccessor(ctx, req);
    let opened: Awaited<ReturnType<typeof openFileContent>>;
    try {
      opened = await openFileContent(ctx.db, ctx.clock, files, who, req.params.fileId);
    } catch (err) {
      logStorageOutage(req, err);
      throw err;
    }
    const { file, stream } = opened;
    return reply
      .header('content-type', file.contentType)
      .header('content-length', String(file.size))
      .header('x-content-sha256', file.sha256)
      .header('content-disposition', attachmentDisposition(file.name))
      .send(stream);
  });

  r.delete('/data/files/:fileId', { schema: { tags: ['data'], summary: 'Delete a file', params: fileParams } }, async (req) => {
    const who = await dataAccessor(ctx, req);
    await deleteFile(ctx.db, ctx.clock, files, who, req.params.fileId);
    return { deleted: true };
  });

  // Uploads stream straight to the store: this scope takes any body as a raw stream.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    // Any answer sent before the body was read to its end (too large, not allowed, store down,
    // invalid name) closes the connection. Nothing reads the rest of the body: a kept-alive socket
    // would wait for it until the request timeout, and the client's close then would be counted
    // as a protocol violation.
    scope.addHook('onSend', async (req, reply, payload) => {
      if (!req.raw.complete) reply.header('connection', 'close');
      return payload;
    });
    router(scope).post('/data/files', {
      schema: {
        tags: ['data'],
        summary: 'Upload a file as the raw request body (streamed; size-limited; SHA-256 computed, and checked against x-content-sha256 when sent)',
        querystring: z.object({ name: z.string().trim().min(1).max(255).refine((n) => !/[\u0000-\u001f/\\]/.test(n), { error: 'must not contain control characters or slashes' }) }),
        headers: z.object({ 'x-content-sha256': z.string().regex(/^[0-9a-fA-F]{64}$/, { error: 'must be 64 hex characters' }).optional() }).passthrough(),
      },
    }, async (req, reply) => {
      const who = await dataAccessor(ctx, req);
      const declared = Number(req.headers['content-length'] ?? '0');
      if (declared > ctx.config.maxFileBytes) {
        throw new HokanError('payload_too_large', bi(`ファイルが大きすぎます（上限 ${ctx.config.maxFileBytes} バイト）。`, `The file is larger than the limit of ${ctx.config.maxFileBytes} bytes.`));
      }
      const sha = req.headers['x-content-sha256'];
      try {
        const file = await uploadFile(ctx.db, ctx.clock, files, who, {
          name: req.query.name,
          contentType: (req.headers['content-type'] ?? 'application/octet-stream').slice(0, 200),
          body: req.raw,
          maxBytes: ctx.config.maxFileBytes,
          ...(typeof sha === 'string' ? { expectedSha256: sha } : {}),
        });
        return reply.code(201).send({ file });
      } catch (err) {
        logStorageOutage(req, err);
        throw err;
      }
    });
  });

  r.get('/data-access-log', {
    schema: {
      tags: ['data'],
      summary: 'Who read or changed which record or file (operators; customer admins for their own data)',
      querystring: z.object({
        customerId: uuid.optional(),
        from: instant.optional(),
        to: instant.optional(),
        operation: z.enum(['read', 'list', 'create', 'update', 'delete', 'upload', 'download', 'export', 'restore']).optional(),
        collection: collection.optional(),
        targetId: z.string().max(128).optional(),
        afterSeq: z.coerce.number().int().min(0).optional(),
        limit,
      }),
    },
  }, async (req) => {
    const p = principalOf(req);
    const q = req.query;
    let customerId = q.customerId;
    if (p.kind === 'operator') {
      requireOperatorRole(p, 'admin', 'support');
    } else {
      if (!isCustomerAdminOf(p, p.customerId)) throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
      if (customerId !== undefined && customerId !== p.customerId) throw errors.notFound('お客様 / customer', customerId);
      customerId = p.customerId;
    }
    const from = q.from ? new Date(q.from) : undefined;
    const to = q.to ? new Date(q.to) : undefined;
    if (from && to && from.getTime() >= to.getTime()) {
      throw errors.invalidField('to', '期間の終わりは始まりより後にしてください。', 'must be after from');
    }
    const entries = await searchDataAccess(ctx.db, {
      ...(customerId ? { customerId } : {}),
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
      ...(q.operation ? { operation: q.operation } : {}),
      ...(q.collection ? { collection: q.collection } : {}),
      ...(q.targetId ? { targetId: q.targetId } : {}),
      ...(q.afterSeq !== undefined ? { afterSeq: q.afterSeq } : {}),
      limit: q.limit,
    });
    return { entries, nextAfterSeq: entries.length === q.limit ? (entries[entries.length - 1]?.seq ?? null) : null };
  });
}
