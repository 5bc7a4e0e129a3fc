import type { Actor } from '../core/audit/audit-log.js';
import type { DbOrTx } from '../core/db/database.js';
import { HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';
import { customerServiceState } from '../contracts/contracts.js';

/**
 * R11.1: suspension blocks access — a customer suspended (e.g. for misused credentials, R11.1③)
 * must not mint new credentials that would outlive the suspension's purpose; after the end
 * (R10.7) new credentials serve nothing. The provider's staff (and the system) keep the ability,
 * since they set customers up and clean up after them. Revoking is not gated: a suspended
 * customer must still be able to withdraw a leaked token.
 *
 * The codes and statuses are the data API's (403 `customer_suspended`, 410 `contract_ended`), so a
 * client handles one vocabulary.
 */
export async function assertCustomerMayAddCredentials(db: DbOrTx, actor: Actor, customerId: string): Promise<void> {
  if (actor.kind === 'operator' || actor.kind === 'system') return;
  const state = await customerServiceState(db, customerId);
  if (state === 'active') return;
  if (state === 'suspended') {
    throw new HokanError(
      'customer_suspended',
      bi(
        'サービスの利用が停止されているため、ユーザーやAPIトークンを追加できません。詳しくは事業者にお問い合わせください。',
        'Service is suspended for this customer: new users and API tokens cannot be added. Please contact the provider.',
      ),
    );
  }
  // Like the data API, a customer with no contract at all is treated as one whose contract ended.
  throw new HokanError(
    'contract_ended',
    state === 'ended'
      ? bi('ご契約は終了しているため、ユーザーやAPIトークンを追加できません。', 'The contract has ended: new users and API tokens cannot be added.')
      : bi('有効なご契約がないため、ユーザーやAPIトークンを追加できません。', 'There is no contract in service: new users and API tokens cannot be added.'),
  );
}
