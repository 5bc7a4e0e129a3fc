import type { DbOrTx } from '../core/db/database.js';
import type { GatewayEventKind } from './events.js';

/** Reads of what the gateway recorded, for the console (R4.1, R11.1③, R12.2). */

export interface MisuseFlagView {
  id: string;
  customerId: string;
  kind: string;
  action: string;
  detail: string;
  sourceIp: string | null;
  credentialId: string | null;
  createdAt: string;
  reviewedAt: string | null;
}

export async function listMisuseFlags(db: DbOrTx, filter: { customerId?: string; limit?: number } = {}): Promise<MisuseFlagView[]> {
  let q = db.selectFrom('misuse_flags').selectAll().orderBy('created_at', 'desc').limit(filter.limit ?? 200);
  if (filter.customerId) q = q.where('customer_id', '=', filter.customerId);
  const rows = await q.execute();
  return rows.map((f) => ({ id: f.id, customerId: f.customer_id, kind: f.kind, action: f.action, detail: f.detail, sourceIp: f.source_ip, credentialId: f.credential_id, createdAt: f.created_at.toISOString(), reviewedAt: f.reviewed_at?.toISOString() ?? null }));
}

export interface GatewayEventView {
  at: string;
  kind: GatewayEventKind;
  class: string;
  ruleId: string | null;
  action: string;
  sourceIp: string | null;
  country: string | null;
  customerId: string | null;
  credentialId: string | null;
  method: string | null;
  path: string | null;
  sample: string | null;
}

/** The newest recorded events of one kind (e.g. refusals from abroad). */
export async function listGatewayEvents(db: DbOrTx, filter: { kind: GatewayEventKind; limit?: number }): Promise<GatewayEventView[]> {
  const rows = await db.selectFrom('gateway_events').selectAll().where('kind', '=', filter.kind).orderBy('at', 'desc').limit(filter.limit ?? 100).execute();
  return rows.map((r) => ({ at: r.at.toISOString(), kind: r.kind, class: r.class, ruleId: r.rule_id, action: r.action, sourceIp: r.source_ip, country: r.country, customerId: r.customer_id, credentialId: r.credential_id, method: r.method, path: r.path, sample: r.sample }));
}
