import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { registerAccountJobs } from './accounts/jobs.js';
import { registerContractJobs } from './contracts/jobs.js';
import { registerIncidentJobs } from './incidents/jobs.js';
import { systemClock, type Clock } from './core/clock.js';
import type { Config } from './core/config.js';
import { migrate, openDatabase, type DatabaseHandle, type DatabaseTarget } from './core/db/database.js';
import { JobQueue } from './core/jobs/job-queue.js';
import type { AppContext } from './http/context.js';
import { buildServer } from './http/server.js';
import { registerDataJobs } from './data/jobs.js';
import { registerExportJobs } from './data/export-jobs.js';
import { registerBackupJobs } from './backup/jobs.js';
import { loadBackupSettings } from './backup/settings.js';
import { Gateway } from './gateway/gateway.js';
import { loadGatewaySettings } from './gateway/settings.js';
import { registerNotifyJobs } from './notify/jobs.js';
import { registerHardwareJobs, SelfSampler } from './monitoring/hardware-jobs.js';
import { registerRoundJobs } from './monitoring/rounds-jobs.js';
import { registerMonitoringJobs } from './monitoring/monitors-jobs.js';
import { MonitorScheduler, type MonitorSchedulerOptions } from './monitoring/monitors-scheduler.js';
import { createMailTransport } from './notify/outbox.js';
import { parseBlobStoreUrl, type BlobStore } from './storage/index.js';

export interface App {
  ctx: AppContext;
  database: DatabaseHandle;
  /** R12.3①: samples this instance's own host; started by `hokan serve` with the jobs. */
  selfSampler: SelfSampler;
  server: FastifyInstance;
  close(): Promise<void>;
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
  const logger = opts.logger ?? pino({ level: config.logLevel, base: { instance: config.instanceId }, redact: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.secret', '*.totpCode'] });
  const database = opts.database ?? (await openDatabase(databaseTargetOf(config)));
  await migrate(database.db);
  const clock = opts.clock ?? systemClock;
  const queue = new JobQueue({ db: database.db, clock, instanceId: config.instanceId, logger });
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
  const backup = await loadBackupSettings(opts.env ?? process.env, { dataDir: config.dataDir, files, embedded: database.kind === 'pglite', s3Credentials: config.s3Credentials });
  registerBackupJobs(queue, { live: files, settings: backup, instanceId: config.instanceId, providerName: config.providerName, logger });
  const gateway = opts.gateway === false ? undefined : await Gateway.create(loadGatewaySettings(opts.env ?? process.env), database.db, clock, logger);
  registerMonitoringJobs(queue, { resultDays: config.monitorResultDays });
  const monitors = new MonitorScheduler({ db: database.db, clock, instanceId: config.instanceId, logger, backup, concurrency: config.monitorConcurrency, ...(opts.onIncidentOpened ? { onIncidentOpened: opts.onIncidentOpened } : {}) });
  const ctx: AppContext = { db: database.db, clock, config, queue, logger, files, backup, gateway, monitors };
  const server = await buildServer(ctx);
  const selfSampler = new SelfSampler({ db: database.db, clock, everySeconds: config.hardwareSelfSampleSeconds, retentionDays: config.hardwareRetentionDays, logger });
  let closed = false;
  return {
    ctx,
    database,
    selfSampler,
    server,
    async close() {
      if (closed) return;
      closed = true;
      await selfSampler.stop();
      await queue.stop();
      await monitors.stop();
      notifyJobs.close();
      await server.close();
      await gateway?.stop();
      await database.close();
    },
  };
}
