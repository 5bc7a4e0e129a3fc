import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { actorOf, canAccessCustomer, isCustomerAdminOf, requireOperatorRole } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { instant, note, principalOf, router, uuid } from '../http/route-kit.js';
import { authenticateRequest } from '../http/server.js';
import { findCustomer } from '../contracts/customers.js';
import { appendAudit } from '../core/audit/audit-log.js';
import { gatewayStatistics } from './events.js';
import { listMisuseFlags } from './records.js';
import { isPublicCachedPath } from '../web/public-paths.js';
import type { Gateway } from './gateway.js';
import { decideOrigin, refusalError, type OriginDecision } from './geo/index.js';
import { STANDARD_CLASS } from './priority/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    origin: OriginDecision | null;
    releaseAdmission: (() => void) | null;
    /** The body's bytes as received, for the media types whose parsers turn it into an object (see installIds). */
    rawBody: Buffer | null;
  }
}

/** Retry-After for a source at its share of the slots: its own requests in flight end first. */
const PER_SOURCE_RETRY_AFTER_S = 1;

/** Paths that stay answerable from anywhere and under any load: liveness and readiness for the provider's monitors and load balancer. */
const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/** Sent with every response; precomputed so the hook costs one call. */
const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; style-src 'unsafe-inline'",
};

const pathOf = (url: string) => {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
};

/**
 * Runs before authentication: security headers (R12.1) and Japan-only (R4.1, R15.1①). A refused
 * request is recorded with the customer and credential it carried, so its principal is resolved
 * only then — domestic traffic pays nothing for that.
 */
export function installGatewayEntry(app: FastifyInstance, ctx: AppContext, gateway: Gateway): void {
  const headers = { ...SECURITY_HEADERS, ...(ctx.config.cookieSecure ? { 'strict-transport-security': 'max-age=31536000; includeSubDomains' } : {}) };
  app.decorateRequest('origin', null);
  app.decorateRequest('releaseAdmission', null);
  let proxyUndeclaredLogged = false;
  app.addHook('onRequest', async (req, reply) => {
    reply.headers(headers);
    const path = pathOf(req.url);
    // The cached status page and the stylesheet: public, cheap, reachable from anywhere (decision 0022).
    if (EXEMPT.has(path) || isPublicCachedPath(path)) return;
    const decision = decideOrigin(req.ip, gateway.geo, gateway.origin);
    req.origin = decision;
    if (!proxyUndeclaredLogged && decision.reason === 'private_network' && gateway.settings.trustedProxies.length === 0 && (req.headers['x-forwarded-for'] !== undefined || req.headers['forwarded'] !== undefined)) {
      // A proxy the configuration does not name: every request then has the proxy's private
      // address, which Japan-only lets in, and the per-source limits count as one client. The
      // headers are not trusted (anyone can send them), so the operator is told, once.
      proxyUndeclaredLogged = true;
      ctx.logger.error(
        { peer: req.ip },
        'requests arrive through a proxy HOKAN_TRUSTED_PROXIES does not name: Japan-only (R4.1), the rate limit and the per-source share see the proxy, not the client; set HOKAN_TRUSTED_PROXIES to the proxy\'s address',
      );
    }
    if (decision.allowed) {
      // R13.1: admission before any costly work (authentication is a database lookup), so that
      // under overload the waiting happens here, where priority classes are served first.
      // Priority classes may wait briefly for a slot (and are served first); standard traffic is
      // refused at once, so it never holds connections open while shedding.
      const ask = { method: req.method, path };
      // One source's share first: the slot below is held while the body arrives, however slowly.
      const sourceRelease = gateway.sourceConcurrency.take(req.ip);
      if (!sourceRelease) {
        gateway.events.record({ kind: 'admission_rejected', class: 'per_source', action: 'reject', sourceIp: req.ip, method: req.method, path });
        reply.header('retry-after', String(PER_SOURCE_RETRY_AFTER_S));
        throw overloaded(PER_SOURCE_RETRY_AFTER_S);
      }
      const admission = await (gateway.admission.classify(ask) === STANDARD_CLASS ? Promise.resolve(gateway.admission.tryAdmit(ask)) : gateway.admission.admit(ask)).catch((err: unknown) => {
        sourceRelease();
        throw err;
      });
      if (admission.admitted && req.raw.destroyed) {
        admission.release();
        sourceRelease();
        return;
      }
      if (!admission.admitted) {
        sourceRelease();
        gateway.events.record({ kind: 'admission_rejected', class: admission.class, action: 'reject', sourceIp: req.ip, method: req.method, path });
        reply.header('retry-after', String(admission.retryAfterSeconds));
        throw overloaded(admission.retryAfterSeconds);
      }
      req.releaseAdmission = () => {
        admission.release();
        sourceRelease();
      };
      return;
    }
    await authenticateRequest(ctx, req).catch(() => undefined);
    const p = req.principal;
    gateway.events.record({
      kind: 'abroad_refused',
      class: decision.reason,
      action: 'block',
      sourceIp: req.ip,
      country: decision.country,
      customerId: p && p.kind !== 'operator' ? p.customerId : null,
      credentialId: p ? (p.kind === 'api_token' ? p.tokenId : p.userId) : null,
      method: req.method,
      path,
    });
    // R15.1①: use from abroad by a credential is itself a misuse signal.
    if (p && p.kind !== 'operator') {
      const findings = gateway.misuse.recordCredentialUse(p.kind === 'api_token' ? p.tokenId : p.userId, p.customerId, req.ip, decision.country);
      if (findings.length) await gateway.applyMisuseFindings(findings);
    }
    throw refusalError(decision);
  });
}

