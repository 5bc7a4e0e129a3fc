import { createHash, randomBytes } from 'node:crypto';
import type { Principal } from '../core/auth/principal.js';
import type { Clock } from '../core/clock.js';
import type { DbOrTx } from '../core/db/database.js';
import { principalOfUser } from './users.js';

/** Only the SHA-256 of a session token is stored, so a database dump cannot sign anybody in. */
export const tokenDigest = (token: string): string => createHash('sha256').update(token).digest('hex');

export async function createSession(db: DbOrTx, clock: Clock, userId: string, ttlHours: number): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const now = clock.now();
  const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000);
  await db.insertInto('sessions').values({ token_hash: tokenDigest(token), user_id: userId, created_at: now, expires_at: expiresAt }).execute();
  return { token, expiresAt };
}

export async function resolveSession(db: DbOrTx, clock: Clock, token: string): Promise<Principal | null> {
  if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
  const row = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select(['users.id', 'users.kind', 'users.customer_id', 'users.login_id', 'users.display_name', 'users.roles', 'users.disabled_at', 'sessions.expires_at'])
    .where('sessions.token_hash', '=', tokenDigest(token))
    .executeTakeFirst();
  if (!row || row.disabled_at || row.expires_at.getTime() <= clock.now().getTime()) return null;
  return principalOfUser(row);
}

export async function deleteSession(db: DbOrTx, token: string): Promise<void> {
  await db.deleteFrom('sessions').where('token_hash', '=', tokenDigest(token)).execute();
}

export async function deleteExpiredSessions(db: DbOrTx, clock: Clock): Promise<number> {
  const r = await db.deleteFrom('sessions').where('expires_at', '<=', clock.now()).executeTakeFirst();
  return Number(r.numDeletedRows);
}
