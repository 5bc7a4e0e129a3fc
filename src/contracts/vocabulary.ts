import { bi, type Bilingual } from '../core/i18n.js';

/** R11.1 ①–④: the only grounds on which the provider may suspend a customer. */
export const SUSPENSION_REASONS = {
  unpaid_fees: bi('① 支払期日を過ぎても利用料金が支払われない', '① fees unpaid past the due date'),
  prohibited_act: bi('② 禁止事項（第15条）に該当する行為', '② a prohibited act (Art. 15)'),
  credential_misuse: bi('③ ID・パスワードの不正使用またはそのおそれ', '③ misuse, or likely misuse, of IDs or passwords'),
  insolvency_proceedings: bi('④ 差押え・破産・民事再生等の手続', '④ attachment, bankruptcy, rehabilitation or similar proceedings'),
} as const satisfies Record<string, Bilingual>;
export type SuspensionReason = keyof typeof SUSPENSION_REASONS;
export const SUSPENSION_REASON_CODES = Object.keys(SUSPENSION_REASONS) as [SuspensionReason, ...SuspensionReason[]];

/** How a contract ends, each with the article that allows it. */
export const END_REASONS = {
  customer_notice: bi('お客様からの30日前までの書面による解約通知（第22条第3項）', "customer's written notice 30 days ahead (Art. 22.3)"),
  breach_uncured: bi('催告期間内に是正されない契約違反（第22条第1項）', 'breach not cured within the notice period (Art. 22.1)'),
  gross_breach: bi('重大な過失・背信行為（第22条第2項）', 'gross negligence, gross breach or betrayal of trust (Art. 22.2)'),
  antisocial_forces: bi('反社会的勢力への該当（第16条）', 'anti-social forces (Art. 16)'),
  third_party_claim: bi('第三者からの請求を解決できない（第17条）', 'unresolved third-party claim (Art. 17)'),
  linked_contract_ended: bi('システム利用契約またはサポート契約の終了（第22条第4項）', 'the linked system-use or support contract ended (Art. 22.4)'),
  term_expired: bi('契約期間の満了（第21条）', 'the agreed term ended (Art. 21)'),
} as const satisfies Record<string, Bilingual>;
export type EndReason = keyof typeof END_REASONS;

export const IMMEDIATE_GROUNDS = ['gross_breach', 'antisocial_forces', 'third_party_claim'] as const;
export type ImmediateGround = (typeof IMMEDIATE_GROUNDS)[number];

export const STATUS_LABELS = {
  active: bi('有効', 'active'),
  suspended: bi('利用停止中', 'suspended'),
  ended: bi('終了', 'ended'),
} as const satisfies Record<string, Bilingual>;

/** R22.3: the customer's notice must reach the provider at least this many days ahead. */
export const CUSTOMER_NOTICE_DAYS = 30;

export const NO_REFUND_NOTE = bi('既にお支払いいただいた利用料金は返金されません（第22条第3項）。', 'Fees already paid are not refunded (Art. 22.3).');
