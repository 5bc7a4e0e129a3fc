import { randomUUID } from 'node:crypto';
import { listCustomerUsers } from '../accounts/users.js';
import type { Clock } from '../core/clock.js';
import type { DbOrTx, Tx } from '../core/db/database.js';
import { customerServiceState } from '../contracts/contracts.js';
import { getCustomer, listCustomers } from '../contracts/customers.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { emailDeliveryStates, isValidEmailAddress, queueEmail } from '../notify/outbox.js';

/**
 * R2.1: a change (a new terms version or a notice) takes effect for a customer when it is notified
 * to that customer, so every notification is recorded per customer: the portal display (from the
 * moment of publication) and one e-mail per address — the customer's registered contact address
 * and each customer admin — queued in the publishing transaction through the outbox. When an e-mail
 * was sent is read from its outbox row.
 */

export type ChangeKind = 'terms_version' | 'notice';
export const CHANGE_KINDS = ['terms_version', 'notice'] as const;

export interface ChangeMessage {
  kind: ChangeKind;
  id: string;
  subject: string;
  /** The e-mail text for one recipient. */
  text: (recipient: { customerName: string; displayName: string }) => string;
}

export interface NotifyResult {
  customers: number;
  emails: number;
  /** Addresses that cannot be mailed (recorded nowhere else; the portal still shows the change). */
  skipped: Array<{ customerId: string; address: string }>;
}

/** Customers under a contract that is not over: who a new terms version or an all-customer notice is for. */
export async function customersUnderContract(db: DbOrTx): Promise<string[]> {
  const out: string[] = [];
  for (const c of await listCustomers(db)) {
    const state = await customerServiceState(db, c.id);
    if (state === 'active' || state === 'suspended') out.push(c.id);
  }
  return out;
}

/** Records the portal display and queues the e-mails of one change for the given customers, in the caller's transaction. */
export async function notifyChange(trx: Tx, clock: Clock, change: ChangeMessage, customerIds: readonly string[]): Promise<NotifyResult> {
  const now = clock.now();
  const result: NotifyResult = { customers: 0, emails: 0, skipped: [] };
  for (const customerId of customerIds) {
    const customer = await getCustomer(trx, customerId);
    const recipients = new Map<string, { address: string; roles: Set<string>; name: string }>();
    const add = (address: string, role: string, name: string) => {
      const key = address.toLowerCase();
      const r = recipients.get(key) ?? { address, roles: new Set<string>(), name };
      r.roles.add(role);
      recipients.set(key, r);
    };
    add(customer.contactEmail, 'contact', `${customer.name} ご担当者`);
    for (const u of await listCustomerUsers(trx, customerId)) {
      if (u.kind === 'customer' && u.roles.includes('customer_admin') && !u.disabled) add(u.email, 'customer_admin', u.displayName);
    }
    await trx
      .insertInto('terms_notifications')
      .values({ id: randomUUID(), change_kind: change.kind, change_id: change.id, customer_id: customerId, channel: 'portal', recipient: 'portal', recipient_roles: ['customer_users'], outbox_email_id: null, notified_at: now })
      .onConflict((oc) => oc.columns(['change_kind', 'change_id', 'customer_id', 'channel', 'recipient']).doNothing())
      .execute();
    for (const [key, r] of recipients) {
      if (!isValidEmailAddress(r.address)) {
        result.skipped.push({ customerId, address: r.address });
        continue;
      }
      // One e-mail per change and recipient address (R2.1); a repeat is ignored by the outbox.
      const emailId = await queueEmail(trx, clock, {
        dedupeKey: `terms:${change.kind}:${change.id}:${customerId}:${key}`,
        to: r.address,
        subject: change.subject,
        text: change.text({ customerName: customer.name, displayName: r.name }),
      });
      if (!emailId) continue;
      await trx
        .insertInto('terms_notifications')
        .values({ id: randomUUID(), change_kind: change.kind, change_id: change.id, customer_id: customerId, channel: 'email', recipient: r.address, recipient_roles: [...r.roles].sort(), outbox_email_id: emailId, notified_at: now })
        .onConflict((oc) => oc.columns(['change_kind', 'change_id', 'customer_id', 'channel', 'recipient']).doNothing())
        .execute();
      result.emails++;
    }
    result.customers++;
  }
  return result;
}

