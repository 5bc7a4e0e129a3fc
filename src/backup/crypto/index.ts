export { BackupCryptoError, BackupIntegrityError, isBackupCryptoError } from './errors.js';
export type { BackupCryptoErrorCode, BackupIntegrityErrorCode, IntegrityLocation } from './errors.js';
export { KEY_LENGTH, generateDataKey, keyFingerprint, parseMasterKey, unwrapDataKey, wrapDataKey } from './keys.js';
export {
  DEFAULT_CHUNK_SIZE,
  FORMAT_VERSION,
  HEADER_LENGTH,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  RECORD_OVERHEAD,
  encryptedLength,
} from './format.js';
export { createDecryptStream, createEncryptStream, decryptBuffer, encryptBuffer } from './streams.js';
export type { DecryptOptions, EncryptOptions } from './streams.js';
