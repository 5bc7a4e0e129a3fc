import { HokanError } from '../core/errors.js';
import { bi } from '../core/i18n.js';

const UNIQUE_VIOLATION = '23505';

/**
 * Unique constraints whose clash the caller can act on, by the request field that carries the
 * value. The code is `duplicate`, as when the domain's own check finds the row first, so a client
 * handles the two outcomes of the same race alike.
 */
const UNIQUE_FIELDS = new Map<string, { path: string; ja: string; en: string }>([
  ['customers_code_key', { path: 'code', ja: 'このお客様コード', en: 'This customer code' }],
  ['users_login_id_key', { path: 'loginId', ja: 'このID', en: 'This ID' }],
  ['contracts_contract_number_key', { path: 'contractNumber', ja: 'この契約番号', en: 'This contract number' }],
  ['terms_versions_edition_key', { path: 'edition', ja: 'この利用規約の版', en: 'This terms edition' }],
]);

/**
 * A database error the caller caused and can resolve, as a HokanError; null for everything else.
 *
 * Create paths check for a clash and then insert. On PostgreSQL two concurrent requests can both
 * pass the check, and the unique index refuses the later insert with SQLSTATE 23505: that is a
 * 409 the caller can retry or correct, not a 500. Only the field is named, never the constraint,
 * the table or PostgreSQL's detail (which quotes the stored value).
 */
export function fromDatabaseError(err: unknown): HokanError | null {
  if (!(err instanceof Error) || err instanceof HokanError) return null;
  const { code, constraint } = err as Error & { code?: unknown; constraint?: unknown };
  if (code !== UNIQUE_VIOLATION) return null;
  const field = typeof constraint === 'string' ? UNIQUE_FIELDS.get(constraint) : undefined;
  if (field) {
    return new HokanError('duplicate', bi(`${field.ja}は既に使われています。`, `${field.en} is already in use.`), [{ path: field.path, message: 'already in use' }]);
  }
  return new HokanError(
    'conflict',
    bi(
      '同じ内容が別の操作で同時に登録されたため、処理できませんでした。最新の状態を確認してから、もう一度お試しください。',
      'Another request recorded the same thing at the same moment; check the current state and try again.',
    ),
  );
}
