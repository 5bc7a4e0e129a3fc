/**
 * Backup benchmark: hokan's runBackup / restoreCustomer against `tar -czf` / `tar -xzf` of the same
 * data, measured in the same run on the same machine, reported as ratios.
 *
 *   npm run bench -- backup [--keep] [--profile]
 *   BENCH_RECORDS=5000 BENCH_FILE_MB=10 npm run bench -- backup      (quick)
 *
 * Environment: BENCH_RECORDS (default 100000), BENCH_FILE_MB (default 200), BENCH_REPEAT (default 1;
 * the large run is repeated and medians reported), BENCH_DATABASE_URL (PostgreSQL server to create a
 * fresh database on; default: PGlite in a data directory), BENCH_TMPDIR (where the temp dir goes).
 * --keep leaves the temp dir in place; --profile writes CPU profiles of the large run's backup and
 * restore (bench/results/backup-{backup,restore}.cpuprofile) and prints their top self times
 * (profiling slows both down: do not compare those figures with an unprofiled run).
 * See docs/decisions/0010-benchmarks.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import readline from 'node:readline';
import { finished } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { restoreCustomer, type RestoreProgress } from '../src/backup/restore.js';
import { runBackup, type BackupDeps } from '../src/backup/run-backup.js';
import { loadBackupSettings, type BackupSettings } from '../src/backup/settings.js';
import { createContract } from '../src/contracts/contracts.js';
import { createCustomer } from '../src/contracts/customers.js';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import type { Db } from '../src/core/db/database.js';
import { fileBlobKey } from '../src/data/files.js';
import { LocalDirectoryStore, type BlobDigest, type BlobInfo, type BlobStore, type PutOptions, type PutResult } from '../src/storage/index.js';
import { FILE_BYTES, seedCustomerData, type SeededCustomer } from './lib/care-data.js';
import { openBenchDatabase, type BenchDatabase } from './lib/database.js';
import { median, timeCommand, timePhase } from './lib/proc.js';
import { PhaseProfiler, renderSelfTimes } from './lib/profile.js';
import { fixed, renderTable, resultsPath, round, verdict, writeResults, type Row } from './lib/report.js';
import { collectGarbage, MIB, RssSampler, type MemoryPeaks } from './lib/rss.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const TARGET_RATIO = 0.7;
const TARGET_RSS_MB = 300;
/** The embedded database's own process, sampled beside this one's RSS; set once it is open. */
let databasePid: () => number | undefined = () => undefined;
/** Memory counts as "not growing with data" when 4× the data adds at most this much over the small run. */
const FLAT_SLACK_MB = 32;
const FLAT_FACTOR = 1.25;
const PAGE = 1000;
const actor = systemActor('benchmark');

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('usage: npm run bench -- backup [--keep] [--profile]\n  env: BENCH_RECORDS BENCH_FILE_MB BENCH_REPEAT BENCH_DATABASE_URL BENCH_TMPDIR\n');
  process.exit(0);
}
const unknown = args.filter((a) => a !== '--keep' && a !== '--profile');
if (unknown.length > 0) {
  process.stderr.write(`backup: unknown argument(s) ${unknown.join(' ')}\n`);
  process.exit(2);
}
const keep = args.includes('--keep');
const profile = args.includes('--profile');
const config = {
  records: envInt('BENCH_RECORDS', 100_000, 1),
  fileMb: envInt('BENCH_FILE_MB', 200, 1),
  repeat: envInt('BENCH_REPEAT', 1, 1),
  databaseUrl: process.env.BENCH_DATABASE_URL || undefined,
};
// 512 KiB files: two per MiB.
const bigFiles = config.fileMb * 2;
const small = { records: Math.max(1, Math.round(config.records / 4)), files: Math.max(1, Math.round(bigFiles / 4)) };

