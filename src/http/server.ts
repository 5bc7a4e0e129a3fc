import fastifyCookie from '@fastify/cookie';
import secureJson from 'secure-json-parse';
import fastifySwagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { installGatewayAfterAuth, installGatewayEntry, installIds, installSlowRequestRecording, recordClientError, recordParserRefusal, recordProtocolViolation, registerGatewayRoutes } from '../gateway/hooks.js';
import { jsonNestingExceeds } from '../gateway/ids/index.js';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { resolveApiToken } from '../accounts/api-tokens.js';
import { registerAccountRoutes } from '../accounts/routes.js';
import { resolveSession } from '../accounts/sessions.js';
import { registerContractRoutes } from '../contracts/routes.js';
import { registerDataRoutes } from '../data/routes.js';
import { registerStopRoutes } from '../incidents/routes.js';
import { registerIncidentRoutes } from '../incidents/incident-routes.js';
import { registerBreachRoutes } from '../incidents/breach-routes.js';
import { registerReportRoutes } from '../incidents/report-routes.js';
import { hardwareResourceTrends } from '../monitoring/resource-trends.js';
import { registerTermsRoutes } from '../terms/routes.js';
import { registerMonitorRoutes } from '../monitoring/monitor-routes.js';
import { registerExportRoutes } from '../data/export-routes.js';
import { registerBackupRoutes } from '../backup/routes.js';
import { registerMigrationRoutes } from '../backup/migration-routes.js';
import { errors, HokanError, type ErrorCode } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { registerAuditRoutes } from './audit-routes.js';
import { isHostTokenShape } from '../monitoring/hardware-hosts.js';
import { registerHardwareRoutes } from '../monitoring/hardware-routes.js';
import { registerRoundRoutes } from '../monitoring/round-routes.js';
import { registerNoticeRoutes } from '../notify/routes.js';
import { registerStatusRoutes } from '../notify/status-routes.js';
import { registerHealthRoutes } from './health.js';
import { isConnectionError } from '../core/db/connection-health.js';
import { installMetrics } from '../observability/metrics.js';
import type { AppContext } from './context.js';

import { SESSION_COOKIE } from './route-kit.js';
import { isPublicCachedPath } from '../web/public-paths.js';
import { registerWeb } from '../web/routes.js';
import { fromDatabaseError } from './error-handler.js';

const pathOnly = (url: string) => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};
const BODY_LIMIT = 1024 * 1024;
/**
 * Deepest JSON the parser builds. Far above what any record needs (the IDS's json_depth rule,
 * DOS-001, flags 32 levels) and far below what overflows the stack of recursive walks over the
 * parsed value, so that the IDS still judges unusual nesting and nothing deeper ever exists.
 */
const MAX_JSON_DEPTH = 128;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const MALFORMED_BODY = Buffer.from(JSON.stringify(new HokanError('validation_failed', bi('不正なHTTPリクエストです。', 'Malformed HTTP request.')).toJSON()));

/** Fastify's own 4xx errors, in hokan's error shape. */
function fromFastifyError(err: FastifyError): HokanError | null {
  const status = err.statusCode ?? 500;
  if (status >= 500) return null;
  const map: Record<string, [ErrorCode, string, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', '送信されたデータが大きすぎます。', 'The request body is too large.'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'このContent-Typeは受け付けません。application/json で送ってください。', 'Unsupported Content-Type; send application/json.'],
    FST_ERR_CTP_INVALID_JSON_BODY: ['validation_failed', 'JSONとして読み取れません。', 'The body is not valid JSON.'],
    FST_ERR_CTP_EMPTY_JSON_BODY: ['validation_failed', '本文が空です。', 'The JSON body is empty.'],
  };
  const hit = err.code ? map[err.code] : undefined;
  if (hit) return new HokanError(hit[0], bi(hit[1], hit[2]));
  if (status === 413) return new HokanError('payload_too_large', bi('送信されたデータが大きすぎます。', 'The request body is too large.'));
  if (status === 415) return new HokanError('unsupported_media_type', bi('このContent-Typeは受け付けません。', 'Unsupported Content-Type.'));
  return new HokanError('validation_failed', bi(`リクエストを処理できません: ${err.message}`, `The request cannot be processed: ${err.message}`));
}

