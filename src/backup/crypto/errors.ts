/**
 * Errors of backup encryption. Kept apart from `HokanError` because these never reach an HTTP
 * client directly: backup and restore jobs log them and record the code, and a restore must be
 * able to tell "someone changed the file" from "the file is incomplete" from "wrong key material".
 */

/** Codes for damaged or foreign backup data, as seen by a decrypt stream. */
export type BackupIntegrityErrorCode = 'bad_header' | 'tampered' | 'truncated' | 'trailing_data';

export type BackupCryptoErrorCode =
  | 'invalid_master_key'
  | 'invalid_data_key'
  | 'invalid_argument'
  | 'key_unwrap_failed'
  | BackupIntegrityErrorCode;

export class BackupCryptoError extends Error {
  readonly code: BackupCryptoErrorCode;

  constructor(code: BackupCryptoErrorCode, message: string) {
    super(message);
    this.name = 'BackupCryptoError';
    this.code = code;
  }
}

export interface IntegrityLocation {
  /** Index of the record the problem was found in, when the header was read far enough to know. */
  chunkIndex?: number;
  /** Byte offset in the encrypted input where the problem was detected. */
  offset?: number;
}

export class BackupIntegrityError extends BackupCryptoError {
  declare readonly code: BackupIntegrityErrorCode;
  readonly chunkIndex: number | undefined;
  readonly offset: number | undefined;

  constructor(code: BackupIntegrityErrorCode, message: string, where: IntegrityLocation = {}) {
    super(code, message);
    this.name = 'BackupIntegrityError';
    this.chunkIndex = where.chunkIndex;
    this.offset = where.offset;
  }
}

export function isBackupCryptoError(e: unknown): e is BackupCryptoError {
  return e instanceof BackupCryptoError;
}
