import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate, openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';

export type DatabaseKind = 'pglite' | 'postgres';

const url = process.env.TEST_DATABASE_URL;
if (process.env.CI === 'true' && !url) {
  // In CI the PostgreSQL half of the suite must run, never be skipped silently.
  throw new Error('CI=true but TEST_DATABASE_URL is not set: the PostgreSQL tests would be skipped');
}

/** Every database test runs on PGlite, and again on PostgreSQL when TEST_DATABASE_URL is set. */
export const databaseKinds: DatabaseKind[] = url ? ['pglite', 'postgres'] : ['pglite'];

export const postgresUrl = url;

export interface TestDatabase extends DatabaseHandle {
  /** For PostgreSQL, the URL of this test's own database (for child processes and second instances). */
  url?: string;
}

/** A fresh, migrated database: in-memory PGlite, or a new database on the PostgreSQL server. */
export async function openTestDatabase(kind: DatabaseKind, opts: { migrate?: boolean } = {}): Promise<TestDatabase> {
  if (kind === 'pglite') {
    // Migrated: from the run's template (global-setup.ts), which is the migrations' own result.
    if (opts.migrate !== false) {
      const template = inject('pgliteTemplate');
      if (!template) throw new Error('no PGlite template: vitest.config.ts must run test/helpers/global-setup.ts');
      return openDatabase({ kind: 'pglite', dataDir: 'memory', template });
    }
    return openDatabase({ kind: 'pglite', dataDir: 'memory' });
  }
  const dbUrl = await createPostgresDatabase();
  const h = await openDatabase({ kind: 'postgres', url: dbUrl });
  if (opts.migrate !== false) await migrate(h.db);
  return {
    ...h,
    url: dbUrl,
    close: async () => {
      await h.close();
      await dropPostgresDatabase(dbUrl);
    },
  };
}

export async function createPostgresDatabase(): Promise<string> {
  if (!url) throw new Error('TEST_DATABASE_URL is not set');
  const name = `hokan_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function dropPostgresDatabase(dbUrl: string): Promise<void> {
  if (!url) return;
  const name = new URL(dbUrl).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}
