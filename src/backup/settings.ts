import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LocalDirectoryStore, onSameDevice, parseBlobStoreUrl, type BlobStore } from '../storage/index.js';
import { generateDataKey, keyFingerprint, parseMasterKey } from './crypto/index.js';

/** Backup configuration, read from the environment beside the core Config. */
export interface BackupSettings {
  /** R10.2: the separate medium. Null when not configured: backups do not run, and start-up says so. */
  primary: BlobStore | null;
  /** R10.3: the remote site. */
  offsite: BlobStore | null;
  masterKey: Buffer;
  masterKeyFingerprint: string;
  /** Where the master key came from, for the start-up message; never the key. */
  masterKeySource: string;
  /**
   * work_mem for a restore's joins, which hash a whole customer's keys. PostgreSQL's server has room
   * for 64 MB; the embedded database's memory is hokan's own, so it gets 16 MB, and larger
   * customers' joins spill to disk instead of growing the process (decisions 0026, 0028).
   */
  restoreWorkMem: '64MB' | '16MB';
  dailyAtJstHour: number;
  offsiteCycleDays: number;
  retainDaily: number;
  retainWeekly: number;
  purgeGraceHours: number;
  /** R10.6: how long an open migration request may hold the purge after the contract ended. */
  migrationHoldDays: number;
}

export class BackupConfigError extends Error {
  override readonly name = 'BackupConfigError';
}

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const envSchema = z.object({
  HOKAN_BACKUP_URL: z.string().min(1).optional(),
  HOKAN_OFFSITE_URL: z.string().min(1).optional(),
  HOKAN_MASTER_KEY: z.string().min(1).optional(),
  HOKAN_BACKUP_SAME_DEVICE_OK: bool.default(false),
  HOKAN_BACKUP_HOUR_JST: z.coerce.number().int().min(0).max(23).default(2),
  HOKAN_OFFSITE_CYCLE_DAYS: z.coerce.number().int().min(1).max(90).default(7),
  HOKAN_BACKUP_RETAIN_DAILY: z.coerce.number().int().min(1).max(366).default(14),
  HOKAN_BACKUP_RETAIN_WEEKLY: z.coerce.number().int().min(0).max(520).default(8),
  HOKAN_PURGE_GRACE_HOURS: z.coerce.number().min(0).max(24 * 30).default(24),
  HOKAN_MIGRATION_HOLD_DAYS: z.coerce.number().int().min(0).max(365).default(30),
});

async function localRoot(store: BlobStore): Promise<string | null> {
  return store instanceof LocalDirectoryStore ? store.root : null;
}

/**
 * Reads and checks the backup settings. R10.2: a directory target on the same filesystem device
 * as the live data is not a separate medium, and is refused unless the development override
 * HOKAN_BACKUP_SAME_DEVICE_OK=true is set.
 */
export async function loadBackupSettings(
  env: NodeJS.ProcessEnv,
  live: { dataDir: string; files: BlobStore; embedded: boolean; s3Credentials: { accessKeyId?: string; secretAccessKey?: string } },
): Promise<BackupSettings> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) throw new BackupConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const e = parsed.data;

  let masterKey: Buffer;
  let masterKeySource: string;
  if (e.HOKAN_MASTER_KEY) {
    try {
      masterKey = parseMasterKey(e.HOKAN_MASTER_KEY);
    } catch (err) {
      throw new BackupConfigError(`HOKAN_MASTER_KEY: ${(err as Error).message}`);
    }
    masterKeySource = 'HOKAN_MASTER_KEY';
  } else if (live.embedded) {
    // Embedded (development) mode keeps a generated key beside the data; production sets HOKAN_MASTER_KEY.
    const file = path.join(live.dataDir, 'master.key');
    if (!fs.existsSync(file)) {
      fs.mkdirSync(live.dataDir, { recursive: true });
      fs.writeFileSync(file, `${generateDataKey().toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    }
    masterKey = parseMasterKey(fs.readFileSync(file, 'utf8').trim());
    masterKeySource = `${file} (generated; set HOKAN_MASTER_KEY in production)`;
  } else {
    throw new BackupConfigError('HOKAN_MASTER_KEY is required with DATABASE_URL: 32 bytes as 64 hex characters or base64 (e.g. `openssl rand -hex 32`).');
  }

  const primary = e.HOKAN_BACKUP_URL ? parseBlobStoreUrl(e.HOKAN_BACKUP_URL, live.s3Credentials) : null;
  const offsite = e.HOKAN_OFFSITE_URL ? parseBlobStoreUrl(e.HOKAN_OFFSITE_URL, live.s3Credentials) : null;
  const liveRoots = [live.dataDir, await localRoot(live.files)].filter((x): x is string => x !== null);
  for (const [name, target] of [['HOKAN_BACKUP_URL', primary], ['HOKAN_OFFSITE_URL', offsite]] as const) {
    const root = target ? await localRoot(target) : null;
    if (!root) continue;
    for (const liveRoot of liveRoots) {
      if (path.resolve(root).startsWith(path.resolve(liveRoot) + path.sep) || path.resolve(root) === path.resolve(liveRoot)) {
        throw new BackupConfigError(`${name} (${root}) lies inside the live data (${liveRoot}); a backup must be kept apart from the data it protects (R10.2).`);
      }
      if (!e.HOKAN_BACKUP_SAME_DEVICE_OK && (await onSameDevice(root, liveRoot))) {
        throw new BackupConfigError(
          `${name} (${root}) is on the same filesystem device as the live data (${liveRoot}): that is not a separate medium (R10.2). ` +
            'Point it at another disk or at S3-compatible storage, or set HOKAN_BACKUP_SAME_DEVICE_OK=true for development only.',
        );
      }
    }
  }
  return {
    primary,
    offsite,
    masterKey,
    masterKeyFingerprint: keyFingerprint(masterKey),
    masterKeySource,
    restoreWorkMem: live.embedded ? '16MB' : '64MB',
    dailyAtJstHour: e.HOKAN_BACKUP_HOUR_JST,
    offsiteCycleDays: e.HOKAN_OFFSITE_CYCLE_DAYS,
    retainDaily: e.HOKAN_BACKUP_RETAIN_DAILY,
    retainWeekly: e.HOKAN_BACKUP_RETAIN_WEEKLY,
    purgeGraceHours: e.HOKAN_PURGE_GRACE_HOURS,
    migrationHoldDays: e.HOKAN_MIGRATION_HOLD_DAYS,
  };
}
