// Run as a child process by openDatabase (database.ts) to create a new embedded data directory:
// initdb holds several hundred MB that the process never gives back, so it must not run in the
// server (decision 0028). Plain JavaScript, so it starts without the TypeScript loader.
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node pglite-initdb.mjs DATA_DIR\n');
  process.exit(2);
}
const db = new PGlite({ dataDir: dir });
await db.waitReady;
await db.close();
