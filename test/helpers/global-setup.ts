import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrate, openDatabase } from '../../src/core/db/database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A migrated in-memory database, saved once per run: each test's PGlite starts from it. */
    pgliteTemplate: string;
  }
}

/**
 * Runs once before the test files: initdb and the migrations take about 3.5 s per in-memory
 * database, loading this template about 0.6 s (decision 0029).
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-pglite-template-'));
  const file = path.join(dir, 'migrated.tar.gz');
  const h = await openDatabase({ kind: 'pglite', dataDir: 'memory' });
  try {
    await migrate(h.db);
    await h.saveEmbeddedTemplate!(file);
  } finally {
    await h.close();
  }
  project.provide('pgliteTemplate', file);
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
