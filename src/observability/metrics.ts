import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql } from 'kysely';
import { errors } from '../core/errors.js';
import type { AppContext } from '../http/context.js';
import { isPrivateNetwork } from '../gateway/geo/index.js';

/**
 * Prometheus metrics at /metrics (R12.4). They describe the platform's internals, so they are
 * served only to the provider's own networks (R9.2): private addresses, never the public.
 */
export function installMetrics(app: FastifyInstance, ctx: AppContext): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hokan_process_' });
  const requests = new Counter({ name: 'hokan_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = new Histogram({
    name: 'hokan_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobs = new Gauge({ name: 'hokan_jobs', help: 'Jobs by queue and state', labelNames: ['queue', 'state'], registers: [registry] });
  const backupAge = new Gauge({ name: 'hokan_backup_last_good_age_seconds', help: 'Age of the newest good backup per customer (R10.1)', labelNames: ['customer'], registers: [registry] });
  const events = new Gauge({ name: 'hokan_gateway_events_24h', help: 'Gateway refusals and findings in the last 24 hours by kind and class (R12.2)', labelNames: ['kind', 'class'], registers: [registry] });
  const contracts = new Gauge({ name: 'hokan_contracts', help: 'Contracts by state', labelNames: ['status'], registers: [registry] });

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, never the URL: ids must not become label values.
    const route = req.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (!isPrivateNetwork(req.ip)) throw errors.notFound('パス / path', 'GET /metrics');
    jobs.reset();
    for (const r of await ctx.db.selectFrom('jobs').select(['queue', 'state', (eb) => eb.fn.countAll<string>().as('n')]).groupBy(['queue', 'state']).execute()) {
      jobs.set({ queue: r.queue, state: r.state }, Number(r.n));
    }
    backupAge.reset();
    const now = ctx.clock.now().getTime();
    for (const r of await ctx.db.selectFrom('backups').select(['customer_id', (eb) => eb.fn.max('started_at').as('at')]).where('state', '=', 'good').groupBy('customer_id').execute()) {
      backupAge.set({ customer: r.customer_id }, Math.round((now - new Date(r.at as unknown as string).getTime()) / 1000));
    }
    events.reset();
    for (const r of await ctx.db
      .selectFrom('gateway_events')
      .select(['kind', 'class', (eb) => eb.fn.countAll<string>().as('n')])
      .where('at', '>=', new Date(now - 86_400_000))
      .groupBy(['kind', 'class'])
      .execute()) {
      events.set({ kind: r.kind, class: r.class }, Number(r.n));
    }
    contracts.reset();
    for (const r of (await sql<{ status: string; n: string }>`select status, count(*) as n from contracts group by status`.execute(ctx.db)).rows) {
      contracts.set({ status: r.status }, Number(r.n));
    }
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