/** False if any phase could not start from a forced GC (then "before" figures include garbage). */
let gcForced = true;
const log = (msg: string) => process.stderr.write(`[bench backup ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const mb = (bytes: number) => bytes / MIB;

/** Delegates to the live store and notes when the backup first reads a file: where its records part ended. */
class ObservedStore implements BlobStore {
  readonly description: string;
  firstGetAt: number | null = null;

  constructor(private readonly inner: BlobStore) {
    this.description = inner.description;
  }
  put(key: string, body: NodeJS.ReadableStream | Buffer, opts?: PutOptions): Promise<PutResult> {
    return this.inner.put(key, body, opts);
  }
  get(key: string): Promise<NodeJS.ReadableStream> {
    this.firstGetAt ??= performance.now();
    return this.inner.get(key);
  }
  head(key: string): Promise<BlobInfo | null> {
    return this.inner.head(key);
  }
  digest(key: string): Promise<BlobDigest> {
    return this.inner.digest(key);
  }
  delete(key: string, now: Date): Promise<void> {
    return this.inner.delete(key, now);
  }
  list(prefix: string): AsyncIterable<BlobInfo> {
    return this.inner.list(prefix);
  }
}

interface Export {
  dir: string;
  ndjsonBytes: number;
  fileBytes: number;
  files: number;
  seconds: number;
}

/**
 * The plain way to get the same data out: records streamed from the database with keyset
 * pagination into one NDJSON file (same line shape as hokan's records part, so the byte counts
 * match), files linked in as they lie in the live directory. Untimed for the ratio (the baseline
 * is tar of the result), but its duration is reported.
 */
async function exportPlain(db: Db, liveRoot: string, customerId: string, dir: string): Promise<Export> {
  const t0 = performance.now();
  fs.mkdirSync(path.join(dir, 'files'), { recursive: true });
  const out = fs.createWriteStream(path.join(dir, 'records.ndjson'));
  let after: { c: string; i: string } | null = null;
  for (;;) {
    let q = db
      .selectFrom('data_records')
      .select(['collection', 'id', 'version', 'data', 'created_at', 'updated_at'])
      .where('customer_id', '=', customerId)
      .orderBy('collection')
      .orderBy('id')
      .limit(PAGE);
    if (after) q = q.where(sql<boolean>`(collection, id) > (${after.c}, ${after.i})`);
    const rows = await q.execute();
    let chunk = '';
    for (const r of rows) {
      const d: unknown = typeof r.data === 'string' ? JSON.parse(r.data) : r.data;
      chunk += `${JSON.stringify({ c: r.collection, i: r.id, v: r.version, d, ca: r.created_at.toISOString(), ua: r.updated_at.toISOString() })}\n`;
    }
    if (chunk && !out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    if (rows.length < PAGE) break;
    const last = rows[rows.length - 1]!;
    after = { c: last.collection, i: last.id };
  }
  out.end();
  await finished(out);
  const files = await db.selectFrom('data_files').select(['id', 'blob_key', 'size']).where('customer_id', '=', customerId).orderBy('id').execute();
  let fileBytes = 0;
  for (const f of files) {
    const from = path.join(liveRoot, f.blob_key);
    const to = path.join(dir, 'files', f.id);
    try {
      fs.linkSync(from, to);
    } catch {
      fs.copyFileSync(from, to);
    }
    fileBytes += Number(f.size);
  }
  return { dir, ndjsonBytes: fs.statSync(path.join(dir, 'records.ndjson')).size, fileBytes, files: files.length, seconds: (performance.now() - t0) / 1000 };
}

interface Baseline {
  tarCreateS: number;
  tarExtractS: number;
  tgzFsyncS: number;
  tgzBytes: number;
  tarRecordsOnlyS: number;
  tarFilesOnlyS: number;
  /** Extra (not in the ratio): the NDJSON loaded plainly into an empty copy of data_records. */
  plainDbLoadS: number;
}

/** tar -czf of the export (the backup baseline), tar -xzf of the archive (the restore baseline). */
/**
 * A floor for the database half of a restore, which tar -xzf does not do at all: the exported
 * NDJSON streamed into an empty copy of data_records (same primary key and GIN index) the plain
 * way, 2,000 lines per INSERT … SELECT FROM jsonb_to_recordset, in one transaction.
 */
async function plainDbLoad(db: Db, exp: Export, customerId: string): Promise<number> {
  await sql`drop table if exists bench_plain_load`.execute(db);
  await sql`create table bench_plain_load (like data_records including defaults including generated including indexes)`.execute(db);
  try {
    const t0 = performance.now();
    await db.transaction().execute(async (trx) => {
      const insert = (batch: string[]) =>
        sql`insert into bench_plain_load (customer_id, collection, id, version, data, created_at, updated_at)
            select ${customerId}::uuid, x.c, x.i, x.v, x.d, x.ca, x.ua
            from jsonb_to_recordset(${`[${batch.join(',')}]`}::jsonb) as x(c text, i text, v integer, d jsonb, ca timestamptz, ua timestamptz)`.execute(trx);
      let batch: string[] = [];
      const lines = readline.createInterface({ input: fs.createReadStream(path.join(exp.dir, 'records.ndjson')), crlfDelay: Infinity });
      for await (const line of lines) {
        if (line === '') continue;
        batch.push(line);
        if (batch.length >= 2000) {
          await insert(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await insert(batch);
    });
    return (performance.now() - t0) / 1000;
  } finally {
    await sql`drop table if exists bench_plain_load`.execute(db);
  }
}

async function measureBaseline(work: string, exp: Export): Promise<Omit<Baseline, 'plainDbLoadS'>> {
  const tgz = path.join(work, 'baseline.tgz');
  const extractDir = path.join(work, 'baseline-extract');
  try {
    const tarCreateS = await timeCommand('tar', ['-czf', tgz, '-C', exp.dir, '.']);
    // Extra, not part of the ratio: hokan fsyncs every object it stores, tar does not.
    const f0 = performance.now();
    const fd = fs.openSync(tgz, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const tgzFsyncS = (performance.now() - f0) / 1000;
    const tgzBytes = fs.statSync(tgz).size;
    fs.mkdirSync(extractDir);
    const tarExtractS = await timeCommand('tar', ['-xzf', tgz, '-C', extractDir]);
    removeTree(extractDir);
    fs.rmSync(tgz, { force: true });
    // The same split as hokan's two phases, for the analysis: records alone, files alone.
    const tarRecordsOnlyS = await timeCommand('tar', ['-czf', tgz, '-C', exp.dir, 'records.ndjson']);
    fs.rmSync(tgz, { force: true });
    const tarFilesOnlyS = await timeCommand('tar', ['-czf', tgz, '-C', exp.dir, 'files']);
    return { tarCreateS, tarExtractS, tgzFsyncS, tgzBytes, tarRecordsOnlyS, tarFilesOnlyS };
  } finally {
    fs.rmSync(tgz, { force: true });
    removeTree(extractDir);
  }
}

interface HokanRun {
  backupS: number;
  backupCpuS: number;
  backupRecordsS: number;
  backupFilesS: number;
  plainBytes: number;
  storedBytes: number;
  rssBeforeBackup: number;
  backupPeak: number;
  backupHwm: number | null;
  backupMem: MemoryPeaks;
  restoreS: number;
  restoreCpuS: number;
  restorePhasesS: Record<string, number>;
  rssBeforeRestore: number;
  restorePeak: number;
  restoreHwm: number | null;
  /** The embedded database's own process (decision 0029); null on PostgreSQL. */
  databaseProcessPeak: number | null;
  restoreMem: MemoryPeaks;
}

/** Changes the live data the way a bad day would: records lost and overwritten, files deleted and added. */
async function damageLiveData(db: Db, live: BlobStore, customerId: string): Promise<void> {
  await db.deleteFrom('data_records').where('customer_id', '=', customerId).where('id', 'like', '%3').execute();
  await db
    .updateTable('data_records')
    .set({ data: JSON.stringify({ altered: true }), version: 99, updated_at: systemClock.now() })
    .where('customer_id', '=', customerId)
    .where('id', 'like', '%7')
    .execute();
  const files = await db.selectFrom('data_files').select(['id', 'blob_key']).where('customer_id', '=', customerId).orderBy('id').execute();
  for (let i = 0; i < files.length; i += 20) {
    const f = files[i]!;
    await db.deleteFrom('data_files').where('customer_id', '=', customerId).where('id', '=', f.id).execute();
    await live.delete(f.blob_key, systemClock.now());
  }
  const id = '00000000-0000-4000-8000-000000000001';
  const body = Buffer.from('a file uploaded after the backup; the restore removes it\n');
  const stored = await live.put(fileBlobKey(customerId, id), body, { contentType: 'text/plain' });
  await db
    .insertInto('data_files')
    .values({ customer_id: customerId, id, name: 'later.txt', content_type: 'text/plain', size: stored.size, sha256: stored.sha256, blob_key: fileBlobKey(customerId, id), created_at: systemClock.now() })
    .onConflict((oc) => oc.columns(['customer_id', 'id']).doNothing())
    .execute();
}

/**
 * Before a measured phase the database is as a server in service would have it, not as the
 * set-up just left it. The seeding and the damage leave shared buffers full of dirty pages, which
 * the next statements must then write out themselves (seen in EXPLAIN: 13,803 buffers, 110 MB,
 * written by the restore's INSERT; restore times of one commit varied 1.3–2.0 s). A CHECKPOINT
 * writes them out. On PostgreSQL, after the damage, VACUUM does what autovacuum would have done in
 * the hours between a bad day and its restore (otherwise it may start in the middle of the measured
 * restore and take one of two cores); PGlite never vacuums on its own (decision 0010), so it is not
 * vacuumed here either. Neither step is timed. Returns what could not be done (CHECKPOINT needs
 * superuser or pg_checkpoint), for the report.
 */
async function settleDatabase(db: Db, afterDamage: boolean): Promise<string | null> {
  try {
    if (afterDamage && settleKind === 'postgres') await sql`vacuum (analyze) data_records, data_files`.execute(db);
    await sql`checkpoint`.execute(db);
    return null;
  } catch (err) {
    const why = `database not settled before a phase: ${err instanceof Error ? err.message : String(err)}`;
    log(why);
    return why;
  }
}
let settleKind: 'pglite' | 'postgres' = 'pglite';
const notSettled = new Set<string>();

/** After a restore the customer has exactly what was seeded, and every file row points at a blob. */
async function checkRestored(db: Db, live: BlobStore, seeded: SeededCustomer): Promise<void> {
  const rec = await db.selectFrom('data_records').select((eb) => eb.fn.countAll<string>().as('n')).where('customer_id', '=', seeded.customerId).executeTakeFirstOrThrow();
  const altered = await db.selectFrom('data_records').select((eb) => eb.fn.countAll<string>().as('n')).where('customer_id', '=', seeded.customerId).where('version', '=', 99).executeTakeFirstOrThrow();
  const files = await db.selectFrom('data_files').select(['blob_key', 'size']).where('customer_id', '=', seeded.customerId).execute();
  const bytes = files.reduce((n, f) => n + Number(f.size), 0);
  if (Number(rec.n) !== seeded.records || Number(altered.n) !== 0 || files.length !== seeded.files || bytes !== seeded.fileBytes) {
    throw new Error(`restore check failed: ${rec.n} records (${altered.n} still altered), ${files.length} files / ${bytes} bytes; expected ${seeded.records}, ${seeded.files} / ${seeded.fileBytes}`);
  }
  for (const f of files) {
    const info = await live.head(f.blob_key);
    if (!info || info.size !== Number(f.size)) throw new Error(`restore check failed: blob ${f.blob_key} missing or of the wrong size`);
  }
}

async function measureHokan(db: Db, settings: BackupSettings, live: LocalDirectoryStore, seeded: SeededCustomer, profiled: boolean): Promise<HokanRun> {
  const observed = new ObservedStore(live);
  const deps: BackupDeps = { db, clock: systemClock, live: observed, settings, instanceId: 'bench' };
  const sampler = new RssSampler(50, databasePid);

  const profiler = new PhaseProfiler();
  const s1 = await settleDatabase(db, false);
  if (s1) notSettled.add(s1);
  // Each phase starts from live memory, not from garbage the set-up left (see collectGarbage).
  gcForced = (await collectGarbage()) && gcForced;
  const rssBeforeBackup = process.memoryUsage.rss();
  if (profiled) await profiler.start();
  sampler.start();
  const t0 = performance.now();
  const backup = await timePhase(() => runBackup(deps, seeded.customerId));
  const backupRss = sampler.stop();
  if (profiled) reportProfile('backup', await profiler.stop(resultsPath('backup-backup').replace(/\.json$/, '.cpuprofile')));
  const firstGet = observed.firstGetAt ?? performance.now();
  const row = backup.value;
  if (row.state !== 'good') throw new Error(`backup ended ${row.state}`);

  await damageLiveData(db, live, seeded.customerId);
  const s2 = await settleDatabase(db, true);
  if (s2) notSettled.add(s2);

  const phaseStart: Partial<Record<RestoreProgress['phase'], number>> = {};
  gcForced = (await collectGarbage()) && gcForced;
  const rssBeforeRestore = process.memoryUsage.rss();
  if (profiled) await profiler.start();
  sampler.start();
  const r0 = performance.now();
  const restore = await timePhase(() =>
    restoreCustomer(
      { db, clock: systemClock, settings, live },
      {
        backupId: row.id,
        actor,
        onProgress: (p) => {
          phaseStart[p.phase] ??= performance.now();
        },
      },
    ),
  );
  const r1 = performance.now();
  const restoreRss = sampler.stop();
  if (profiled) reportProfile('restore', await profiler.stop(resultsPath('backup-restore').replace(/\.json$/, '.cpuprofile')));
  await checkRestored(db, live, seeded);

  const order: Array<RestoreProgress['phase']> = ['manifest', 'records', 'files', 'cleanup', 'done'];
  const restorePhasesS: Record<string, number> = {};
  order.forEach((ph, i) => {
    const start = phaseStart[ph];
    if (start === undefined || ph === 'done') return;
    const next = order.slice(i + 1).map((n) => phaseStart[n]).find((v) => v !== undefined) ?? r1;
    restorePhasesS[ph] = (next - start) / 1000;
  });
  restorePhasesS.setup = ((phaseStart.manifest ?? r0) - r0) / 1000;

  return {
    backupS: backup.seconds,
    backupCpuS: backup.cpuSeconds,
    backupRecordsS: (firstGet - t0) / 1000,
    backupFilesS: backup.seconds - (firstGet - t0) / 1000,
    plainBytes: Number(row.plain_bytes),
    storedBytes: Number(row.stored_bytes),
    rssBeforeBackup,
    backupPeak: backupRss.peakBytes,
    backupHwm: backupRss.hwmBytes,
    backupMem: backupRss,
    restoreS: restore.seconds,
    restoreCpuS: restore.cpuSeconds,
    restorePhasesS,
    rssBeforeRestore,
    restorePeak: restoreRss.peakBytes,
    restoreHwm: restoreRss.hwmBytes,
    databaseProcessPeak: Math.max(backupRss.databaseProcessPeakBytes ?? 0, restoreRss.databaseProcessPeakBytes ?? 0) || null,
    restoreMem: restoreRss,
  };
}

function reportProfile(phase: string, p: Parameters<typeof renderSelfTimes>[1]): void {
  process.stderr.write(`\n${renderSelfTimes(`CPU profile of the ${phase}`, p)}`);
}

interface SizeResult {
  seeded: SeededCustomer;
  exp: Omit<Export, 'dir'>;
  baselines: Baseline[];
  runs: HokanRun[];
}

async function measureSize(db: Db, settings: BackupSettings, live: LocalDirectoryStore, tmp: string, seeded: SeededCustomer, label: string, repeat: number): Promise<SizeResult> {
  const exportDir = path.join(tmp, `export-${label}`);
  log(`${label}: plain export (untimed)`);
  const exp = await exportPlain(db, live.root, seeded.customerId, exportDir);
  const baselines: Baseline[] = [];
  const runs: HokanRun[] = [];
  for (let i = 0; i < repeat; i++) {
    const tag = repeat > 1 ? ` (${i + 1}/${repeat})` : '';
    log(`${label}: tar baseline${tag}`);
    const tar = await measureBaseline(tmp, exp);
    baselines.push({ ...tar, plainDbLoadS: await plainDbLoad(db, exp, seeded.customerId) });
    log(`${label}: hokan backup + restore${tag}`);
    runs.push(await measureHokan(db, settings, live, seeded, profile && label === 'large' && i === 0));
  }
  removeTree(exportDir);
  const { dir: _dir, ...rest } = exp;
  return { seeded, exp: rest, baselines, runs };
}

interface Summary {
  data_mb: number;
  records: number;
  files: number;
  stored_mb: number;
  /** What hokan's backup row says it read (records as hokan serialises them + files). */
  hokan_plain_mb: number;
  baseline_mb_s: number;
  backup_mb_s: number;
  backup_ratio: number;
  restore_baseline_mb_s: number;
  restore_mb_s: number;
  restore_ratio: number;
  peak_rss_mb: number;
  peak_rss_hwm_mb: number | null;
  /** PGlite's own process over backup + restore (not hokan's, as a PostgreSQL server's is not); null on PostgreSQL. */
  database_process_peak_rss_mb: number | null;
  rss_before_mb: number;
  backup_added_rss_mb: number;
  /** Largest rise of RSS within one phase (backup: from just before it; restore: from just before it). */
  phase_added_rss_mb: number;
}

type RunTimes = Record<'tar_czf_s' | 'tar_xzf_s' | 'plain_db_load_s' | 'backup_s' | 'restore_s' | 'restore_records_s', number>;

function summarize(r: SizeResult): Summary & { detail: Record<string, number | null>; runs: RunTimes[] } {
  const dataBytes = r.exp.ndjsonBytes + r.exp.fileBytes;
  const dataMb = mb(dataBytes);
  const m = (f: (x: HokanRun) => number) => median(r.runs.map(f));
  const b = (f: (x: Baseline) => number) => median(r.baselines.map(f));
  const tarC = b((x) => x.tarCreateS);
  const tarX = b((x) => x.tarExtractS);
  const backupS = m((x) => x.backupS);
  const restoreS = m((x) => x.restoreS);
  const peak = Math.max(...r.runs.map((x) => Math.max(x.backupPeak, x.restorePeak)));
  const hwms = r.runs.flatMap((x) => [x.backupHwm, x.restoreHwm]).filter((x): x is number => x !== null);
  const before = Math.min(...r.runs.map((x) => x.rssBeforeBackup));
  const recMb = mb(r.exp.ndjsonBytes);
  const fileMb = mb(r.exp.fileBytes);
  const phase = (name: string) => median(r.runs.map((x) => x.restorePhasesS[name] ?? 0));
  const hokanPlain = median(r.runs.map((x) => x.plainBytes));
  if (hokanPlain !== dataBytes) {
    // Same rows and files; hokan's own NDJSON serialiser may write the records differently (e.g. the
    // database's JSON text with spaces). Throughput is always computed over the plain export's bytes.
    log(`note: hokan's plain bytes (${hokanPlain}) differ from the plain export's (${dataBytes}) by ${(((hokanPlain - dataBytes) / dataBytes) * 100).toFixed(2)} %; MiB/s use the plain export's`);
  }
  return {
    data_mb: round(dataMb, 1),
    records: r.seeded.records,
    files: r.seeded.files,
    stored_mb: round(mb(median(r.runs.map((x) => x.storedBytes))), 1),
    hokan_plain_mb: round(mb(hokanPlain), 1),
    baseline_mb_s: round(dataMb / tarC, 1),
    backup_mb_s: round(dataMb / backupS, 1),
    backup_ratio: round(tarC / backupS, 3),
    restore_baseline_mb_s: round(dataMb / tarX, 1),
    restore_mb_s: round(dataMb / restoreS, 1),
    restore_ratio: round(tarX / restoreS, 3),
    peak_rss_mb: round(mb(peak), 1),
    peak_rss_hwm_mb: hwms.length > 0 ? round(mb(Math.max(...hwms)), 1) : null,
    database_process_peak_rss_mb: r.runs.some((x) => x.databaseProcessPeak !== null) ? round(mb(Math.max(...r.runs.map((x) => x.databaseProcessPeak ?? 0))), 1) : null,
    rss_before_mb: round(mb(before), 1),
    backup_added_rss_mb: round(mb(peak - before), 1),
    // Each repetition's own times, in order, so the spread behind the medians stays visible.
    runs: r.runs.map((x, i) => ({
      tar_czf_s: round(r.baselines[i]!.tarCreateS, 2),
      tar_xzf_s: round(r.baselines[i]!.tarExtractS, 2),
      plain_db_load_s: round(r.baselines[i]!.plainDbLoadS, 2),
      backup_s: round(x.backupS, 2),
      restore_s: round(x.restoreS, 2),
      restore_records_s: round(x.restorePhasesS.records ?? 0, 2),
    })),
    phase_added_rss_mb: round(mb(Math.max(...r.runs.map((x) => Math.max(x.backupPeak - x.rssBeforeBackup, x.restorePeak - x.rssBeforeRestore)))), 1),
    detail: {
      records_mb: round(recMb, 1),
      files_mb: round(fileMb, 1),
      export_s: round(r.exp.seconds, 2),
      tar_czf_s: round(tarC, 2),
      tar_xzf_s: round(tarX, 2),
      tgz_mb: round(mb(b((x) => x.tgzBytes)), 1),
      tgz_fsync_s: round(b((x) => x.tgzFsyncS), 3),
      tar_czf_records_only_s: round(b((x) => x.tarRecordsOnlyS), 2),
      tar_czf_files_only_s: round(b((x) => x.tarFilesOnlyS), 2),
      // Extras that put the DB work hokan does (and tar does not) beside the ratios; not targets.
      backup_ratio_incl_export: round((r.exp.seconds + tarC) / backupS, 3),
      plain_db_load_s: round(b((x) => x.plainDbLoadS), 2),
      restore_ratio_incl_db_load: round((tarX + b((x) => x.plainDbLoadS)) / restoreS, 3),
      backup_s: round(backupS, 2),
      backup_cpu_s: round(m((x) => x.backupCpuS), 2),
      backup_records_s: round(m((x) => x.backupRecordsS), 2),
      backup_files_s: round(m((x) => x.backupFilesS), 2),
      restore_s: round(restoreS, 2),
      restore_cpu_s: round(m((x) => x.restoreCpuS), 2),
      restore_setup_s: round(phase('setup') + phase('manifest'), 2),
      restore_files_s: round(phase('files'), 2),
      restore_records_s: round(phase('records'), 2),
      restore_cleanup_s: round(phase('cleanup'), 2),
      backup_peak_rss_mb: round(mb(Math.max(...r.runs.map((x) => x.backupPeak))), 1),
      restore_peak_rss_mb: round(mb(Math.max(...r.runs.map((x) => x.restorePeak))), 1),
      rss_before_restore_mb: round(mb(Math.min(...r.runs.map((x) => x.rssBeforeRestore))), 1),
      // JS heap and ArrayBuffers (Node Buffers) before → peak:
      backup_heap_used_mb: round(mb(r.runs[0]!.backupMem.before.heapUsed), 1),
      backup_heap_used_peak_mb: round(mb(Math.max(...r.runs.map((x) => x.backupMem.peak.heapUsed))), 1),
      backup_array_buffers_mb: round(mb(r.runs[0]!.backupMem.before.arrayBuffers), 1),
      backup_array_buffers_peak_mb: round(mb(Math.max(...r.runs.map((x) => x.backupMem.peak.arrayBuffers))), 1),
      restore_heap_used_mb: round(mb(r.runs[0]!.restoreMem.before.heapUsed), 1),
      restore_heap_used_peak_mb: round(mb(Math.max(...r.runs.map((x) => x.restoreMem.peak.heapUsed))), 1),
      restore_array_buffers_mb: round(mb(r.runs[0]!.restoreMem.before.arrayBuffers), 1),
      restore_array_buffers_peak_mb: round(mb(Math.max(...r.runs.map((x) => x.restoreMem.peak.arrayBuffers))), 1),
      // V8 "external" memory: Buffers (and WebAssembly memory, none here: PGlite runs in its own process).
      backup_external_mb: round(mb(r.runs[0]!.backupMem.before.external), 1),
      backup_external_peak_mb: round(mb(Math.max(...r.runs.map((x) => x.backupMem.peak.external))), 1),
      restore_external_mb: round(mb(r.runs[0]!.restoreMem.before.external), 1),
      restore_external_peak_mb: round(mb(Math.max(...r.runs.map((x) => x.restoreMem.peak.external))), 1),
      // Peaks in the first / second half of each phase (first run): a second half well above the first means growth.
      backup_rss_half1_mb: round(mb(r.runs[0]!.backupMem.halves.rss[0]), 1),
      backup_rss_half2_mb: round(mb(r.runs[0]!.backupMem.halves.rss[1]), 1),
      backup_heap_half1_mb: round(mb(r.runs[0]!.backupMem.halves.heapUsed[0]), 1),
      backup_heap_half2_mb: round(mb(r.runs[0]!.backupMem.halves.heapUsed[1]), 1),
      restore_rss_half1_mb: round(mb(r.runs[0]!.restoreMem.halves.rss[0]), 1),
      restore_rss_half2_mb: round(mb(r.runs[0]!.restoreMem.halves.rss[1]), 1),
      restore_heap_half1_mb: round(mb(r.runs[0]!.restoreMem.halves.heapUsed[0]), 1),
      restore_heap_half2_mb: round(mb(r.runs[0]!.restoreMem.halves.heapUsed[1]), 1),
    },
  };
}

