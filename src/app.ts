import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { registerAccountJobs } from './accounts/jobs.js';
import { registerContractJobs } from './contracts/jobs.js';
import { registerIncidentJobs } from './incidents/jobs.js';
import { systemClock, type Clock } from './core/clock.js';
import type { Config } from './core/config.js';
import { migrate, openDatabase, type DatabaseHandle, type DatabaseTarget } from './core/db/database.js';
import { JobQueue } from './core/jobs/job-queue.js';
import { Lifecycle } from './core/lifecycle.js';
import type { AppContext } from './http/context.js';
import { buildServer } from './http/server.js';
import { registerDataJobs } from './data/jobs.js';
import { registerExportJobs } from './data/export-jobs.js';
import { registerOrphanBlobJobs } from './data/orphan-blobs.js';
import { registerBackupJobs } from './backup/jobs.js';
import { loadBackupSettings } from './backup/settings.js';
import { Gateway } from './gateway/gateway.js';
import { loadGatewaySettings } from './gateway/settings.js';
import { registerNotifyJobs } from './notify/jobs.js';
import { registerHardwareJobs, SelfSampler } from './monitoring/hardware-jobs.js';
import { registerRoundJobs } from './monitoring/rounds-jobs.js';
import { registerMonitoringJobs } from './monitoring/monitors-jobs.js';
import { MonitorScheduler, type MonitorSchedulerOptions } from './monitoring/monitors-scheduler.js';
import { getMonitor } from './monitoring/monitors.js';
import { autoFirstNotice } from './notify/auto-first-notice.js';
import { createMailTransport } from './notify/outbox.js';
import { parseBlobStoreUrl, type BlobStore } from './storage/index.js';

export interface App {
  ctx: AppContext;
  database: DatabaseHandle;
  /** R12.3①: samples this instance's own host; started by `hokan serve` with the jobs. */
  selfSampler: SelfSampler;
  server: FastifyInstance;
  /**
   * Graceful shutdown: readiness 503 at once, no new connections, in-flight requests finish and
   * running jobs finish or are handed back (both bounded by `timeoutMs`, default
   * HOKAN_SHUTDOWN_TIMEOUT_SECONDS), then the database closes. Each step is logged.
   */
  close(opts?: { timeoutMs?: number; reason?: string }): Promise<void>;
}

export function databaseTargetOf(config: Config): DatabaseTarget {
  return config.databaseUrl ? { kind: 'postgres', url: config.databaseUrl } : { kind: 'pglite', dataDir: config.dataDir };
}

