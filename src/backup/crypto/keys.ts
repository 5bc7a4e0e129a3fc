import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { BackupCryptoError } from './errors.js';

export const KEY_LENGTH = 32;
const WRAP_NONCE_LENGTH = 12;
const WRAP_TAG_LENGTH = 16;
const WRAP_VERSION = 'v1';
// The prefix keeps a wrapped data key from ever authenticating as any other GCM message made with
// the master key; the context binds it to one customer, so copying a wrapped key into another
// customer's row yields key_unwrap_failed instead of a working key.
const WRAP_AAD_PREFIX = 'hokan-dek-v1|';
const FINGERPRINT_PREFIX = 'hokan-key-fp|';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}=?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

const MASTER_KEY_FORM =
  'The backup master key must be exactly 32 bytes, written as 64 hexadecimal characters or as ' +
  "base64 / base64url (43 characters, or 44 with one '=' of padding).";

/**
 * Reads the master key from configuration text. Strict on purpose: Buffer.from(…, 'base64')
 * silently skips characters it does not know, so a mistyped key would otherwise become a
 * different, valid-looking key and every backup made with it unreadable with the intended one.
 */
export function parseMasterKey(text: string): Buffer {
  // The message never includes the value: errors end up in logs, and a near-miss key is still
  // most of a secret.
  if (typeof text !== 'string') throw new BackupCryptoError('invalid_master_key', `${MASTER_KEY_FORM} It is not text.`);
  const s = text.trim();
  if (HEX_KEY.test(s)) return Buffer.from(s, 'hex');
  if (BASE64_KEY.test(s) || BASE64URL_KEY.test(s)) {
    const body = s.endsWith('=') ? s.slice(0, -1) : s;
    const urlForm = body.replace(/\+/g, '-').replace(/\//g, '_');
    const key = Buffer.from(urlForm, 'base64url');
    // Re-encoding rejects values whose last character carries non-zero spare bits, i.e. text
    // that is not what any encoder would produce for these 32 bytes.
    if (key.length === KEY_LENGTH && key.toString('base64url') === urlForm) return key;
  }
  throw new BackupCryptoError('invalid_master_key', `${MASTER_KEY_FORM} The value given (${s.length} characters after trimming) is neither.`);
}

export function generateDataKey(): Buffer {
  return randomBytes(KEY_LENGTH);
}

export function wrapDataKey(masterKey: Buffer, dataKey: Buffer, keyContext: string): string {
  assertMasterKey(masterKey);
  assertDataKey(dataKey);
  const aad = wrapAad(keyContext);
  // A random nonce is safe here: a master key wraps one key per customer (and per rotation), far
  // below the ~2^32 messages where random 96-bit GCM nonces start to risk a collision.
  const nonce = randomBytes(WRAP_NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: WRAP_TAG_LENGTH });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [WRAP_VERSION, nonce, ciphertext, tag].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

export function unwrapDataKey(masterKey: Buffer, wrapped: string, keyContext: string): Buffer {
  assertMasterKey(masterKey);
  const aad = wrapAad(keyContext);
  const parts = typeof wrapped === 'string' ? wrapped.split('.') : [];
  const [version, nonceText, ciphertextText, tagText] = parts;
  if (parts.length !== 4 || version !== WRAP_VERSION) throw unwrapFailed('it is not a v1 wrapped key (v1.<nonce>.<ciphertext>.<tag>)');
  const nonce = strictBase64url(nonceText);
  const ciphertext = strictBase64url(ciphertextText);
  const tag = strictBase64url(tagText);
  if (nonce?.length !== WRAP_NONCE_LENGTH || ciphertext?.length !== KEY_LENGTH || tag?.length !== WRAP_TAG_LENGTH) {
    throw unwrapFailed('one of its parts is not base64url of the expected length');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: WRAP_TAG_LENGTH });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw unwrapFailed('it does not authenticate under this master key and key context (wrong master key, another customer, or a damaged value)');
  }
}

/**
 * A short name for a key, for manifests and logs. The key is 256 random bits, so publishing 64
 * bits of a domain-separated hash of it gives nothing away; the prefix keeps the fingerprint from
 * matching any other SHA-256 of the key that might be stored elsewhere.
 */
export function keyFingerprint(key: Buffer): string {
  return createHash('sha256').update(FINGERPRINT_PREFIX).update(key).digest('hex').slice(0, 16);
}

export function assertDataKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_LENGTH) {
    throw new BackupCryptoError('invalid_data_key', `A backup data key must be a Buffer of exactly ${KEY_LENGTH} bytes.`);
  }
}

function assertMasterKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_LENGTH) {
    throw new BackupCryptoError('invalid_master_key', `The backup master key must be a Buffer of exactly ${KEY_LENGTH} bytes (see parseMasterKey).`);
  }
}

function wrapAad(keyContext: string): Buffer {
  // An empty context would let one wrapped key fit every caller that forgot to pass the customer.
  if (typeof keyContext !== 'string' || keyContext.length === 0) {
    throw new BackupCryptoError('invalid_argument', 'A key context (the customer id) is required to wrap or unwrap a data key.');
  }
  return Buffer.from(WRAP_AAD_PREFIX + keyContext, 'utf8');
}

function strictBase64url(text: string | undefined): Buffer | undefined {
  if (text === undefined || !BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

function unwrapFailed(reason: string): BackupCryptoError {
  return new BackupCryptoError('key_unwrap_failed', `The wrapped data key could not be unwrapped: ${reason}.`);
}
