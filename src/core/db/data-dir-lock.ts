import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HokanError } from '../errors.js';

/**
 * PGlite is PostgreSQL inside this process: two processes opening one data directory each believe
 * they own it, and the second one's writes are invisible to the first and can corrupt the files
 * (seen: `hokan backup restore` beside a running `npm start` reported success, and the server went
 * on serving the old rows). A lock file beside the data directory lets one process in at a time
 * (decision 0027). A lock whose process is gone (killed) is taken over.
 */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

interface LockRecord {
  pid: number;
  host: string;
  since: string;
  command: string;
}

export function lockDataDir(dataDir: string): DataDirLock {
  const lockPath = path.join(dataDir, 'hokan.lock');
  const mine: LockRecord = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), command: process.argv.slice(2).join(' ') };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, `${JSON.stringify(mine)}\n`, { flag: 'wx', mode: 0o600 });
      const release = () => {
        process.off('exit', release);
        try {
          if (readLock(lockPath)?.pid === process.pid) fs.unlinkSync(lockPath);
        } catch {
          // Already gone: nothing to release.
        }
      };
      // A process that ends without closing the database still leaves the directory free.
      process.on('exit', release);
      return { path: lockPath, release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(lockPath);
    if (holder && isRunning(holder)) throw inUse(dataDir, lockPath, holder);
    // Stale (its process is gone) or unreadable (cut off while written): taken over once.
    fs.rmSync(lockPath, { force: true });
  }
  throw inUse(dataDir, lockPath, readLock(lockPath));
}

function readLock(lockPath: string): LockRecord | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(lockPath, 'utf8')) as Partial<LockRecord>;
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? (parsed as LockRecord) : null;
  } catch {
    return null;
  }
}

function isRunning(holder: LockRecord): boolean {
  // A lock from another machine (a data directory on shared storage) cannot be checked: it holds.
  if (holder.host !== os.hostname()) return true;
  if (holder.pid === process.pid) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function inUse(dataDir: string, lockPath: string, holder: LockRecord | null): HokanError {
  const who = holder ? `process ${holder.pid} on ${holder.host} (${holder.command || 'hokan'}, since ${holder.since})` : 'another process';
  return new HokanError('conflict', {
    ja: `組み込みデータベース ${dataDir} は別のプロセスが使用中です（${who}）。組み込みデータベースは同時に1つのプロセスしか開けません。サーバーを止めてから実行するか、サーバーの運用コンソール（/console/backups など）から操作してください。そのプロセスが動いていなければ ${lockPath} を削除してください。`,
    en: `the embedded database ${dataDir} is in use by ${who}. The embedded database opens in one process at a time: stop the server first, or do this from its operator console (e.g. /console/backups), or use PostgreSQL (DATABASE_URL) to run commands beside the server. If that process is not running, delete ${lockPath}.`,
  });
}
