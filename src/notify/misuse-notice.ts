import { listCustomerUsers } from '../accounts/users.js';
import type { Clock } from '../core/clock.js';
import type { DbOrTx } from '../core/db/database.js';
import { formatJapanDateTime } from '../core/japan-time.js';
import { isValidEmailAddress, queueEmail } from './outbox.js';

export const MISUSE_NOTICE_SUBJECT = '【重要】IDの不正利用の疑いについて / Suspected misuse of your credentials';

export interface MisuseNoticeInput {
  flagId: string;
  customerId: string;
  kind: string;
  action: string;
  /** The detector's sentence: counts, windows and countries, never a password or token. */
  detail: string;
  at: Date;
}

const KIND_JA: Record<string, string> = {
  brute_force: '短時間に多数のサインイン失敗',
  credential_stuffing: '一つの接続元から多数のIDへのサインイン試行',
  many_sources: '一つのID・トークンが多数の接続元から同時に使用',
  impossible_travel: '移動が不可能な間隔で異なる国から使用',
  abroad_use: '日本国外からの使用',
};

const ACTION_JA: Record<string, string> = {
  lock_credential: '該当するID・APIトークンをロックしました。',
  flag_customer: '記録し、貴社の管理者に確認をお願いしています。',
  suspend_customer: '貴社のご契約を一時停止しました。',
};

const ACTION_EN: Record<string, string> = {
  lock_credential: 'The ID or API token concerned has been locked.',
  flag_customer: 'It has been recorded for your administrators to review.',
  suspend_customer: "Your organisation's contract has been suspended.",
};

export function misuseNoticeText(input: MisuseNoticeInput, recipientName: string): string {
  const when = formatJapanDateTime(input.at);
  return [
    `${recipientName} 様`,
    '',
    '貴社のIDまたはAPIトークンについて、不正利用の疑いを検知しました。',
    '',
    `検知した内容: ${KIND_JA[input.kind] ?? input.kind} (${input.kind})`,
    `詳細: ${input.detail}`,
    `対応: ${ACTION_JA[input.action] ?? input.action}`,
    `日時: ${when}`,
    '',
    '管理画面の「不正利用の疑い」(GET /api/v1/customers/{id}/misuse-flags) で内容をご確認ください。',
    'お心当たりのない場合は、パスワードの変更とAPIトークンの再発行をお願いします。',
    '',
    '----',
    '',
    `Dear ${recipientName},`,
    '',
    'We have detected a suspected misuse of an ID or API token of your organisation.',
    '',
    `What was found: ${input.kind}`,
    `Detail: ${input.detail}`,
    `What was done: ${ACTION_EN[input.action] ?? input.action}`,
    `When: ${when} (${input.at.toISOString()})`,
    '',
    'Please review the misuse flags (GET /api/v1/customers/{id}/misuse-flags).',
    'If you do not recognise this activity, change your password and issue new API tokens.',
    '',
  ].join('\n');
}

/**
 * Queues the misuse notice to every customer admin of the flagged customer, in the caller's
 * transaction (the one that inserts the flag). One row per admin, dedupe key
 * `misuse:<flag id>:<user id>`. Admins without a usable address are skipped and returned.
 */
export async function queueMisuseNotices(dbOrTx: DbOrTx, clock: Clock, input: MisuseNoticeInput): Promise<{ queued: number; skippedUserIds: string[] }> {
  const admins = (await listCustomerUsers(dbOrTx, input.customerId)).filter((u) => u.kind === 'customer' && u.roles.includes('customer_admin') && !u.disabled);
  let queued = 0;
  const skippedUserIds: string[] = [];
  for (const admin of admins) {
    if (!isValidEmailAddress(admin.email)) {
      skippedUserIds.push(admin.id);
      continue;
    }
    const id = await queueEmail(dbOrTx, clock, { dedupeKey: `misuse:${input.flagId}:${admin.id}`, to: admin.email, subject: MISUSE_NOTICE_SUBJECT, text: misuseNoticeText(input, admin.displayName) });
    if (id) queued++;
  }
  return { queued, skippedUserIds };
}