async function main(): Promise<void> {
  const tmp = makeTempDir('hokan-bench-backup');
  let database: BenchDatabase | null = null;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await database?.close().catch((err: unknown) => log(`closing the database failed: ${String(err)}`));
    if (keep) log(`kept ${tmp}`);
    else removeTree(tmp);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const loadStart = os.loadavg();
  try {
    log(`temp dir ${tmp}; ${config.records} records + ${bigFiles} files of ${FILE_BYTES / 1024} KiB (small run: ${small.records} + ${small.files})`);
    await collectGarbage();
    // This process before any database exists: with PGlite, the difference to rss_before_mb is mostly PGlite.
    const rssNoDb = process.memoryUsage.rss();
    database = await openBenchDatabase(tmp, config.databaseUrl);
    settleKind = database.kind;
    const opened = database;
    databasePid = () => opened.databasePid?.();
    const db = database.db;
    const live = new LocalDirectoryStore({ root: path.join(tmp, 'live-files') });
    const settings = await loadBackupSettings(
      { HOKAN_BACKUP_URL: path.join(tmp, 'backup'), HOKAN_BACKUP_SAME_DEVICE_OK: 'true', HOKAN_MASTER_KEY: 'ab'.repeat(32) },
      { dataDir: path.join(tmp, 'data'), files: live, embedded: database.kind === 'pglite', s3Credentials: {} },
    );

    const seedOne = async (code: string, records: number, files: number, seed: number) => {
      const customer = await createCustomer(db, systemClock, actor, { code, name: `${code} 介護サービス株式会社`, contactEmail: `${code}@example.jp` });
      await createContract(db, systemClock, actor, {
        customerId: customer.id,
        contractNumber: `C-${code}`,
        termStart: '2026-04-01',
        termEnd: '2027-03-31',
        systemUseContractNumber: `SU-${code}`,
        supportContractNumber: `SP-${code}`,
      });
      const t0 = performance.now();
      const seeded = await seedCustomerData(db, systemClock, live, customer.id, { records, files, seed, onProgress: (w) => log(`${code}: ${w}`) });
      log(`${code}: seeded ${records} records + ${files} files in ${fixed((performance.now() - t0) / 1000)} s`);
      return seeded;
    };
    // Both customers exist before anything is measured, so both runs see the same database.
    const seededSmall = await seedOne('bench-small', small.records, small.files, 2);
    const seededBig = await seedOne('bench-large', config.records, bigFiles, 1);

    const smallResult = summarize(await measureSize(db, settings, live, tmp, seededSmall, 'small', 1));
    const bigResult = summarize(await measureSize(db, settings, live, tmp, seededBig, 'large', config.repeat));
    const loadEnd = os.loadavg();

    // "Not growing": within each phase, 4× the data must not add much more memory than ¼ of it did.
    const addedBig = bigResult.phase_added_rss_mb;
    const addedSmall = smallResult.phase_added_rss_mb;
    const flat = addedBig <= Math.max(addedSmall, 0) * FLAT_FACTOR + FLAT_SLACK_MB;
    const pass = {
      backup_ratio: bigResult.backup_ratio >= TARGET_RATIO,
      restore_ratio: bigResult.restore_ratio >= TARGET_RATIO,
      peak_rss_mb: bigResult.peak_rss_mb < TARGET_RSS_MB,
      backup_added_rss_mb: bigResult.backup_added_rss_mb < TARGET_RSS_MB,
      rss_flat: flat,
    };
    const d = bigResult.detail;
    const n = (key: string, digits = 1) => fixed(d[key] ?? Number.NaN, digits);
    const rows: Row[] = [
      { metric: 'data_mb (records NDJSON + files)', value: fixed(bigResult.data_mb) },
      { metric: '  records / files', value: `${bigResult.records} / ${bigResult.files}` },
      { metric: '  records_mb / files_mb', value: `${n('records_mb')} / ${n('files_mb')}` },
      { metric: 'stored_mb (hokan, encrypted) / tar.gz', value: `${fixed(bigResult.stored_mb)} / ${n('tgz_mb')}` },
      { metric: 'baseline_mb_s (tar -czf)', value: fixed(bigResult.baseline_mb_s) },
      { metric: 'backup_mb_s (runBackup)', value: fixed(bigResult.backup_mb_s) },
      { metric: 'backup_ratio', value: fixed(bigResult.backup_ratio, 2), target: `≥ ${TARGET_RATIO}`, verdict: verdict(pass.backup_ratio) },
      { metric: 'restore_baseline_mb_s (tar -xzf)', value: fixed(bigResult.restore_baseline_mb_s) },
      { metric: 'restore_mb_s (restoreCustomer)', value: fixed(bigResult.restore_mb_s) },
      { metric: 'restore_ratio', value: fixed(bigResult.restore_ratio, 2), target: `≥ ${TARGET_RATIO}`, verdict: verdict(pass.restore_ratio) },
      { metric: 'rss_without_database_mb (before the DB opened)', value: fixed(mb(rssNoDb)) },
      { metric: 'rss_before_mb (just before the backup)', value: fixed(bigResult.rss_before_mb) },
      ...(bigResult.database_process_peak_rss_mb !== null ? [{ metric: 'database_process_peak_rss_mb (PGlite, untargeted)', value: fixed(bigResult.database_process_peak_rss_mb) }] : []),
      { metric: 'peak_rss_mb (backup + restore)', value: fixed(bigResult.peak_rss_mb), target: `< ${TARGET_RSS_MB}`, verdict: verdict(pass.peak_rss_mb) },
      { metric: 'backup_added_rss_mb (peak − rss_before)', value: fixed(bigResult.backup_added_rss_mb), target: `< ${TARGET_RSS_MB}`, verdict: verdict(pass.backup_added_rss_mb) },
      { metric: `peak_rss_mb_small (¼: ${fixed(smallResult.data_mb)} MiB)`, value: fixed(smallResult.peak_rss_mb) },
      { metric: 'per-phase added RSS, large vs small', value: `${fixed(addedBig)} vs ${fixed(addedSmall)}`, target: `≤ ${FLAT_FACTOR}×small+${FLAT_SLACK_MB}`, verdict: verdict(flat) },
      { metric: '  backup: RSS / JS heap (before → peak)', value: `${fixed(bigResult.rss_before_mb)} → ${n('backup_peak_rss_mb')} / ${n('backup_heap_used_mb')} → ${n('backup_heap_used_peak_mb')}` },
      { metric: '  restore: RSS / JS heap (before → peak)', value: `${n('rss_before_restore_mb')} → ${n('restore_peak_rss_mb')} / ${n('restore_heap_used_mb')} → ${n('restore_heap_used_peak_mb')}` },
      { metric: '  RSS peak 1st / 2nd half: backup; restore', value: `${n('backup_rss_half1_mb')} / ${n('backup_rss_half2_mb')}; ${n('restore_rss_half1_mb')} / ${n('restore_rss_half2_mb')}` },
      { metric: '  Buffers: backup / restore (before → peak)', value: `${n('backup_array_buffers_mb')} → ${n('backup_array_buffers_peak_mb')} / ${n('restore_array_buffers_mb')} → ${n('restore_array_buffers_peak_mb')}` },
      { metric: '  external (Buffers, WASM): backup / restore', value: `${n('backup_external_mb')} → ${n('backup_external_peak_mb')} / ${n('restore_external_mb')} → ${n('restore_external_peak_mb')}` },
      { metric: 'seconds: tar -czf all / records / files', value: `${n('tar_czf_s', 2)} / ${n('tar_czf_records_only_s', 2)} / ${n('tar_czf_files_only_s', 2)}` },
      { metric: 'seconds: backup all / records / files', value: `${n('backup_s', 2)} / ${n('backup_records_s', 2)} / ${n('backup_files_s', 2)}` },
      { metric: 'seconds: backup CPU (all threads of this process)', value: n('backup_cpu_s', 2) },
      { metric: 'seconds: plain export DB → NDJSON (untimed)', value: n('export_s', 2) },
      { metric: '  backup ratio if tar had to export too', value: n('backup_ratio_incl_export', 2) },
      { metric: 'seconds: tar -xzf', value: n('tar_xzf_s', 2) },
      { metric: 'seconds: restore all / files / records / cleanup', value: `${n('restore_s', 2)} / ${n('restore_files_s', 2)} / ${n('restore_records_s', 2)} / ${n('restore_cleanup_s', 2)}` },
      { metric: 'seconds: plain DB load of the NDJSON (untimed)', value: n('plain_db_load_s', 2) },
      { metric: '  restore ratio if tar had to load the DB too', value: n('restore_ratio_incl_db_load', 2) },
    ];
    const pglite = database.kind === 'pglite';
    const footer = [
      `database: ${database.label}; ${os.cpus().length} CPUs; load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} → ${loadEnd.map((x) => x.toFixed(2)).join(' ')}; large run ×${config.repeat} (medians)`,
      'MB = MiB. A ratio is baseline time / hokan time over the same bytes: ≥ 1 means hokan is faster.',
      'tar -czf runs one gzip thread over everything, files included; hokan gzips only the records,',
      'encrypts everything (AES-256-GCM), checks every SHA-256 and fsyncs every object; tar does not fsync.',
      'The baselines leave out the database work hokan has to do: reading the records (backup) and',
      'writing them back with their indexes (restore). The two "if tar had to…" rows add it, untargeted.',
      pglite
        ? 'RSS is this process only: PGlite runs in a process of its own (decision 0029), as a PostgreSQL server does.'
        : 'RSS is this process only (the PostgreSQL server is a separate process).',
      pglite ? `The PGlite process peaked at ${bigResult.database_process_peak_rss_mb ?? 'n/a'} MiB (its shared buffers, caches and WebAssembly code; untargeted, like the server's).` : '',
      'JS heap peaks include garbage not yet collected: V8 lets the heap grow with the allocation rate.',
      notSettled.size > 0
        ? `WARNING: ${[...notSettled].join('; ')}`
        : pglite
          ? 'The database is settled before each measured phase (untimed): CHECKPOINT (PGlite is not vacuumed: it never vacuums on its own).'
          : 'The database is settled before each measured phase (untimed): CHECKPOINT, and after the damage VACUUM (ANALYZE), as autovacuum would have run by the time a bad day is restored.',
      gcForced ? 'A full GC runs before each measured phase, so "before" figures are live memory, not set-up garbage.' : 'WARNING: no GC could be forced before the phases; "before" figures include garbage.',
      `Kernel high-water mark over the phases (catches spikes between the 50 ms samples): ${bigResult.peak_rss_hwm_mb ?? 'n/a'} MiB.`,
      profile ? 'PROFILED RUN (--profile): the large run ran under the CPU profiler; its times are slower than normal.' : '',
    ].filter((l) => l !== '');
    process.stdout.write(`\n${renderTable(`hokan backup benchmark — ${fixed(bigResult.data_mb)} MiB, ${bigResult.records} records, ${bigResult.files} files`, rows, footer)}`);

    const { detail: smallDetail, runs: smallRuns, ...smallSummary } = smallResult;
    const { detail, runs, ...summary } = bigResult;
    const file = writeResults('backup', {
      config: { records: config.records, file_mb: config.fileMb, file_kib: FILE_BYTES / 1024, repeat: config.repeat, database: database.kind, small, profiled: profile, gc_before_phases: gcForced, database_settled: notSettled.size === 0 },
      ...summary,
      peak_rss_mb_small: smallResult.peak_rss_mb,
      rss_without_database_mb: round(mb(rssNoDb), 1),
      backup_added_rss_mb_small: smallResult.backup_added_rss_mb,
      phase_added_rss_mb_small: smallResult.phase_added_rss_mb,
      targets: {
        backup_ratio: { min: TARGET_RATIO, pass: pass.backup_ratio },
        restore_ratio: { min: TARGET_RATIO, pass: pass.restore_ratio },
        peak_rss_mb: { max: TARGET_RSS_MB, pass: pass.peak_rss_mb },
        backup_added_rss_mb: { max: TARGET_RSS_MB, pass: pass.backup_added_rss_mb },
        rss_not_growing: { rule: `phase_added_rss_mb (large) ≤ ${FLAT_FACTOR} × phase_added_rss_mb (small) + ${FLAT_SLACK_MB}`, pass: pass.rss_flat },
      },
      detail,
      runs,
      small: { ...smallSummary, detail: smallDetail, runs: smallRuns },
      load_average: { start: loadStart.map((x) => round(x, 2)), end: loadEnd.map((x) => round(x, 2)) },
    });
    log(`wrote ${path.relative(process.cwd(), file)}`);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
