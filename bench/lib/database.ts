import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { migrate, openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';

export interface BenchDatabase extends DatabaseHandle {
  /** 'pglite' (a data directory in the run's temp dir) or 'postgres' (a fresh database, dropped by close()). */
  label: string;
  /** For PostgreSQL: the fresh database's URL (for child processes). */
  url?: string;
}

/**
 * A fresh, migrated database for one run: PGlite in `<tmp>/data/pglite` by default, or, with
 * BENCH_DATABASE_URL, a new database on that PostgreSQL server (created here, dropped on close).
 */
export async function openBenchDatabase(tmp: string, serverUrl: string | undefined): Promise<BenchDatabase> {
  if (!serverUrl) {
    const h = await openDatabase({ kind: 'pglite', dataDir: path.join(tmp, 'data') });
    await migrate(h.db);
    return { ...h, label: 'PGlite (data directory)' };
  }
  const name = `hokan_bench_${randomBytes(6).toString('hex')}`;
  await admin(serverUrl, `create database ${name}`);
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  let h: DatabaseHandle;
  try {
    h = await openDatabase({ kind: 'postgres', url: u.toString() });
    await migrate(h.db);
  } catch (err) {
    await admin(serverUrl, `drop database if exists ${name} with (force)`).catch(() => {});
    throw err;
  }
  const opened = h;
  return {
    ...opened,
    label: `PostgreSQL ${u.host} (database ${name}, dropped after)`,
    url: u.toString(),
    close: async () => {
      try {
        await opened.close();
      } finally {
        await admin(serverUrl, `drop database if exists ${name} with (force)`);
      }
    },
  };
}

async function admin(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
