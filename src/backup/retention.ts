import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { LocalDirectoryStore, type BlobStore } from '../storage/index.js';
import { backupPrefix } from './catalog.js';
import type { BackupSettings } from './settings.js';

export async function deletePrefix(store: BlobStore, prefix: string, now: Date): Promise<number> {
  let n = 0;
  for await (const blob of store.list(prefix)) {
    await store.delete(blob.key, now);
    n++;
  }
  // What a killed upload left behind is not a blob, but it is still the customer's bytes.
  if (store instanceof LocalDirectoryStore) n += await store.removeLeftovers(prefix, now);
  return n;
}

/**
 * Generations: daily backups are kept `retainDaily` days, weekly ones `retainWeekly` weeks (their
 * retain_until was fixed when written). Past it, the objects go from both targets. The newest
 * good backup of a customer is kept even past its date, so a stalled backup job never leaves a
 * customer with none. Backups of purged customers are removed once their immutability ends.
 */
export async function expireBackups(deps: { db: Db; clock: Clock; settings: BackupSettings }): Promise<{ expired: string[] }> {
  const { db, clock, settings } = deps;
  const now = clock.now();
  const due = await db
    .selectFrom('backups')
    .selectAll()
    .where('state', 'in', ['good', 'failed', 'purged'])
    .where('retain_until', '<=', now)
    .orderBy('started_at')
    .execute();
  const expired: string[] = [];
  for (const row of due) {
    if (row.state === 'good') {
      const newest = await db.selectFrom('backups').select('id').where('customer_id', '=', row.customer_id).where('state', '=', 'good').orderBy('started_at', 'desc').limit(1).executeTakeFirst();
      if (newest?.id === row.id) continue;
    }
    const prefix = backupPrefix(row.customer_id, row.id);
    if (settings.primary) await deletePrefix(settings.primary, prefix, now);
    if (settings.offsite) await deletePrefix(settings.offsite, prefix, now);
    await db
      .updateTable('backups')
      .set({ state: 'expired', offsite_state: row.offsite_state === 'copied' ? 'removed' : row.offsite_state })
      .where('id', '=', row.id)
      .execute();
    expired.push(row.id);
  }
  return { expired };
}