/** Sets req.principal from a Bearer API token or the session cookie; a bad Bearer token is 401. */
export async function authenticateRequest(ctx: AppContext, req: FastifyRequest): Promise<void> {
  if (req.principal) return;
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    // R12.3①: a hardware host's push token is checked by the push route itself (no principal here).
    if (m && isHostTokenShape(m[1]!)) return;
    const principal = m ? await resolveApiToken(ctx.db, ctx.clock, m[1]!) : null;
    if (!principal) throw errors.unauthenticated();
    req.principal = principal;
    return;
  }
  const token = req.cookies[SESSION_COOKIE];
  if (token) {
    req.principal = await resolveSession(ctx.db, ctx.clock, token);
    req.viaSessionCookie = req.principal !== null;
  }
}

export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    // R4.1: the client address comes from the socket, or from X-Forwarded-For only via configured proxies.
    trustProxy: ctx.gateway && ctx.gateway.settings.trustedProxies.length > 0 ? ctx.gateway.settings.trustedProxies : false,
    // Slow bodies and slow headers (slowloris) are cut off instead of holding a connection forever.
    requestTimeout: ctx.gateway?.settings.requestTimeoutMs ?? 120_000,
    connectionTimeout: ctx.gateway?.settings.requestTimeoutMs ?? 120_000,
    // Malformed HTTP that never reaches a route: answered 400 and recorded as a protocol violation
    // (R12.2); a client that merely went away is neither answered nor recorded.
    clientErrorHandler: (err, socket) => {
      const kind = recordClientError(ctx.gateway, err, socket.remoteAddress ?? null);
      if (kind === 'went_away' || !socket.writable) return socket.destroy();
      socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${MALFORMED_BODY.length}\r\n\r\n${MALFORMED_BODY.toString('latin1')}`, 'latin1');
    },
    logController: new LogController({ disableRequestLogging: ctx.config.logLevel !== 'debug' && ctx.config.logLevel !== 'trace' }),
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The API speaks JSON only; refusing text/plain also keeps simple cross-site form posts out.
  app.removeContentTypeParser('text/plain');
  // JSON must be valid UTF-8: a lenient decoder would store U+FFFD in place of the bytes sent.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const refuse = (code: string, err: HokanError) => {
      if (ctx.gateway) recordProtocolViolation(ctx.gateway, req, code);
      done(err, undefined);
    };
    const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(String(req.headers['content-type']))?.[1]?.toLowerCase();
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      return refuse('JSON-CHARSET', new HokanError('unsupported_media_type', bi('JSONはUTF-8で送ってください。', 'Send JSON encoded as UTF-8.')));
    }
    const buf = body as Buffer;
    if (buf.length === 0) return refuse('JSON-EMPTY', new HokanError('validation_failed', bi('本文が空です。', 'The JSON body is empty.')));
    let text: string;
    try {
      text = strictUtf8.decode(buf);
    } catch {
      return refuse('JSON-UTF8', new HokanError('validation_failed', bi('本文が正しいUTF-8ではありません。', 'The body is not valid UTF-8.'), [{ path: 'body', message: 'invalid UTF-8' }]));
    }
    if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
      // R12.2: refused before parsing, so the value that would exhaust recursion is never built.
      if (ctx.gateway) recordParserRefusal(ctx.gateway, req, 'dos', 'JSON-DEPTH', { limit: MAX_JSON_DEPTH });
      return done(
        new HokanError('validation_failed', bi(`JSONの入れ子が深すぎます（${MAX_JSON_DEPTH}段まで）。`, `The JSON is nested too deeply (at most ${MAX_JSON_DEPTH} levels).`), [{ path: 'body', message: `nested deeper than ${MAX_JSON_DEPTH} levels` }]),
        undefined,
      );
    }
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch {
      refuse('JSON-PARSE', new HokanError('validation_failed', bi('JSONとして読み取れません。', 'The body is not valid JSON (or carries __proto__/constructor keys).')));
    }
  });

  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'hokan API',
        version: '1',
        description: 'hokan (保管): customers, contracts and their lifecycle under the data-center terms of use. Errors: {error:{code,message:{ja,en},details}}.',
      },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
          apiToken: { type: 'http', scheme: 'bearer', description: 'hkn_… customer API token' },
          hostToken: { type: 'http', scheme: 'bearer', description: "hkh_… a hardware host's push token (R12.3①)" },
        },
      },
      security: [{ session: [] }, { apiToken: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.decorateRequest('principal', null);
  app.decorateRequest('viaSessionCookie', false);
  // Counted for the drain at shutdown (readiness reports it too).
  const counted = new WeakSet<object>();
  app.addHook('onRequest', async (req) => {
    counted.add(req);
    ctx.lifecycle.requestStarted();
  });
  const ended = async (req: FastifyRequest) => {
    if (counted.delete(req)) ctx.lifecycle.requestEnded();
  };
  app.addHook('onResponse', ended);
  app.addHook('onRequestAbort', ended);
  // The gateway's first checks (security headers, Japan-only) run before authentication.
  if (ctx.gateway) installGatewayEntry(app, ctx, ctx.gateway);
  app.addHook('onRequest', async (req) => {
    // The cached public pages never look at who is asking: no session lookup per reader.
    if (isPublicCachedPath(pathOnly(req.url))) return;
    await authenticateRequest(ctx, req);
  });
  if (ctx.gateway) {
    installGatewayAfterAuth(app, ctx, ctx.gateway);
    installIds(app, ctx.gateway);
    installSlowRequestRecording(app, ctx.gateway);
  }
  // A browser sends cookies cross-site, but not a JSON content type or a foreign Origin without
  // CORS consent: requiring both for cookie-authenticated writes closes the CSRF hole.
  app.addHook('preHandler', async (req) => {
    if (!req.viaSessionCookie || ['GET', 'HEAD', 'OPTIONS'].includes(req.method)) return;
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host: string | undefined;
      try {
        host = new URL(origin).host;
      } catch {
        host = undefined;
      }
      if (host !== req.headers.host) throw errors.forbidden('cross-site request refused', '別のサイトからのリクエストは受け付けません');
    } else if (origin === 'null') {
      throw errors.forbidden('cross-site request refused', '別のサイトからのリクエストは受け付けません');
    }
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const details = err.validation.map((v) => ({
        path: [String(err.validationContext ?? ''), ...String(v.instancePath ?? '').split('/').filter(Boolean)].filter(Boolean).join('.'),
        message: v.message ?? 'invalid',
      }));
      return reply.code(400).send(errors.validation(details).toJSON());
    }
    if (ctx.gateway && typeof err.code === 'string' && err.code.startsWith('FST_ERR_CTP_')) recordProtocolViolation(ctx.gateway, req, err.code);
    const known = err instanceof HokanError ? err : (fromFastifyError(err) ?? fromDatabaseError(err));
    if (known) {
      if (known.retryAfterSeconds !== undefined) reply.header('retry-after', String(known.retryAfterSeconds));
      return reply.code(known.httpStatus).send(known.toJSON());
    }
    if (isConnectionError(err)) {
      // The database is unreachable: a temporary condition, logged once per outage, not a bug.
      ctx.databaseHealth?.failed(err, 'request');
      reply.header('retry-after', '5');
      return reply.code(503).send(new HokanError('service_unavailable', bi('一時的に処理できません。しばらくしてから再度お試しください。', 'Temporarily unavailable; please retry shortly.')).toJSON());
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(new HokanError('internal', bi('内部エラーが発生しました。', 'An internal error occurred.')).toJSON());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = errors.notFound('パス / path', `${req.method} ${req.url.split('?')[0]}`);
    return reply.code(404).send(e.toJSON());
  });

  installMetrics(app, ctx);
  registerHealthRoutes(app, ctx);

  await app.register(async (api) => {
    registerAccountRoutes(api, ctx);
    registerContractRoutes(api, ctx);
    registerAuditRoutes(api, ctx);
    registerDataRoutes(api, ctx, ctx.files);
    registerExportRoutes(api, ctx);
    registerBackupRoutes(api, ctx);
    registerMigrationRoutes(api, ctx);
    registerStopRoutes(api, ctx);
    registerIncidentRoutes(api, ctx);
    registerBreachRoutes(api, ctx);
    registerReportRoutes(api, ctx, { resources: hardwareResourceTrends(ctx.db) });
    registerTermsRoutes(api, ctx);
    registerHardwareRoutes(api, ctx);
    registerRoundRoutes(api, ctx);
    registerMonitorRoutes(api, ctx);
    registerNoticeRoutes(api, ctx);
    if (ctx.gateway) registerGatewayRoutes(api, ctx, ctx.gateway);
    api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  }, { prefix: '/api/v1' });
  // Public pages of the notify domain (feed, subscription), with their own form parser.
  await app.register(async (pub) => registerStatusRoutes(pub, ctx));

  // The three web faces: the public status page, the customer portal and the operator console.
  await registerWeb(app, ctx);

  return app;
}