function overloaded(retryAfterSeconds: number): HokanError {
  return new HokanError(
    'service_unavailable',
    bi('ただいま混み合っています。しばらくしてから再度お試しください（利用規約第13条）。', 'The service is congested; please retry shortly (Terms, Art. 13).'),
    [{ path: 'retryAfterSeconds', message: String(retryAfterSeconds) }],
  );
}

/** Runs after authentication: misuse signals from credential use (R11.1③); releases admission slots. */
export function installGatewayAfterAuth(app: FastifyInstance, _ctx: AppContext, gateway: Gateway): void {
  app.addHook('onRequest', async (req) => {
    const path = pathOf(req.url);
    if (EXEMPT.has(path) || isPublicCachedPath(path)) return;
    const p = req.principal;
    if (p && p.kind !== 'operator') {
      const findings = gateway.misuse.recordCredentialUse(p.kind === 'api_token' ? p.tokenId : p.userId, p.customerId, req.ip, misuseCountry(req.origin, gateway.misuse.policy.homeCountry));
      if (findings.length) await gateway.applyMisuseFindings(findings);
    }
  });
  const release = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.releaseAdmission) return;
    req.releaseAdmission();
    req.releaseAdmission = null;
    gateway.admission.observeLatency(reply.elapsedTime);
  };
  app.addHook('onResponse', release);
  app.addHook('onRequestAbort', async (req) => {
    req.releaseAdmission?.();
    req.releaseAdmission = null;
  });
}

/**
 * The country misuse detection (R15.1①) sees for an admitted request. HOKAN_GEO_ALLOW_CIDRS lists
 * networks the provider knows to be in Japan although the geo database places them abroad: their
 * database country is the very mistake the exception corrects, so counting it would turn the
 * provider's own fix into abroad_use and impossible_travel findings against the customer.
 */
function misuseCountry(origin: OriginDecision | null, homeCountry: string): string | null {
  if (origin === null) return null;
  return origin.reason === 'allowlisted' ? homeCountry : origin.country;
}

function idsBlocked(cls: string): HokanError {
  return new HokanError(
    'forbidden',
    bi('攻撃の疑いがある通信のため遮断しました（利用規約第12条）。誤りと思われる場合はサービス提供者にお問い合わせください。', 'Blocked as a suspected attack (Terms, Art. 12). If you think this is a mistake, please contact the provider.'),
    [{ path: 'request', message: `ids:${cls}` }],
  );
}

/**
 * A browser's form post names this very site in Origin and Referer; on a server reached at
 * 127.0.0.1 (development, tests) that reads like SSRF to the loopback address (ENV-005). When
 * their host is the request's own Host they point at us, not at a target, and are left out.
 */
function withoutSameOrigin(headers: FastifyRequest['headers']): FastifyRequest['headers'] {
  const host = headers.host;
  if (!host || (headers.origin === undefined && headers.referer === undefined)) return headers;
  const sameHost = (v: string | undefined) => {
    if (v === undefined) return false;
    try {
      return new URL(v).host === host;
    } catch {
      return false;
    }
  };
  if (!sameHost(headers.origin) && !sameHost(headers.referer)) return headers;
  const out = { ...headers };
  if (sameHost(out.origin)) delete out.origin;
  if (sameHost(out.referer)) delete out.referer;
  return out;
}

/** Media types hokan's parsers turn into objects (src/http/server.ts, the web and status-page forms). */
const PARSED_MEDIA_TYPES = new Set(['application/json', 'application/x-www-form-urlencoded']);

