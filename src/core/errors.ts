import { bi, type Bilingual } from './i18n.js';

export type ErrorCode =
  | 'validation_failed'
  | 'not_found'
  | 'unauthenticated'
  | 'forbidden'
  | 'invalid_credentials'
  | 'conflict'
  | 'invalid_transition'
  | 'notice_too_short'
  | 'deadline_in_past'
  | 'cure_period_not_over'
  | 'duplicate'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'precondition_failed'
  | 'precondition_required'
  | 'contract_ended'
  | 'customer_suspended'
  | 'service_unavailable'
  | 'credential_locked'
  | 'too_many_attempts'
  | 'internal';

const HTTP_STATUS: Record<ErrorCode, number> = {
  validation_failed: 400,
  not_found: 404,
  unauthenticated: 401,
  forbidden: 403,
  invalid_credentials: 401,
  conflict: 409,
  invalid_transition: 409,
  notice_too_short: 400,
  deadline_in_past: 400,
  cure_period_not_over: 409,
  duplicate: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  precondition_failed: 412,
  precondition_required: 428,
  contract_ended: 410,
  customer_suspended: 403,
  service_unavailable: 503,
  credential_locked: 423,
  too_many_attempts: 429,
  internal: 500,
};

export interface ErrorDetail {
  path: string;
  message: string;
}

/** The one error type domain code throws; the HTTP layer turns it into a response. */
export class HokanError extends Error {
  readonly code: ErrorCode;
  readonly messages: Bilingual;
  readonly details: ErrorDetail[];
  /** When set, the HTTP layer sends it as Retry-After (e.g. during a service stop, R7.4). */
  retryAfterSeconds?: number;

  constructor(code: ErrorCode, messages: Bilingual, details: ErrorDetail[] = []) {
    super(`${code}: ${messages.en}`);
    this.name = 'HokanError';
    this.code = code;
    this.messages = messages;
    this.details = details;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  toJSON(): { error: { code: ErrorCode; message: Bilingual; details: ErrorDetail[] } } {
    return { error: { code: this.code, message: this.messages, details: this.details } };
  }
}

export const errors = {
  validation: (details: ErrorDetail[]) =>
    new HokanError(
      'validation_failed',
      bi(
        `入力内容に誤りがあります: ${details.map((d) => `${d.path || '(本文)'} — ${d.message}`).join('; ')}`,
        `Invalid input: ${details.map((d) => `${d.path || '(body)'} — ${d.message}`).join('; ')}`,
      ),
      details,
    ),
  invalidField: (path: string, ja: string, en: string) =>
    new HokanError('validation_failed', bi(`${path}: ${ja}`, `${path}: ${en}`), [{ path, message: en }]),
  notFound: (what: string, id: string) =>
    new HokanError('not_found', bi(`${what}「${id}」は見つかりません。`, `${what} "${id}" was not found.`)),
  unauthenticated: () =>
    new HokanError('unauthenticated', bi('サインインが必要です。', 'Sign-in is required.')),
  invalidCredentials: () =>
    new HokanError(
      'invalid_credentials',
      bi('IDまたはパスワードが正しくありません。', 'The ID or password is not correct.'),
    ),
  forbidden: (en: string, ja: string) =>
    new HokanError('forbidden', bi(`この操作の権限がありません: ${ja}`, `You are not allowed to do this: ${en}`)),
  invalidTransition: (from: string, action: string) =>
    new HokanError(
      'invalid_transition',
      bi(`状態「${from}」の契約に「${action}」はできません。`, `A contract in state "${from}" cannot be given "${action}".`),
    ),
  conflict: (ja: string, en: string) => new HokanError('conflict', bi(ja, en)),
  duplicate: (what: string, value: string) =>
    new HokanError('duplicate', bi(`${what}「${value}」は既に使われています。`, `${what} "${value}" is already in use.`)),
};

export function isHokanError(e: unknown): e is HokanError {
  return e instanceof HokanError;
}
