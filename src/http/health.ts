import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { isConnectionError } from '../core/db/connection-health.js';
import { migrationProvider } from '../core/db/migrations/index.js';
import type { AppContext } from './context.js';

/** How long readiness waits for the database before calling it unreachable. */
export const READINESS_DB_TIMEOUT_MS = 2_000;

interface Check {
  ok: boolean;
  [detail: string]: unknown;
}

class ReadinessTimeout extends Error {}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ReadinessTimeout('database readiness check timed out')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What /readyz, answered to anyone from anywhere, says about a failed database check. The
 * driver's own text names hosts, ports, users and tables of the provider's network; it goes to
 * the log instead.
 */
function publicDatabaseReason(err: unknown): 'timed out' | 'unreachable' | 'query failed' {
  if (err instanceof ReadinessTimeout) return 'timed out';
  return isConnectionError(err) ? 'unreachable' : 'query failed';
}

/** The failure last logged per instance: a load balancer probes every few seconds, the log says it once. */
const loggedFailure = new WeakMap<AppContext, string>();

/**
 * What a load balancer asks before sending traffic here: the database answers within a short
 * time, every migration this build knows is applied, the job worker runs (when enabled), and the
 * instance is not shutting down. Any failing check is named, with 503.
 */
export async function readiness(ctx: AppContext): Promise<{ ready: boolean; failing: string[]; checks: Record<string, Check> }> {
  const checks: Record<string, Check> = {};
  const started = performance.now();
  try {
    const rows = await withTimeout(sql<{ name: string }>`select name from hokan_migrations`.execute(ctx.db), READINESS_DB_TIMEOUT_MS);
    checks.database = { ok: true, ms: Math.round(performance.now() - started) };
    ctx.databaseHealth?.succeeded();
    loggedFailure.delete(ctx);
    const applied = new Set(rows.rows.map((r) => r.name));
    const expected = Object.keys(await migrationProvider.getMigrations());
    const missing = expected.filter((m) => !applied.has(m));
    checks.migrations = { ok: missing.length === 0, applied: applied.size, expected: expected.length, ...(missing.length ? { missing } : {}) };
  } catch (err) {
    if (isConnectionError(err)) ctx.databaseHealth?.failed(err, 'readiness');
    const reason = publicDatabaseReason(err);
    const detail = err instanceof Error ? err.message : String(err);
    if (loggedFailure.get(ctx) !== detail) {
      loggedFailure.set(ctx, detail);
      ctx.logger.warn({ check: 'database', reason, err: detail }, 'readiness: database check failed');
    }
    checks.database = { ok: false, ms: Math.round(performance.now() - started), error: reason };
    checks.migrations = { ok: false, error: 'not checked: the database check failed' };
  }
  const jobState = ctx.queue.state;
  checks.jobs = ctx.config.jobsEnabled ? { ok: jobState === 'running', state: jobState, msSinceLastPoll: ctx.queue.msSinceLastPoll } : { ok: true, state: 'disabled (HOKAN_JOBS=false)' };
  checks.draining = { ok: !ctx.lifecycle.draining, inFlight: ctx.lifecycle.inFlight };
  const failing = Object.entries(checks).filter(([, c]) => !c.ok).map(([name]) => name);
  return { ready: failing.length === 0, failing, checks };
}

export function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): void {
  // Liveness: the process answers. No database: a database outage must not get every instance restarted.
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const r = await readiness(ctx);
    reply.header('cache-control', 'no-store');
    if (r.ready) return { status: 'ready', instance: ctx.config.instanceId, checks: r.checks };
    return reply.code(503).send({ status: 'not_ready', instance: ctx.config.instanceId, failing: r.failing, checks: r.checks });
  });
}