const mediaTypeOf = (contentType: string | undefined): string => (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();

/**
 * What the IDS reads as the body: the bytes as received, or a body a parser kept as text or bytes.
 * Never a re-serialisation of a parsed object: that would read a form as JSON (its fields, and the
 * masking of secret ones, lost) and overflow the stack on deep nesting. Streams (file uploads) are
 * the handler's to read and are not inspected.
 */
function inspectableBody(req: FastifyRequest): string | Buffer | undefined {
  if (req.rawBody !== null) return req.rawBody;
  const b = req.body;
  return typeof b === 'string' || Buffer.isBuffer(b) ? b : undefined;
}

/**
 * R12.2: the IDS sees method, path, query, headers and the body as received (up to its limit)
 * after parsing and before validation, so malformed input is inspected too. Each finding is
 * recorded with its rule, class, source, customer and a redacted sample; classes in block mode
 * stop the request. Per-source request rates above the limit are recorded as DoS attempts and
 * refused.
 */
export function installIds(app: FastifyInstance, gateway: Gateway): void {
  app.decorateRequest('rawBody', null);
  // The parsers keep only what they made of the body; the bytes are copied on their way to the
  // parser (bounded by the parser's own body limit, past which it stops reading).
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (!PARSED_MEDIA_TYPES.has(mediaTypeOf(req.headers['content-type']))) return payload;
    const path = pathOf(req.url);
    if (EXEMPT.has(path) || isPublicCachedPath(path)) return payload;
    const chunks: Buffer[] = [];
    const copy = new Transform({
      transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
        chunks.push(chunk);
        done(null, chunk);
      },
      flush(done: TransformCallback) {
        req.rawBody = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        done();
      },
    });
    // pipeline, not pipe: a client that goes away mid-body must fail the parser's stream too.
    return pipeline(payload, copy, () => undefined);
  });
  app.addHook('preValidation', async (req) => {
    const path = pathOf(req.url);
    if (EXEMPT.has(path) || isPublicCachedPath(path)) return;
    const p = req.principal;
    const who = { sourceIp: req.ip, customerId: p && p.kind !== 'operator' ? p.customerId : null, credentialId: p ? (p.kind === 'api_token' ? p.tokenId : p.userId) : null, method: req.method, path };
    // The provider's own networks (and a reverse proxy not yet declared trusted) are not rate-limited:
    // one address would stand for everyone behind it.
    const rate = req.origin?.reason === 'private_network' ? null : gateway.rates.hit(req.ip);
    if (rate?.over) {
      if (rate.firstOver) gateway.events.record({ kind: 'ids', class: 'dos', ruleId: 'RATE-001', action: 'block', ...who, details: { limitPerSecond: gateway.rates.limitPerSecond } });
      throw idsBlocked('dos');
    }
    const q = req.url.indexOf('?');
    const body = inspectableBody(req);
    const findings = gateway.ids.inspect({ method: req.method, path, query: q < 0 ? '' : req.url.slice(q + 1), headers: withoutSameOrigin(req.headers), ...(body !== undefined ? { body } : {}), ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}) });
    if (findings.length === 0) return;
    // Operators configure monitors of the provider's own internal services (R12.3②): a loopback or
    // internal URL in that body is the point, not an SSRF attempt. Still recorded, never blocked.
    const permitted = isMonitorConfiguration(req) ? findings.filter((f) => f.ruleId === 'ENV-005' && f.target === 'body') : [];
    for (const f of permitted) gateway.events.record({ kind: 'ids', class: f.class, ruleId: f.ruleId, action: 'allowed_operator_monitor', ...who, sample: f.sample, details: { target: f.target, severity: f.severity } });
    if (permitted.length === findings.length) return;
    if (permitted.length > 0) findings.splice(0, findings.length, ...findings.filter((f) => !permitted.includes(f)));
    const decision = gateway.ids.decide(findings);
    for (const f of findings) gateway.events.record({ kind: 'ids', class: f.class, ruleId: f.ruleId, action: decision.action, ...who, sample: f.sample, details: { target: f.target, severity: f.severity } });
    if (decision.action === 'block') throw idsBlocked(findings.find((f) => gateway.ids.getMode(f.class) === 'block')?.class ?? findings[0]!.class);
  });
}

const MONITOR_CONFIG_PATH = /^\/api\/v1\/monitors(?:\/[0-9a-f-]{36})?$/;

function isMonitorConfiguration(req: FastifyRequest): boolean {
  const p = req.principal;
  return (req.method === 'POST' || req.method === 'PUT') && MONITOR_CONFIG_PATH.test(pathOf(req.url)) && p?.kind === 'operator' && (p.roles.includes('admin') || p.roles.includes('operator'));
}

/** R12.2 slow requests (slowloris-style bodies): cut off by the timeout and recorded as DoS attempts. */
export function installSlowRequestRecording(app: FastifyInstance, gateway: Gateway): void {
  app.addHook('onTimeout', async (req) => {
    recordSlowRequest(gateway, req.ip, req.method, pathOf(req.url));
  });
}

