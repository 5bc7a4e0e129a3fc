import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Principal } from '../core/auth/principal.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors, HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { assertCustomerMayAddCredentials } from './credential-gate.js';
import { tokenDigest } from './sessions.js';

/**
 * Machine credentials for the Software (R3.1, R18.1): `hkn_<id>_<secret>`. The id finds the row,
 * the secret is compared by digest; the plain token is shown once, at creation.
 */
const TOKEN_RE = /^hkn_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export interface ApiTokenView {
  id: string;
  customerId: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

type Row = { id: string; customer_id: string; name: string; created_at: Date; revoked_at: Date | null; last_used_at: Date | null };
const view = (r: Row): ApiTokenView => ({
  id: r.id,
  customerId: r.customer_id,
  name: r.name,
  createdAt: r.created_at.toISOString(),
  revokedAt: r.revoked_at?.toISOString() ?? null,
  lastUsedAt: r.last_used_at?.toISOString() ?? null,
});
const COLUMNS = ['id', 'customer_id', 'name', 'created_at', 'revoked_at', 'last_used_at'] as const;

export async function createApiToken(
  db: Db,
  clock: Clock,
  actor: Actor & { id: string },
  customerId: string,
  name: string,
): Promise<{ token: string; apiToken: ApiTokenView }> {
  const id = randomUUID();
  const secret = randomBytes(32).toString('base64url');
  const token = `hkn_${id.replaceAll('-', '')}_${secret}`;
  return db.transaction().execute(async (trx) => {
    // In the domain, not the route: the portal's form issues tokens through here as well (R11.1).
    await assertCustomerMayAddCredentials(trx, actor, customerId);
    const row = await trx
      .insertInto('api_tokens')
      .values({ id, customer_id: customerId, name, secret_hash: tokenDigest(secret), created_by: actor.id, created_at: clock.now(), revoked_at: null, last_used_at: null })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'api_token.created', subjectType: 'api_token', subjectId: id, customerId, details: { name } });
    return { token, apiToken: view(row) };
  });
}

export async function listApiTokens(db: DbOrTx, customerId: string): Promise<ApiTokenView[]> {
  const rows = await db.selectFrom('api_tokens').select(COLUMNS).where('customer_id', '=', customerId).orderBy('created_at').execute();
  return rows.map(view);
}

export async function revokeApiToken(db: Db, clock: Clock, actor: Actor, customerId: string, tokenId: string): Promise<ApiTokenView> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('api_tokens')
      .set({ revoked_at: clock.now() })
      .where('id', '=', tokenId)
      .where('customer_id', '=', customerId)
      .where('revoked_at', 'is', null)
      .returning(COLUMNS)
      .executeTakeFirst();
    if (!row) throw errors.notFound('API token', tokenId);
    await appendAudit(trx, clock, { actor, action: 'api_token.revoked', subjectType: 'api_token', subjectId: tokenId, customerId });
    return view(row);
  });
}

const LAST_USED_GRANULARITY_MS = 60_000;

export async function resolveApiToken(db: DbOrTx, clock: Clock, token: string): Promise<Principal | null> {
  const m = TOKEN_RE.exec(token);
  if (!m) return null;
  const hex = m[1]!;
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  const row = await db
    .selectFrom('api_tokens')
    .select(['id', 'customer_id', 'name', 'secret_hash', 'revoked_at', 'last_used_at', 'locked_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row || row.revoked_at) return null;
  const given = Buffer.from(tokenDigest(m[2]!), 'hex');
  const stored = Buffer.from(row.secret_hash, 'hex');
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return null;
  if (row.locked_at) {
    // R11.1③: locked after suspected misuse; the customer's admin issues a new token after review.
    throw new HokanError('credential_locked', bi('このAPIトークンは不正利用の疑いによりロックされています。お客様の管理者にご連絡ください。', 'This API token is locked after suspected misuse; contact your administrator.'));
  }
  const now = clock.now();
  // Writing on every request would turn each read into a write; once a minute is enough to show use.
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > LAST_USED_GRANULARITY_MS) {
    await db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', id).execute();
  }
  return { kind: 'api_token', tokenId: row.id, customerId: row.customer_id, name: row.name };
}
