import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { HokanError } from '../errors.js';

/**
 * PGlite is PostgreSQL without a server, run by whichever process opens it (in a child process of
 * its own, decision 0029): two processes opening one data directory each believe
 * they own it, and the second one's writes are invisible to the first and can corrupt the files
 * (seen: `hokan backup restore` beside a running `npm start` reported success, and the server went
 * on serving the old rows). A lock file in the data directory lets one process in at a time
 * (decision 0027).
 *
 * A lock is stale, and taken over, when its holder is known to be gone: on the same machine and
 * boot, its pid is not running or is now another process (a container restarted as pid 1 again);
 * anywhere (another container sharing the volume, whose pids mean nothing here), when the holder
 * has not refreshed the file's time for STALE_AFTER_MS.
 */
export interface DataDirLock {
  readonly path: string;
  /**
   * Names a process that writes the directory for the holder (the embedded database's own
   * process, decision 0029): while it runs, the lock is not stale even if the holder is gone,
   * since it goes on writing until it has noticed.
   */
  addHelper(pid: number): void;
  release(): void;
}

interface HelperRecord {
  pid: number;
  startTicks: string | null;
}

interface LockRecord {
  pid: number;
  host: string;
  bootId: string | null;
  /** The holder's start time in clock ticks since boot (/proc/PID/stat), to tell a reused pid. */
  startTicks: string | null;
  nonce: string;
  since: string;
  command: string;
  helpers?: HelperRecord[];
}

const HEARTBEAT_MS = 10_000;
/**
 * The heartbeat runs on a thread of its own: a synchronous stretch of the main thread longer than
 * STALE_AFTER_MS (PGlite's statements were one, when it ran in this process) would otherwise stop
 * the heartbeat, and another process would take over a lock whose holder is still writing.
 */
