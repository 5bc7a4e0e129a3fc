import path from 'node:path';
import { z } from 'zod';

/**
 * One validated configuration, read once from the environment; a bad value stops the process
 * with a message that names the variable, instead of failing somewhere later.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'on', 'off', 'yes', 'no'])
  .transform((v) => ['true', '1', 'on', 'yes'].includes(v));

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  HOKAN_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  HOKAN_DEMO_SEED: bool.optional(),
  HOKAN_SESSION_TTL_HOURS: z.coerce.number().positive().max(24 * 30).default(12),
  HOKAN_COOKIE_SECURE: bool.default(false),
  HOKAN_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOKAN_JOBS: bool.default(true),
  HOKAN_AUTO_FIRST_NOTICE: bool.default(true),
  HOKAN_JOB_POLL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  HOKAN_INSTANCE_ID: z.string().min(1).max(100).optional(),
  HOKAN_JOB_LEASE_SECONDS: z.coerce.number().int().min(5).max(3600).default(60),
  HOKAN_SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().min(0).max(3600).default(20),
  HOKAN_FILES_URL: z.string().min(1).optional(),
  HOKAN_MAX_FILE_BYTES: z.coerce.number().int().min(1).max(10 * 1024 ** 3).default(100 * 1024 ** 2),
  HOKAN_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  HOKAN_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  HOKAN_ACCESS_LOG_RETENTION_DAYS: z.coerce.number().int().min(1).max(36_500).default(5 * 365),
  HOKAN_PROVIDER_NAME: z.string().trim().min(1).max(200).default('データセンターサービス提供事業者'),
  HOKAN_PLANNED_STOP_LEAD_DAYS: z.coerce.number().int().min(0).max(365).default(14),
  HOKAN_SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\/[^/]/, 'must be an smtp:// or smtps:// URL')
    .optional(),
  HOKAN_MONITOR_POLL_MS: z.coerce.number().int().min(50).max(10_000).default(250),
  HOKAN_MONITOR_CONCURRENCY: z.coerce.number().int().min(1).max(5000).default(256),
  HOKAN_MONITOR_RESULT_DAYS: z.coerce.number().int().min(1).max(3650).default(35),
  HOKAN_MAIL_FROM: z.string().trim().min(3).max(300).regex(/^[^\r\n]+$/, 'must be one line').default('hokan <noreply@localhost>'),
  HOKAN_HARDWARE_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  HOKAN_HARDWARE_SELF_SAMPLE_SECONDS: z.coerce.number().int().min(0).max(86_400).refine((n) => n === 0 || n >= 5, 'must be 0 (off) or at least 5').default(60),
  HOKAN_ROUND_INTERVAL_HOURS: z.coerce.number().int().min(1).max(8760).default(24),
  HOKAN_SMTP_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(100).default(5),
  HOKAN_PUBLIC_URL: z
    .string()
    .regex(/^https?:\/\/[^/?#]+(\/[^?#]*)?$/, 'must be an http:// or https:// URL without query')
    .optional(),
  HOKAN_STOP_REMINDER_HOURS: z.coerce.number().int().min(1).max(24 * 30).default(24),
});

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  demoSeed: boolean;
  sessionTtlHours: number;
  cookieSecure: boolean;
  logLevel: string;
  jobsEnabled: boolean;
  /** R8.1: a monitor-opened incident gets its first notice (the fact only) posted at once. */
  autoFirstNotice: boolean;
  jobPollMs: number;
  instanceId: string;
  /** How long a claimed job stays this instance's without renewal (renewed every third of it while alive). */
  jobLeaseMs: number;
  /** At shutdown: how long in-flight requests and running jobs may take before they are cut off / handed back. */
  shutdownTimeoutMs: number;
  /** Where live files are kept: a directory or s3://bucket/prefix?endpoint=… */
  filesUrl: string;
  maxFileBytes: number;
  s3Credentials: { accessKeyId?: string; secretAccessKey?: string };
  accessLogRetentionDays: number;
  /** The provider's name as it appears on certificates and notices. */
  providerName: string;
  /** R7.2: how many days before a planned stop it must be announced (shorter needs an admin override). */
  plannedStopLeadDays: number;
  /** Where e-mail notices are sent (smtp://host:port); unset: they stay queued in the outbox. */
  smtpUrl: string | undefined;
  mailFrom: string;
  /** R12.3①: how long hardware samples are kept. */
  hardwareRetentionDays: number;
  /** R12.3①: how often this instance samples its own host (0: never). */
  hardwareSelfSampleSeconds: number;
  /** R12.3③: default interval between visual rounds of a checklist. */
  roundIntervalHours: number;
  /** R12.3②: how often the monitor scheduler looks for due checks, how many run at once, how long results are kept. */
  monitorPollMs: number;
  monitorConcurrency: number;
  monitorResultDays: number;
  /** SMTP connections the delivery job keeps open in parallel (nodemailer pool). */
  smtpMaxConnections: number;
  /** Base URL of the public pages (status page, Atom feed, subscription links), no trailing slash. */
  publicUrl: string;
  /** R7.2: how long before a planned stop its reminder notice goes out. */
  stopReminderHours: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.HOKAN_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    // The demo belongs to the embedded set-up; a PostgreSQL deployment gets it only when asked.
    demoSeed: e.HOKAN_DEMO_SEED ?? e.DATABASE_URL === undefined,
    sessionTtlHours: e.HOKAN_SESSION_TTL_HOURS,
    cookieSecure: e.HOKAN_COOKIE_SECURE,
    logLevel: e.HOKAN_LOG_LEVEL,
    jobsEnabled: e.HOKAN_JOBS,
    autoFirstNotice: e.HOKAN_AUTO_FIRST_NOTICE,
    jobPollMs: e.HOKAN_JOB_POLL_MS,
    instanceId: e.HOKAN_INSTANCE_ID ?? `${process.pid}@${Math.random().toString(36).slice(2, 8)}`,
    jobLeaseMs: e.HOKAN_JOB_LEASE_SECONDS * 1000,
    shutdownTimeoutMs: e.HOKAN_SHUTDOWN_TIMEOUT_SECONDS * 1000,
    filesUrl: e.HOKAN_FILES_URL ?? path.join(path.resolve(e.HOKAN_DATA_DIR), 'files'),
    maxFileBytes: e.HOKAN_MAX_FILE_BYTES,
    s3Credentials: {
      ...(e.HOKAN_S3_ACCESS_KEY_ID ? { accessKeyId: e.HOKAN_S3_ACCESS_KEY_ID } : {}),
      ...(e.HOKAN_S3_SECRET_ACCESS_KEY ? { secretAccessKey: e.HOKAN_S3_SECRET_ACCESS_KEY } : {}),
    },
    accessLogRetentionDays: e.HOKAN_ACCESS_LOG_RETENTION_DAYS,
    providerName: e.HOKAN_PROVIDER_NAME,
    plannedStopLeadDays: e.HOKAN_PLANNED_STOP_LEAD_DAYS,
    smtpUrl: e.HOKAN_SMTP_URL,
    mailFrom: e.HOKAN_MAIL_FROM,
    hardwareRetentionDays: e.HOKAN_HARDWARE_RETENTION_DAYS,
    hardwareSelfSampleSeconds: e.HOKAN_HARDWARE_SELF_SAMPLE_SECONDS,
    roundIntervalHours: e.HOKAN_ROUND_INTERVAL_HOURS,
    monitorPollMs: e.HOKAN_MONITOR_POLL_MS,
    monitorConcurrency: e.HOKAN_MONITOR_CONCURRENCY,
    monitorResultDays: e.HOKAN_MONITOR_RESULT_DAYS,
    smtpMaxConnections: e.HOKAN_SMTP_MAX_CONNECTIONS,
    publicUrl: (e.HOKAN_PUBLIC_URL ?? `http://${e.HOST}:${e.PORT}`).replace(/\/+$/, ''),
    stopReminderHours: e.HOKAN_STOP_REMINDER_HOURS,
  };
}

