import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors } from '../core/errors.js';

/**
 * Signed webhooks (R8.1, a further channel for status posts). Operators register URLs; each gets
 * a secret shown once. Every public post becomes one delivery row per active webhook, in the
 * posting transaction; the notify.webhooks job POSTs it with
 *   X-Hokan-Timestamp: <unix seconds>
 *   X-Hokan-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>" with the secret>
 * Rows are claimed with FOR UPDATE SKIP LOCKED and a lease (attempts + 1), settled only by the
 * claim that made the attempt, retried with back-off, failed after MAX_WEBHOOK_ATTEMPTS.
 */

export const MAX_WEBHOOK_ATTEMPTS = 12;
const LEASE_MS = 2 * 60_000;
const TIMEOUT_MS = 10_000;

export interface WebhookView {
  id: string;
  url: string;
  description: string;
  active: boolean;
  createdAt: string;
  createdBy: string;
}

type Row = { id: string; url: string; description: string; active: boolean; created_at: Date; created_by: string };
const view = (r: Row): WebhookView => ({ id: r.id, url: r.url, description: r.description, active: r.active, createdAt: r.created_at.toISOString(), createdBy: r.created_by });
const COLUMNS = ['id', 'url', 'description', 'active', 'created_at', 'created_by'] as const;

export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw errors.invalidField('url', 'URLとして読み取れません。', 'is not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw errors.invalidField('url', 'http:// または https:// のURLにしてください。', 'must be an http:// or https:// URL');
  if (u.username || u.password) throw errors.invalidField('url', 'URLに認証情報を含めないでください。', 'must not carry credentials');
  return u.toString();
}

export async function listWebhooks(db: DbOrTx): Promise<WebhookView[]> {
  return (await db.selectFrom('webhooks').select(COLUMNS).orderBy('created_at').execute()).map(view);
}

/** Registers a webhook; the secret is returned here only. */
export async function createWebhook(db: Db, clock: Clock, actor: Actor, input: { url: string; description?: string }): Promise<{ webhook: WebhookView; secret: string }> {
  const url = checkUrl(input.url);
  const secret = `whsec_${randomBytes(32).toString('base64url')}`;
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('webhooks')
      .values({ id: randomUUID(), url, description: input.description?.trim() ?? '', secret, active: true, created_at: clock.now(), created_by: actor.label })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'webhook.created', subjectType: 'webhook', subjectId: row.id, details: { url } });
    return { webhook: view(row), secret };
  });
}

export async function setWebhookActive(db: Db, clock: Clock, actor: Actor, id: string, active: boolean): Promise<WebhookView> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.updateTable('webhooks').set({ active }).where('id', '=', id).returning(COLUMNS).executeTakeFirst();
    if (!row) throw errors.notFound('Webhook', id);
    await appendAudit(trx, clock, { actor, action: active ? 'webhook.activated' : 'webhook.deactivated', subjectType: 'webhook', subjectId: id });
    return view(row);
  });
}

export async function deleteWebhook(db: Db, clock: Clock, actor: Actor, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx.deleteFrom('webhooks').where('id', '=', id).returning(['id', 'url']).executeTakeFirst();
    if (!row) throw errors.notFound('Webhook', id);
    await appendAudit(trx, clock, { actor, action: 'webhook.deleted', subjectType: 'webhook', subjectId: id, details: { url: row.url } });
  });
}

/** Queues one delivery of a post per active webhook, in the posting transaction. */
export async function enqueueWebhookDeliveries(trx: DbOrTx, clock: Clock, postId: string, payload: Record<string, unknown>): Promise<number> {
  const hooks = await trx.selectFrom('webhooks').select('id').where('active', '=', true).execute();
  if (hooks.length === 0) return 0;
  const now = clock.now();
  const rows = hooks.map((h) => {
    const id = randomUUID();
    return { id, webhook_id: h.id, post_id: postId, body: JSON.stringify({ type: 'status.post', deliveryId: id, ...payload }), state: 'queued' as const, attempts: 0, next_attempt_at: now, last_status: null, last_error: null, delivered_at: null, created_at: now };
  });
  const inserted = await trx.insertInto('webhook_deliveries').values(rows).onConflict((oc) => oc.columns(['webhook_id', 'post_id']).doNothing()).returning('id').execute();
  return inserted.length;
}

