import type { Clock } from '../core/clock.js';
import type { DbOrTx } from '../core/db/database.js';
import { generateDataKey, keyFingerprint, unwrapDataKey, wrapDataKey } from './crypto/index.js';

export class CustomerKeyDestroyedError extends Error {
  readonly code = 'customer_key_destroyed';
  constructor(customerId: string) {
    super(`the data key of customer ${customerId} has been destroyed: its backups can no longer be decrypted`);
  }
}

/**
 * The customer's data key: created on first use, stored only wrapped by the master key (the key
 * context binds it to the customer, so a wrapped key moved to another row does not unwrap).
 */
export async function customerDataKey(db: DbOrTx, clock: Clock, masterKey: Buffer, masterKeyFingerprint: string, customerId: string): Promise<{ key: Buffer; fingerprint: string }> {
  const existing = await db.selectFrom('customer_keys').selectAll().where('customer_id', '=', customerId).executeTakeFirst();
  if (existing) {
    if (!existing.wrapped_key) throw new CustomerKeyDestroyedError(customerId);
    return { key: unwrapDataKey(masterKey, existing.wrapped_key, customerId), fingerprint: existing.key_fingerprint };
  }
  const key = generateDataKey();
  const fingerprint = keyFingerprint(key);
  await db
    .insertInto('customer_keys')
    .values({ customer_id: customerId, wrapped_key: wrapDataKey(masterKey, key, customerId), key_fingerprint: fingerprint, master_key_fingerprint: masterKeyFingerprint, created_at: clock.now(), destroyed_at: null })
    .onConflict((oc) => oc.column('customer_id').doNothing())
    .execute();
  // Another instance may have won the insert: read back whichever key is stored.
  return customerDataKey(db, clock, masterKey, masterKeyFingerprint, customerId);
}

/** R10.7: after this, no copy of the customer's backups anywhere can be decrypted. */
export async function destroyCustomerKey(db: DbOrTx, clock: Clock, customerId: string): Promise<{ fingerprint: string | null; destroyedAt: Date }> {
  const now = clock.now();
  const row = await db.selectFrom('customer_keys').select(['key_fingerprint', 'destroyed_at']).where('customer_id', '=', customerId).executeTakeFirst();
  if (!row) return { fingerprint: null, destroyedAt: now };
  if (row.destroyed_at) return { fingerprint: row.key_fingerprint, destroyedAt: row.destroyed_at };
  await db.updateTable('customer_keys').set({ wrapped_key: null, destroyed_at: now }).where('customer_id', '=', customerId).execute();
  return { fingerprint: row.key_fingerprint, destroyedAt: now };
}