/** Wires one hokan instance: database (migrated), job queue with every domain's jobs, HTTP server. */
export async function createApp(
  config: Config,
  opts: { clock?: Clock; logger?: Logger; database?: DatabaseHandle; files?: BlobStore; env?: NodeJS.ProcessEnv; /** false only to measure the bare route in the gateway benchmark */ gateway?: boolean; /** e.g. the notices domain's first-notice hook (R8.1) */ onIncidentOpened?: MonitorSchedulerOptions['onIncidentOpened'] } = {},
): Promise<App> {
  // Secrets never reach the log (R12.1): credentials in headers and any password/token field.
  const logger = opts.logger ?? pino({ level: config.logLevel, base: { instance: config.instanceId }, redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.secret', '*.totpCode', '*.newPassword', '*.currentPassword'] });
  const database = opts.database ?? (await openDatabase(databaseTargetOf(config)));
  database.health.attach(logger);
  await migrate(database.db);
  const clock = opts.clock ?? systemClock;
  const queue = new JobQueue({ db: database.db, clock, instanceId: config.instanceId, logger, leaseMs: config.jobLeaseMs, health: database.health });
  registerContractJobs(queue);
  registerIncidentJobs(queue);
  registerAccountJobs(queue);
  registerDataJobs(queue, config);
  registerHardwareJobs(queue, { retentionDays: config.hardwareRetentionDays });
  registerRoundJobs(queue, { defaultIntervalHours: config.roundIntervalHours });
  const smtpUrl = config.smtpUrl;
  if (!smtpUrl) logger.warn('HOKAN_SMTP_URL is not set: e-mail notices stay queued in the outbox until it is');
  const notifyJobs = registerNotifyJobs(queue, () => (smtpUrl ? createMailTransport(smtpUrl, config.mailFrom, { maxConnections: config.smtpMaxConnections }) : null), {
    providerName: config.providerName,
    publicUrl: config.publicUrl,
    stopReminderHours: config.stopReminderHours,
  }, { batch: 200, concurrency: config.smtpMaxConnections * 4 });
  const files = opts.files ?? parseBlobStoreUrl(config.filesUrl, config.s3Credentials);
  registerExportJobs(queue, files);
  registerOrphanBlobJobs(queue, files);
  const backup = await loadBackupSettings(opts.env ?? process.env, { dataDir: config.dataDir, files, embedded: database.kind === 'pglite', s3Credentials: config.s3Credentials });
  registerBackupJobs(queue, { live: files, settings: backup, instanceId: config.instanceId, providerName: config.providerName, logger });
  const gateway = opts.gateway === false ? undefined : await Gateway.create(loadGatewaySettings(opts.env ?? process.env), database.db, clock, logger);
  registerMonitoringJobs(queue, { resultDays: config.monitorResultDays });
  const firstNotice = config.autoFirstNotice ? autoFirstNotice({ db: database.db, clock, queue, providerName: config.providerName, publicUrl: config.publicUrl, logger }) : null;
  const onIncidentOpened: MonitorSchedulerOptions['onIncidentOpened'] =
    opts.onIncidentOpened ?? (firstNotice ? async (incidentId, monitorId) => firstNotice(incidentId, (await getMonitor(database.db, monitorId).catch(() => null))?.component ?? null) : undefined);
  const monitors = new MonitorScheduler({ db: database.db, clock, instanceId: config.instanceId, logger, backup, concurrency: config.monitorConcurrency, ...(onIncidentOpened ? { onIncidentOpened } : {}) });
  const lifecycle = new Lifecycle();
  const ctx: AppContext = { db: database.db, clock, config, queue, logger, files, backup, gateway, monitors, lifecycle, databaseHealth: database.health };
  const server = await buildServer(ctx);
  const selfSampler = new SelfSampler({ db: database.db, clock, everySeconds: config.hardwareSelfSampleSeconds, retentionDays: config.hardwareRetentionDays, logger });
  let closing: Promise<void> | undefined;
  const shutdown = async (timeoutMs: number, reason: string) => {
    const log = logger.child({ shutdown: reason });
    lifecycle.startDraining();
    log.info({ timeoutMs }, 'shutdown: readiness now 503 (draining); no new connections');
    const serverClosed = server.close();
    const drainRequests = (async () => {
      const inFlight = lifecycle.inFlight;
      if (inFlight > 0) log.info({ inFlight }, 'shutdown: waiting for in-flight requests');
      const deadline = performance.now() + timeoutMs;
      const drained = await lifecycle.waitIdle(timeoutMs);
      if (drained) {
        server.server.closeIdleConnections();
        log.info('shutdown: in-flight requests finished');
      } else {
        log.warn({ stillInFlight: lifecycle.inFlight }, 'shutdown: drain timeout; closing the remaining connections');
        server.server.closeAllConnections();
      }
      // A keep-alive connection that went idle just after the drain must not hold the close up.
      let timer: NodeJS.Timeout | undefined;
      const closedInTime = await Promise.race([serverClosed.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(1_000, deadline - performance.now()))))]);
      clearTimeout(timer);
      if (!closedInTime) {
        server.server.closeAllConnections();
        await serverClosed;
      }
    })();
    const stopJobs = (async () => {
      // Monitors and self-sampling stop first: a check that opened an incident must not outlive the queue.
      await Promise.all([selfSampler.stop(), monitors.stop()]);
      if (queue.state === 'idle') return;
      const r = await queue.stop({ timeoutMs });
      if (r.handedBack > 0) log.warn({ handedBack: r.handedBack }, 'shutdown: handed back running jobs for another instance');
      else log.info('shutdown: job worker stopped; no job left in hand');
    })();
    await Promise.all([drainRequests, stopJobs]);
    notifyJobs.close();
    await gateway?.stop();
    await database.close();
    log.info('shutdown: database closed');
  };
  return {
    ctx,
    database,
    selfSampler,
    server,
    close(opts = {}) {
      closing ??= shutdown(opts.timeoutMs ?? config.shutdownTimeoutMs, opts.reason ?? 'close');
      return closing;
    },
  };
}

/**
 * Starts serving an app built by createApp: the job worker (when enabled), the gateway, the HTTP
 * listener; SIGTERM or SIGINT then shut it down gracefully (see App.close) and exit 0, or 1 if the
 * shutdown itself failed. What `hokan serve` runs; returns the address listened on.
 */
export async function runInstance(app: App, exit: (code: number) => void = (code) => process.exit(code)): Promise<string> {
  const { config, logger, queue } = app.ctx;
  if (config.jobsEnabled) {
    queue.start(config.jobPollMs);
    app.selfSampler.start();
    app.ctx.monitors?.start(config.monitorPollMs);
  }
  app.ctx.gateway?.start();
  const address = await app.server.listen({ port: config.port, host: config.host });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining requests and handing back jobs');
    try {
      await app.close({ reason: signal });
      logger.info('shutdown complete');
      exit(0);
    } catch (err) {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
      exit(1);
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // A stray rejection is a bug to see in the log, not a reason to drop every request in flight.
  process.on('unhandledRejection', (err) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'unhandled rejection'));
  return address;
}
