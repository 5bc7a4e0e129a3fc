import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kysely, Migrator, PostgresDialect, type Transaction } from 'kysely';
import pg from 'pg';
import { ConfigError } from '../config.js';
import { ConnectionHealth } from './connection-health.js';
import { copyCapablePool } from './copy.js';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js';
import { migrationProvider } from './migrations/index.js';
import { PGliteDialect } from './pglite-dialect.js';
import { EmbeddedProcess } from './pglite-process.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Functions that can run inside a caller's transaction or on their own take either. */
export type DbOrTx = Db | Tx;

export interface DatabaseHandle {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** Where the data lives, for messages; never a password. */
  location: string;
  /** Reachability as seen by the pool and the job queue; logs "database connection lost/restored". */
  health: ConnectionHealth;
  /** The embedded database's own process, while it runs (PGlite only; for memory measurements). */
  databasePid?(): number | undefined;
  /** PGlite only: saves the database as a template for `{ dataDir: 'memory', template }` (the tests' migrated start). */
  saveEmbeddedTemplate?(file: string): Promise<void>;
  close(): Promise<void>;
}

const DATE_OID = 1082;
const INT8_OID = 20;

// `date` columns stay 'YYYY-MM-DD': turning them into JS Dates would shift them by the host's zone.
pg.types.setTypeParser(DATE_OID, (v: string) => v);
pg.types.setTypeParser(INT8_OID, (v: string) => v);

/**
 * The embedded database's shared buffers. PostgreSQL's 128 MB default is a server's, and in PGlite
 * it is the memory of the process running it, touched at start-up: 32 MB keeps an embedded
 * instance about 100 MB smaller, and pages beyond it come from the operating system's file cache
 * (decision 0028).
 */
export const PGLITE_SHARED_BUFFERS = '32MB';

const PGLITE_INITDB = fileURLToPath(new URL('./pglite-initdb.mjs', import.meta.url));

const BUILD_PREFIX = '.initdb-';

/**
 * A new embedded data directory is made by a child process, inside a build directory within it,
 * and its files are then moved up, PG_VERSION last: until PG_VERSION is there, the directory is not
 * taken for a database, so a killed initdb never leaves one that looks whole. Building inside the
 * directory keeps a symlinked or mounted data directory where it is. The caller holds the data
 * directory's lock, so no other build is running: one left by a killed process is removed.
 * Exported for tests, which pass a script of their own.
 */
export async function initEmbeddedDataDir(dataDir: string, script = PGLITE_INITDB): Promise<void> {
  if (fs.existsSync(path.join(dataDir, 'PG_VERSION'))) return;
  if (fs.existsSync(dataDir) && !fs.statSync(dataDir).isDirectory()) throw new ConfigError([`HOKAN_DATA_DIR: ${dataDir} is not a directory; move it away or point HOKAN_DATA_DIR elsewhere`]);
  fs.mkdirSync(dataDir, { recursive: true });
  for (const e of fs.readdirSync(dataDir)) if (e.startsWith(BUILD_PREFIX)) fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });
  if (fs.readdirSync(dataDir).length > 0) {
    throw new ConfigError([`HOKAN_DATA_DIR: ${dataDir} is neither empty nor an embedded database (it has no PG_VERSION); move its contents away or point HOKAN_DATA_DIR elsewhere`]);
  }
  const building = path.join(dataDir, `${BUILD_PREFIX}${randomBytes(4).toString('hex')}`);
  try {
    await promisify(execFile)(process.execPath, [script, building], { timeout: 120_000 });
    for (const e of fs.readdirSync(building)) if (e !== 'PG_VERSION') fs.renameSync(path.join(building, e), path.join(dataDir, e));
    fs.renameSync(path.join(building, 'PG_VERSION'), path.join(dataDir, 'PG_VERSION'));
    fs.rmdirSync(building);
  } catch (err) {
    // The directory was empty and is locked: whatever is in it now is this build's.
    try {
      for (const e of fs.readdirSync(dataDir)) fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });
    } catch {
      // The error to report is the build's, not the cleanup's.
    }
    const detail = err instanceof Error ? ((err as { stderr?: string }).stderr || err.message) : String(err);
    throw new Error(`creating the embedded database in ${dataDir} failed: ${detail.trim()}`);
  }
}

export type DatabaseTarget = { kind: 'postgres'; url: string } | { kind: 'pglite'; dataDir: string | 'memory'; template?: string };

export async function openDatabase(target: DatabaseTarget): Promise<DatabaseHandle> {
  if (target.kind === 'postgres') {
    const health = new ConnectionHealth();
    // A connection that cannot be made within 5 s fails the query instead of hanging it, so an
    // unreachable server turns into errors the callers handle (and readiness reports) at once.
    const pool = new pg.Pool({ connectionString: target.url, max: 10, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000, keepAlive: true });
    // A dropped idle connection must not crash the process; the pool replaces it. It is reported
    // once per outage (not once per connection) through the health tracker.
    pool.on('error', (err) => health.failed(err, 'idle connection'));
    pool.on('connect', (client) => {
      // An error on a checked-out client arrives with its query's rejection; without a listener
      // the event itself would be thrown and end the process.
      client.on('error', (err) => health.failed(err, 'connection'));
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: copyCapablePool(pool) }) });
    const url = new URL(target.url);
    return { db, kind: 'postgres', location: `postgresql://${url.host}${url.pathname}`, health, close: () => db.destroy() };
  }
  let dataDir: string | undefined;
  let lock: DataDirLock | null = null;
  if (target.dataDir !== 'memory') {
    dataDir = path.join(target.dataDir, 'pglite');
    fs.mkdirSync(target.dataDir, { recursive: true });
    lock = await acquireDataDirLock(target.dataDir);
  }
  let session: EmbeddedProcess | null = null;
  try {
    if (dataDir) await initEmbeddedDataDir(dataDir);
    const health = new ConnectionHealth();
    session = await EmbeddedProcess.start({
      // The real path: PGlite's file system cannot open a data directory through a symlink.
      dataDir: dataDir ? fs.realpathSync(dataDir) : 'memory',
      sharedBuffers: PGLITE_SHARED_BUFFERS,
      ...(target.dataDir === 'memory' && target.template ? { template: target.template } : {}),
      onStart: (pid) => lock?.addHelper(pid),
      // Started again at the next statement; until then readiness reports the outage.
      onExit: (err) => health.failed(err, 'embedded database process'),
    });
    const running = session;
    const db = new Kysely<Database>({ dialect: new PGliteDialect(running) });
    const close = async () => {
      try {
        await db.destroy();
      } finally {
        // Kysely skips its driver's destroy when no query ever ran: the process is closed here in
        // any case, and before the lock is let go.
        await running.close();
        lock?.release();
      }
    };
    return { db, kind: 'pglite', location: dataDir ?? '(memory)', health, databasePid: () => running.pid, saveEmbeddedTemplate: (file) => running.dumpDataDir(file), close };
  } catch (err) {
    // Closed before the lock is let go: nothing of this opening may still write to the directory.
    await session?.close().catch(() => {});
    lock?.release();
    throw err;
  }
}

export async function migrate(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider, migrationTableName: 'hokan_migrations', migrationLockTableName: 'hokan_migrations_lock' });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    const cause = error instanceof Error ? error.message : String(error ?? 'unknown');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${cause}`);
  }
}