const HEARTBEAT_THREAD = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
setInterval(() => {
  const now = new Date();
  try { fs.utimesSync(workerData.lockPath, now, now); } catch { /* gone or unwritable: the next opening decides */ }
}, workerData.everyMs);
`;
export const STALE_AFTER_MS = 35_000;
/** Locks this process holds, by nonce: a second opening from this process is refused too. */
const heldHere = new Set<string>();

export function lockDataDir(dataDir: string, opts: { heartbeatMs?: number } = {}): DataDirLock {
  const r = tryLock(dataDir, opts);
  if ('error' in r) throw r.error;
  return r;
}

/**
 * As lockDataDir, but a holder that is gone while its database process is still closing (it
 * noticed within a second or so, and a close is a checkpoint) is waited for, up to `waitMs`,
 * instead of refused: a command run just after the server was killed gets in once it is done.
 */
export async function acquireDataDirLock(dataDir: string, opts: { heartbeatMs?: number; waitMs?: number } = {}): Promise<DataDirLock> {
  const deadline = Date.now() + (opts.waitMs ?? HELPER_WAIT_MS);
  for (;;) {
    const r = tryLock(dataDir, opts);
    if (!('error' in r)) return r;
    if (!r.helpersOnly || Date.now() >= deadline) throw r.error;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const HELPER_WAIT_MS = 25_000;

function tryLock(dataDir: string, opts: { heartbeatMs?: number }): DataDirLock | { error: HokanError; helpersOnly: boolean } {
  const lockPath = path.join(dataDir, 'hokan.lock');
  const mine: LockRecord = {
    pid: process.pid,
    host: os.hostname(),
    bootId: bootId(),
    startTicks: startTicks(process.pid),
    nonce: randomBytes(12).toString('hex'),
    since: new Date().toISOString(),
    command: process.argv.slice(2).join(' '),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (create(lockPath, mine)) return held(lockPath, mine, opts.heartbeatMs ?? HEARTBEAT_MS);
    const holder = readLock(lockPath);
    if (holder === undefined) continue; // removed meanwhile: try again
    const state = lockState(lockPath, holder);
    if (state === 'helpers') return { error: stillClosing(dataDir, lockPath, holder), helpersOnly: true };
    if (state !== 'stale') return { error: inUse(dataDir, lockPath, holder), helpersOnly: false };
    takeOver(lockPath, holder);
  }
  return { error: inUse(dataDir, lockPath, readLock(lockPath) ?? null), helpersOnly: false };
}

/** Creates the lock with its content in one step (link of a finished temp file): never seen half-written. */
function create(lockPath: string, record: LockRecord): boolean {
  const tmp = `${lockPath}.${record.nonce}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  try {
    fs.linkSync(tmp, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function held(lockPath: string, record: LockRecord, everyMs: number): DataDirLock {
  heldHere.add(record.nonce);
  const heartbeat = new Worker(HEARTBEAT_THREAD, { eval: true, workerData: { lockPath, everyMs } });
  heartbeat.unref();
  heartbeat.on('error', () => {}); // a failed heartbeat only lets the lock age; never the process's end
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    void heartbeat.terminate();
    heldHere.delete(record.nonce);
    process.off('exit', release);
    // Only this holder's own record is removed, never a lock another process has taken since.
    if (readLock(lockPath)?.nonce === record.nonce) fs.rmSync(lockPath, { force: true });
  };
  const addHelper = (pid: number) => {
    if (released) return;
    // The last few only: a database process started again after a crash replaces its predecessor.
    record.helpers = [...(record.helpers ?? []).filter((h) => pidRunning(h.pid)), { pid, startTicks: startTicks(pid) }].slice(-4);
    // Rewritten by rename, so a reader sees the old record or the new one, never half of one.
    const tmp = `${lockPath}.${record.nonce}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    if (readLock(lockPath)?.nonce === record.nonce) fs.renameSync(tmp, lockPath);
    else fs.rmSync(tmp, { force: true });
  };
  // A process that ends without closing the database still leaves the directory free.
  process.on('exit', release);
  return { path: lockPath, addHelper, release };
}

/** The lock's record; null when unreadable (written by hand, or damaged); undefined when gone. */
function readLock(lockPath: string): LockRecord | null | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(lockPath, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(raw) as Partial<LockRecord> & { helpers?: unknown };
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string' || typeof parsed.nonce !== 'string') return null;
    // Helpers as written by addHelper; anything else in that place (a hand edit) names no process.
    const helpers = Array.isArray(parsed.helpers)
      ? parsed.helpers.flatMap((h: unknown) => {
          const x = h as Partial<HelperRecord> | null;
          return typeof x?.pid === 'number' && Number.isInteger(x.pid) && x.pid > 0 ? [{ pid: x.pid, startTicks: typeof x.startTicks === 'string' ? x.startTicks : null }] : [];
        })
      : [];
    return { ...(parsed as LockRecord), helpers };
  } catch {
    return null;
  }
}

/** 'held' by a live holder; 'helpers' when the holder is gone but a process it named still runs; 'stale'. */
function lockState(lockPath: string, holder: LockRecord | null): 'held' | 'helpers' | 'stale' {
  if (holder && heldHere.has(holder.nonce)) return 'held';
  let ageMs: number;
  try {
    ageMs = Date.now() - fs.statSync(lockPath).mtimeMs;
  } catch {
    return 'stale';
  }
  // Only on this machine and boot do the holder's pid and start time mean something here.
  const local = holder !== null && holder.host === os.hostname() && holder.bootId !== null && holder.bootId === bootId();
  if (local) {
    const alive = (pid: number, ticksThen: string | null) => {
      if (!pidRunning(pid)) return false;
      const ticks = startTicks(pid);
      return ticksThen === null || ticks === null || ticks === ticksThen;
    };
    // A helper that runs holds the directory whatever the lock's age: a gone holder's heartbeat
    // has stopped, while its database process may still be in a long statement or its close.
    if ((holder.helpers ?? []).some((h) => alive(h.pid, h.startTicks))) {
      return alive(holder.pid, holder.startTicks) ? 'held' : 'helpers';
    }
    if (ageMs > STALE_AFTER_MS) return 'stale';
    return alive(holder.pid, holder.startTicks) ? 'held' : 'stale';
  }
  return ageMs > STALE_AFTER_MS ? 'stale' : 'held';
}

/** Moves the stale lock aside and checks it was the one judged stale; another taker's is put back. */
function takeOver(lockPath: string, judged: LockRecord | null): void {
  const aside = `${lockPath}.${randomBytes(6).toString('hex')}.stale`;
  try {
    fs.renameSync(lockPath, aside);
  } catch {
    return; // already moved by another taker
  }
  const moved = readLock(aside);
  if (judged !== null && moved?.nonce !== judged.nonce) {
    // Someone else took over between our read and our rename: theirs goes back.
    try {
      fs.linkSync(aside, lockPath);
    } catch {
      // A third lock is in place: it decides.
    }
  }
  fs.rmSync(aside, { force: true });
}

function pidRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // An ended process whose parent has not reaped it yet (an orphan waits for init) still answers
  // signal 0, but it writes nothing any more.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function bootId(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function startTicks(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the command name, which may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The holder is gone, but its database process has not finished closing the directory. */
function stillClosing(dataDir: string, lockPath: string, holder: LockRecord | null): HokanError {
  const pids = (holder?.helpers ?? []).map((h) => h.pid).join(', ');
  return new HokanError('conflict', {
    ja: `組み込みデータベース ${dataDir} を使っていたプロセス ${holder?.pid ?? ''} は終了しましたが、そのデータベースプロセス（${pids}）がまだ終了処理中です。終了してから、もう一度実行してください（ロック ${lockPath}）。`,
    en: `the process ${holder?.pid ?? ''} that held the embedded database ${dataDir} has ended, but its database process (${pids}) is still closing the directory. Run this again once it has exited (lock ${lockPath}).`,
  });
}

function inUse(dataDir: string, lockPath: string, holder: LockRecord | null): HokanError {
  const who = holder ? `process ${holder.pid} on ${holder.host} (${holder.command || 'hokan'}, since ${holder.since})` : 'another process';
  const wait = Math.round(STALE_AFTER_MS / 1000);
  return new HokanError('conflict', {
    ja: `組み込みデータベース ${dataDir} は別のプロセスが使用中です（${who}）。組み込みデータベースは同時に1つのプロセスしか開けません。サーバーを止めてから実行するか、サーバーの運用コンソール（/console/backups など）から操作してください。そのプロセスが止まっていれば、ロック ${lockPath} は${wait}秒後に無効になります。`,
    en: `the embedded database ${dataDir} is in use by ${who}. The embedded database opens in one process at a time: stop the server first, or do this from its operator console (e.g. /console/backups), or use PostgreSQL (DATABASE_URL) to run commands beside the server. If that process has stopped, its lock ${lockPath} expires ${wait} s after its last heartbeat.`,
  });
}