/** The rows of the README's configuration table, kept here so the two cannot drift apart. */
export const configReference: Array<[name: string, def: string, meaning: string]> = [
  ['PORT', '8080', 'HTTP port'],
  ['HOST', '127.0.0.1', 'address to listen on'],
  ['HOKAN_DATA_DIR', './data', 'embedded database (PGlite) and local files'],
  ['DATABASE_URL', '(unset)', 'PostgreSQL server; when set, PGlite is not used'],
  ['HOKAN_DEMO_SEED', 'true with PGlite, false with DATABASE_URL', 'seed the demo on an empty database'],
  ['HOKAN_SESSION_TTL_HOURS', '12', 'sign-in session lifetime'],
  ['HOKAN_COOKIE_SECURE', 'false', 'mark the session cookie Secure (set true behind HTTPS)'],
  ['HOKAN_LOG_LEVEL', 'info', 'pino log level'],
  ['HOKAN_JOBS', 'true', 'run scheduled jobs and the job worker in this instance'],
  ['HOKAN_AUTO_FIRST_NOTICE', 'true', 'post the first notice (第一報, the fact only) of an incident a monitor opens at once, to the status page and by e-mail (R8.1)'],
  ['HOKAN_JOB_POLL_MS', '1000', 'how often the worker looks for due jobs'],
  ['HOKAN_INSTANCE_ID', 'pid@random', 'name of this instance in job locks and logs'],
  ['HOKAN_JOB_LEASE_SECONDS', '60', 'how long a claimed job stays with its instance without renewal; a live instance renews every third of it, a dead one\'s jobs are taken over after it'],
  ['HOKAN_SHUTDOWN_TIMEOUT_SECONDS', '20', 'at SIGTERM: how long in-flight requests and running jobs may finish before connections are cut and jobs handed back'],
  ['HOKAN_FILES_URL', '$HOKAN_DATA_DIR/files', "where the Software's files live: a directory or s3://bucket/prefix?endpoint=…"],
  ['HOKAN_MAX_FILE_BYTES', '104857600', 'largest file the data API accepts'],
  ['HOKAN_S3_ACCESS_KEY_ID / HOKAN_S3_SECRET_ACCESS_KEY', '(unset)', 'credentials for s3:// stores'],
  ['HOKAN_ACCESS_LOG_RETENTION_DAYS', '1825', 'how long the data access log is kept (5 years)'],
  ['HOKAN_PROVIDER_NAME', 'データセンターサービス提供事業者', "the provider's name on certificates and notices"],
  ['HOKAN_PLANNED_STOP_LEAD_DAYS', '14', 'minimum notice for a planned stop (R7.2); shorter needs an admin override with a reason'],
  ['HOKAN_SMTP_URL', '(unset)', 'SMTP server for e-mail notices, e.g. smtp://127.0.0.1:2525; unset: notices stay queued (a warning at start-up)'],
  ['HOKAN_MAIL_FROM', 'hokan <noreply@localhost>', 'sender of e-mail notices'],
  ['HOKAN_HARDWARE_RETENTION_DAYS', '90', 'how long hardware samples are kept (R12.3①)'],
  ['HOKAN_HARDWARE_SELF_SAMPLE_SECONDS', '60', "how often each instance samples its own host (R12.3①); 0: never"],
  ['HOKAN_ROUND_INTERVAL_HOURS', '24', 'default interval between visual rounds of a checklist (R12.3③); each checklist may set its own'],
  ['HOKAN_MONITOR_POLL_MS', '250', 'how often the service-monitor scheduler looks for due checks (R12.3②)'],
  ['HOKAN_MONITOR_CONCURRENCY', '256', 'service-monitor probes in flight at once per instance'],
  ['HOKAN_MONITOR_RESULT_DAYS', '35', 'how long monitor check results (latency history) are kept'],
  ['HOKAN_SMTP_MAX_CONNECTIONS', '5', 'SMTP connections kept open in parallel by the delivery job (nodemailer pool)'],
  ['HOKAN_PUBLIC_URL', 'http://$HOST:$PORT', 'base URL of the public pages: status page, Atom feed, subscription and unsubscribe links in e-mails'],
  ['HOKAN_STOP_REMINDER_HOURS', '24', 'how long before a planned stop its reminder notice goes out (R7.2)'],
];
