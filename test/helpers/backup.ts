import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBackupSettings, type BackupSettings } from '../../src/backup/settings.js';
import type { BackupDeps } from '../../src/backup/run-backup.js';
import type { TestApp } from './app.js';

/** Directory targets in temp dirs (same device, so with the development override). */
export async function backupDepsFor(app: TestApp, env: Record<string, string> = {}): Promise<BackupDeps & { settings: BackupSettings; dirs: string[]; cleanup(): void }> {
  const primaryDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-bk-primary-'));
  const offsiteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-bk-offsite-'));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-bk-data-'));
  const settings = await loadBackupSettings(
    { HOKAN_BACKUP_URL: primaryDir, HOKAN_OFFSITE_URL: offsiteDir, HOKAN_BACKUP_SAME_DEVICE_OK: 'true', HOKAN_MASTER_KEY: 'ab'.repeat(32), ...env },
    { dataDir, files: app.ctx.files, embedded: true, s3Credentials: {} },
  );
  const dirs = [primaryDir, offsiteDir, dataDir];
  return {
    db: app.ctx.db,
    clock: app.clock,
    live: app.ctx.files,
    settings,
    instanceId: 'test',
    dirs,
    cleanup: () => dirs.forEach(removeTree),
  };
}

/** Backup objects are read-only (immutability); make them writable again to remove a temp dir. */
export function removeTree(d: string): void {
  if (!fs.existsSync(d)) return;
  fs.chmodSync(d, 0o755);
  for (const f of fs.readdirSync(d, { recursive: true, withFileTypes: true })) {
    fs.chmodSync(path.join(f.parentPath, f.name), f.isDirectory() ? 0o755 : 0o644);
  }
  fs.rmSync(d, { recursive: true, force: true });
}