export interface WebhookDeliveryView {
  id: string;
  postId: string;
  state: 'queued' | 'delivered' | 'failed';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

export async function listWebhookDeliveries(db: DbOrTx, webhookId: string): Promise<WebhookDeliveryView[]> {
  if (!(await db.selectFrom('webhooks').select('id').where('id', '=', webhookId).executeTakeFirst())) throw errors.notFound('Webhook', webhookId);
  const rows = await db.selectFrom('webhook_deliveries').selectAll().where('webhook_id', '=', webhookId).orderBy('created_at', 'desc').limit(500).execute();
  return rows.map((r) => ({
    id: r.id,
    postId: r.post_id,
    state: r.state,
    attempts: r.attempts,
    lastStatus: r.last_status,
    lastError: r.last_error,
    nextAttemptAt: r.state === 'queued' ? r.next_attempt_at.toISOString() : null,
    deliveredAt: r.delivered_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  }));
}

/** 30 s, 1 min, 2 min … capped at 1 h. */
export function webhookRetryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, attempts - 1), 3_600_000);
}

export interface WebhookDeliveryResult {
  delivered: number;
  retried: number;
  failed: number;
}

/** Delivers the due webhook rows (see the module comment). */
export async function deliverDueWebhooks(db: Db, clock: Clock, opts: { batch?: number; timeoutMs?: number } = {}): Promise<WebhookDeliveryResult> {
  const result: WebhookDeliveryResult = { delivered: 0, retried: 0, failed: 0 };
  for (;;) {
    const now = clock.now();
    const claimed = await db
      .updateTable('webhook_deliveries')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: new Date(now.getTime() + LEASE_MS) }))
      .where('id', 'in', (eb) =>
        eb.selectFrom('webhook_deliveries').select('id').where('state', '=', 'queued').where('next_attempt_at', '<=', now).orderBy('next_attempt_at').orderBy('created_at').limit(opts.batch ?? 20).forUpdate().skipLocked(),
      )
      .returning(['id', 'webhook_id', 'body', 'attempts'])
      .execute();
    if (claimed.length === 0) return result;
    const hooks = new Map((await db.selectFrom('webhooks').select(['id', 'url', 'secret', 'active']).where('id', 'in', [...new Set(claimed.map((c) => c.webhook_id))]).execute()).map((h) => [h.id, h]));
    await Promise.all(
      claimed.map(async (row) => {
        const mine = db.updateTable('webhook_deliveries').where('id', '=', row.id).where('state', '=', 'queued').where('attempts', '=', row.attempts);
        const hook = hooks.get(row.webhook_id);
        let status: number | null = null;
        let error: string | null = null;
        if (!hook || !hook.active) error = 'webhook deactivated';
        else {
          const timestamp = String(Math.floor(clock.now().getTime() / 1000));
          try {
            const res = await fetch(hook.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'hokan-webhooks/1', 'x-hokan-timestamp': timestamp, 'x-hokan-signature': signWebhook(hook.secret, timestamp, row.body), 'x-hokan-delivery': row.id },
              body: row.body,
              redirect: 'manual',
              signal: AbortSignal.timeout(opts.timeoutMs ?? TIMEOUT_MS),
            });
            status = res.status;
            await res.body?.cancel().catch(() => undefined);
            if (status < 200 || status >= 300) error = `HTTP ${status}`;
          } catch (err) {
            const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
            error = `${err instanceof Error ? err.message : String(err)}${cause}`.slice(0, 2000);
          }
        }
        if (error === null) {
          await mine.set({ state: 'delivered', delivered_at: clock.now(), last_status: status, last_error: null }).execute();
          result.delivered++;
        } else {
          const giveUp = row.attempts >= MAX_WEBHOOK_ATTEMPTS || error === 'webhook deactivated';
          await mine.set({ state: giveUp ? 'failed' : 'queued', next_attempt_at: new Date(clock.now().getTime() + webhookRetryDelayMs(row.attempts)), last_status: status, last_error: error }).execute();
          if (giveUp) result.failed++;
          else result.retried++;
        }
      }),
    );
  }
}