function recordSlowRequest(gateway: Gateway, sourceIp: string | null, method: string | null = null, path: string | null = null): void {
  gateway.events.record({ kind: 'ids', class: 'dos', ruleId: 'SLOW-001', action: 'block', sourceIp, method, path, details: { timeoutMs: gateway.settings.requestTimeoutMs } });
}

/** Requests the framework refused before any route ran (malformed JSON, wrong media type): recorded as protocol violations. */
export function recordProtocolViolation(gateway: Gateway, req: FastifyRequest, code: string): void {
  recordParserRefusal(gateway, req, 'protocol_violation', code);
}

/** A body the parser refused for what it would do to the server (R12.2), e.g. nesting that exhausts recursion: `dos`. */
export function recordParserRefusal(gateway: Gateway, req: FastifyRequest, cls: 'protocol_violation' | 'dos', code: string, details?: Record<string, unknown>): void {
  gateway.events.record({ kind: 'ids', class: cls, ruleId: code, action: 'block', sourceIp: req.ip, method: req.method, path: pathOf(req.url), ...(details ? { details } : {}) });
}

/** The client closed or reset its connection: ordinary on keep-alive connections, not an attack. */
const CLIENT_WENT_AWAY = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Errors Node's HTTP server reports before any request exists (its `clientError`), as the IDS sees
 * them (R12.2): a client that went away is not recorded; a request that did not arrive in time is a
 * slow request (DoS class, like the route timeout above); anything else is malformed HTTP, a
 * protocol violation. Returns what was made of it, for the answer to send.
 */
export function recordClientError(gateway: Gateway | undefined, err: Error, sourceIp: string | null): 'went_away' | 'timeout' | 'malformed' {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && CLIENT_WENT_AWAY.has(code)) return 'went_away';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    if (gateway) recordSlowRequest(gateway, sourceIp);
    return 'timeout';
  }
  gateway?.events.record({ kind: 'ids', class: 'protocol_violation', ruleId: `HTTP-${code ?? 'PARSE'}`.slice(0, 60), action: 'block', sourceIp });
  return 'malformed';
}

export function registerGatewayRoutes(app: FastifyInstance, ctx: AppContext, gateway: Gateway): void {
  const r = router(app);

  r.get('/gateway/status', { schema: { tags: ['gateway'], summary: 'Geo database version, admission state, misuse state size' } }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    return { geo: gateway.geo.info(), ids: { rulesVersion: gateway.ids.version, rules: gateway.ids.rules.length }, admission: gateway.admission.stats(), misuse: gateway.misuse.stateSize(), trustedProxies: gateway.settings.trustedProxies };
  });

  r.get('/gateway/statistics', {
    schema: {
      tags: ['gateway'],
      summary: 'Refusals from abroad, IDS findings, misuse and congestion refusals, by class, Japan day and customer (R12.2)',
      querystring: z.object({ from: instant, to: instant, customerId: uuid.optional() }),
    },
  }, async (req) => {
    requireOperatorRole(principalOf(req), 'admin', 'operator', 'support');
    const from = new Date(req.query.from);
    const to = new Date(req.query.to);
    if (from.getTime() >= to.getTime()) throw errors.invalidField('to', '期間の終わりは始まりより後にしてください。', 'must be after from');
    if (to.getTime() - from.getTime() > 400 * 86_400_000) throw errors.invalidField('to', '期間は400日以内にしてください。', 'the range may span at most 400 days');
    await gateway.events.flush();
    return gatewayStatistics(ctx.db, { from, to, ...(req.query.customerId ? { customerId: req.query.customerId } : {}) });
  });

  r.post('/gateway/emergency', {
    schema: { tags: ['gateway'], summary: 'Declare or end an emergency: priority traffic first, the rest restricted (R13.1; admin)', body: z.object({ on: z.boolean(), reason: note }) },
  }, async (req) => {
    const p = requireOperatorRole(principalOf(req), 'admin');
    return { emergency: await gateway.setEmergency(req.body.on, req.body.reason, actorOf(p)) };
  });

  r.get('/customers/:customerId/misuse-flags', {
    schema: { tags: ['gateway'], summary: "Misuse of the customer's credentials found by the gateway (operators; the customer's admins)", params: z.object({ customerId: uuid }) },
  }, async (req) => {
    const p = principalOf(req);
    if (!canAccessCustomer(p, req.params.customerId) || !(await findCustomer(ctx.db, req.params.customerId))) throw errors.notFound('お客様 / customer', req.params.customerId);
    if (p.kind !== 'operator' && !isCustomerAdminOf(p, req.params.customerId)) throw errors.forbidden("requires the customer's admin", 'お客様の管理者権限が必要です');
    const flags = await listMisuseFlags(ctx.db, { customerId: req.params.customerId });
    return { misuseFlags: flags.map(({ customerId: _customerId, ...f }) => f) };
  });
}
