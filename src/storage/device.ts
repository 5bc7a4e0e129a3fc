import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * The device id of `p`, or of its nearest existing ancestor when `p` does not exist yet: a backup
 * directory that start-up is about to create will live on its parent's device.
 */
export async function deviceIdOf(p: string): Promise<number> {
  let current = path.resolve(p);
  for (;;) {
    try {
      return (await fsp.stat(current)).dev;
    } catch (err) {
      const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
      const parent = path.dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw err;
      current = parent;
    }
  }
}

/**
 * True when both paths live on the same filesystem device. The contract promises backups on a
 * medium separate from the live data; start-up refuses a backup directory for which this is true.
 * (Different devices are necessary, not sufficient: two partitions of one disk differ here.)
 */
export async function onSameDevice(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([deviceIdOf(a), deviceIdOf(b)]);
  return da === db;
}
