import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh directory under the OS temp dir (or BENCH_TMPDIR), for one benchmark run. */
export function makeTempDir(prefix: string): string {
  const base = process.env.BENCH_TMPDIR ?? os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `${prefix}-`));
}

/**
 * Removes a tree even when it holds read-only objects: backup stores chmod what they write to
 * 0444 (immutability), which `rm -rf` as a non-root user could not unlink inside 0555 dirs.
 */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(entry.parentPath, entry.name);
    try {
      fs.chmodSync(p, entry.isDirectory() ? 0o755 : 0o644);
    } catch {
      // a dangling entry: rmSync below removes it or reports the real problem
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