export interface NotificationRecord {
  id: string;
  changeKind: ChangeKind;
  changeId: string;
  change: Bilingual;
  customerId: string;
  channel: 'portal' | 'email';
  /** The e-mail address; null for the portal. */
  recipient: string | null;
  recipientRoles: string[];
  /** Portal: shown from; e-mail: queued at. */
  notifiedAt: string;
  email: { state: 'queued' | 'sent' | 'failed' | 'unknown'; queuedAt: string; sentAt: string | null; attempts: number; lastError: string | null } | null;
}

/** R2.1: when and how each change was notified to a customer, newest first. */
export async function notificationRecordsFor(db: DbOrTx, customerId: string, filter: { changeKind?: ChangeKind; changeId?: string } = {}): Promise<NotificationRecord[]> {
  let q = db.selectFrom('terms_notifications').selectAll().where('customer_id', '=', customerId);
  if (filter.changeKind) q = q.where('change_kind', '=', filter.changeKind);
  if (filter.changeId) q = q.where('change_id', '=', filter.changeId);
  const rows = await q.orderBy('notified_at', 'desc').orderBy('channel', 'desc').orderBy('recipient').limit(2000).execute();
  const states = await emailDeliveryStates(db, rows.flatMap((r) => (r.outbox_email_id ? [r.outbox_email_id] : [])));
  const versionIds = [...new Set(rows.filter((r) => r.change_kind === 'terms_version').map((r) => r.change_id))];
  const noticeIds = [...new Set(rows.filter((r) => r.change_kind === 'notice').map((r) => r.change_id))];
  const versions = versionIds.length ? await db.selectFrom('terms_versions').select(['id', 'edition']).where('id', 'in', versionIds).execute() : [];
  const notices = noticeIds.length ? await db.selectFrom('terms_notices').select(['id', 'title_ja', 'title_en']).where('id', 'in', noticeIds).execute() : [];
  const label = (kind: ChangeKind, id: string): Bilingual => {
    if (kind === 'terms_version') {
      const v = versions.find((x) => x.id === id);
      return bi(`利用規約 ${v?.edition ?? id}`, `Terms of use, edition ${v?.edition ?? id}`);
    }
    const n = notices.find((x) => x.id === id);
    return bi(`お知らせ「${n?.title_ja ?? id}」`, `Notice "${n?.title_en ?? n?.title_ja ?? id}"`);
  };
  return rows.map((r) => {
    const s = r.outbox_email_id ? states.get(r.outbox_email_id) : undefined;
    return {
      id: r.id,
      changeKind: r.change_kind,
      changeId: r.change_id,
      change: label(r.change_kind, r.change_id),
      customerId: r.customer_id,
      channel: r.channel,
      recipient: r.channel === 'email' ? r.recipient : null,
      recipientRoles: r.recipient_roles,
      notifiedAt: r.notified_at.toISOString(),
      email: r.channel !== 'email' ? null : s
        ? { state: s.state, queuedAt: s.queuedAt.toISOString(), sentAt: s.sentAt?.toISOString() ?? null, attempts: s.attempts, lastError: s.lastError }
        : { state: 'unknown', queuedAt: r.notified_at.toISOString(), sentAt: null, attempts: 0, lastError: null },
    };
  });
}

/**
 * When a change reached the customer: the earliest of its portal display and any e-mail sent;
 * null when nothing was recorded for the customer (e.g. registered after publication).
 */
export async function notifiedAt(db: DbOrTx, customerId: string, kind: ChangeKind, changeIds: readonly string[]): Promise<Map<string, Date>> {
  const out = new Map<string, Date>();
  if (changeIds.length === 0) return out;
  const rows = await db.selectFrom('terms_notifications').select(['change_id', 'channel', 'notified_at', 'outbox_email_id']).where('customer_id', '=', customerId).where('change_kind', '=', kind).where('change_id', 'in', [...changeIds]).execute();
  const states = await emailDeliveryStates(db, rows.flatMap((r) => (r.outbox_email_id ? [r.outbox_email_id] : [])));
  for (const r of rows) {
    const at = r.channel === 'portal' ? r.notified_at : r.outbox_email_id ? (states.get(r.outbox_email_id)?.sentAt ?? null) : null;
    if (!at) continue;
    const prev = out.get(r.change_id);
    if (!prev || at.getTime() < prev.getTime()) out.set(r.change_id, at);
  }
  return out;
}
