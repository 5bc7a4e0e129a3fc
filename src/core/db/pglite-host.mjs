// The embedded database's own process (decision 0029). openDatabase (database.ts) forks it and
// talks to it over the IPC channel: PGlite runs PostgreSQL as WebAssembly on its caller's thread,
// and in the server's process every statement would stop the event loop (HTTP, timers, the
// backup's decrypting and hashing) for as long as it ran. Plain JavaScript, so it starts without
// the TypeScript loader.
//
// Messages in:  { t: 'query', id, sql, params, copyInput? }, { t: 'dump', id, file }, { t: 'close' }
// Messages out: { t: 'ready' } | { t: 'result', id, rows, affectedRows } | { t: 'error', id, error }
import fs from 'node:fs';
import { PGlite, types } from '@electric-sql/pglite';

// TEMPLATE (memory only): a data directory saved by a 'dump' message, loaded instead of running
// initdb; the tests start each in-memory database from one migrated template.
const [dataDir, sharedBuffers, template] = process.argv.slice(2);
if (!dataDir || !sharedBuffers || typeof process.send !== 'function') {
  process.stderr.write('usage: forked by hokan with an IPC channel: pglite-host.mjs DATA_DIR|memory SHARED_BUFFERS [TEMPLATE]\n');
  process.exit(2);
}

const DATE_OID = 1082;
const INT8_OID = 20;
// What a killed parent leaves: the channel closes, and this process closes the database and
// ends. A close that hangs must not keep it alive (and the directory's lock held) for ever.
const ORPHAN_CLOSE_LIMIT_MS = 20_000;

const ERROR_FIELDS = ['code', 'severity', 'detail', 'hint', 'position', 'where', 'schema', 'table', 'column', 'dataType', 'constraint', 'routine'];

/** An error as plain data: the IPC channel carries a DatabaseError's fields, not its class. */
function errorData(err) {
  const data = { message: err instanceof Error ? err.message : String(err) };
  if (err && typeof err === 'object') for (const f of ERROR_FIELDS) if (typeof err[f] === 'string') data[f] = err[f];
  return data;
}

function send(message) {
  if (process.connected) process.send(message);
}

let db;
try {
  db = new PGlite({
    ...(dataDir === 'memory' ? (template ? { loadDataDir: new Blob([fs.readFileSync(template)]) } : {}) : { dataDir }),
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`],
    // As in the server with PostgreSQL (database.ts): dates stay 'YYYY-MM-DD', int8 stays a string.
    parsers: { [DATE_OID]: (v) => v, [INT8_OID]: (v) => v },
    serializers: { [types.DATE]: (v) => String(v) },
  });
  await db.waitReady;
} catch (err) {
  send({ t: 'failed', error: errorData(err) });
  process.exit(1);
}

// One statement at a time, in the order they came: the parent's driver holds the session for a
// whole transaction, and a statement must never overtake the one sent before it.
let chain = Promise.resolve();
let closing = false;

async function run(message) {
  try {
    const options = message.copyInput ? { blob: new Blob([message.copyInput]) } : undefined;
    const r = await db.query(message.sql, message.params ?? [], options);
    send({ t: 'result', id: message.id, rows: r.rows, affectedRows: r.affectedRows });
  } catch (err) {
    send({ t: 'error', id: message.id, error: errorData(err) });
    // A trap of the WebAssembly PostgreSQL (an abort, its heap exhausted) leaves it unusable: end
    // here, and the parent starts a new one, which recovers from the WAL (decision 0029).
    if (err instanceof WebAssembly.RuntimeError) {
      process.stderr.write(`embedded PostgreSQL failed: ${err.message}\n`);
      process.exit(70);
    }
  }
}

async function dump(message) {
  try {
    const blob = await db.dumpDataDir('gzip');
    fs.writeFileSync(message.file, Buffer.from(await blob.arrayBuffer()));
    send({ t: 'result', id: message.id, rows: [] });
  } catch (err) {
    send({ t: 'error', id: message.id, error: errorData(err) });
  }
}

async function close(exitCode) {
  if (closing) return;
  closing = true;
  const limit = setTimeout(() => process.exit(exitCode || 1), ORPHAN_CLOSE_LIMIT_MS);
  try {
    await chain;
    await db.close();
  } finally {
    clearTimeout(limit);
    process.exit(exitCode);
  }
}

process.on('message', (message) => {
  if (closing || !message || typeof message !== 'object') return;
  if (message.t === 'query') chain = chain.then(() => run(message));
  else if (message.t === 'dump') chain = chain.then(() => dump(message));
  else if (message.t === 'close') void close(0);
});
process.on('disconnect', () => void close(0));
// A parent that died while the database was opening has already disconnected.
if (!process.connected) void close(0);
// The parent's terminal sends SIGINT to the whole group on Ctrl-C: the parent decides when the
// database closes (after its last statement), so this process waits for its word or its exit.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => void close(0));

send({ t: 'ready' });
