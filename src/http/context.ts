import type { Logger } from 'pino';
import type { Config } from '../core/config.js';
import type { Clock } from '../core/clock.js';
import type { ConnectionHealth } from '../core/db/connection-health.js';
import type { Lifecycle } from '../core/lifecycle.js';
import type { Db } from '../core/db/database.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import type { BlobStore } from '../storage/index.js';
import type { BackupSettings } from '../backup/settings.js';
import type { Gateway } from '../gateway/gateway.js';
import type { MonitorScheduler } from '../monitoring/monitors-scheduler.js';

/** What every route and job is given; built once in main and in tests. */
export interface AppContext {
  db: Db;
  clock: Clock;
  config: Config;
  queue: JobQueue;
  logger: Logger;
  /** Where the Software's files live (R3.1). */
  files: BlobStore;
  backup: BackupSettings;
  /** The ingress chain; absent only in unit tests that build a bare server. */
  gateway?: Gateway;
  /** R12.3②: runs the service monitors' checks (started by `serve` with the job worker). */
  monitors?: MonitorScheduler;
  /** Serving or draining (shutdown); requests in flight. */
  lifecycle: Lifecycle;
  /** Database reachability (logs "database connection lost/restored"). */
  databaseHealth?: ConnectionHealth;
}
