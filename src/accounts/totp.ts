import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Second factor for the provider's operators: TOTP (RFC 6238) over HOTP (RFC 4226) with
 * HMAC-SHA1, 6 digits, 30-second steps and one step of tolerance either side, which is what
 * authenticator apps expect from an `otpauth://totp/` URI. `node:crypto` only.
 *
 * The secret must be stored so that it can be read back (the server computes the same HMAC), so it
 * cannot be hashed like a password (R18.1): it is kept sealed (`sealTotpSecret`, AES-256-GCM under
 * a key derived from the master key) and never shown again after enrolment. Replay is refused by remembering the last step accepted per user (`lastUsedStep`).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export const TOTP_DEFAULTS = Object.freeze({ digits: 6, stepSeconds: 30, window: 1 });

export interface TotpOptions {
  /** 6 to 10 (default 6). */
  digits?: number;
  /** Time step in seconds (default 30). */
  stepSeconds?: number;
  /** Steps accepted before and after the current one (default 1). */
  window?: number;
}

/** RFC 4648 base32, upper case, without padding. */
export function base32Encode(data: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * RFC 4648 base32; case, spaces, hyphens and trailing `=` padding are tolerated (people copy
 * secrets by hand). Throws on any other character or on an impossible length.
 */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
  if ([1, 3, 6].includes(clean.length % 8)) throw new Error('base32: invalid length');
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`base32: invalid character "${ch}"`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A new secret: 20 random bytes (the HMAC-SHA1 block of RFC 4226's recommendation), base32. */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(20));
}

/** The `otpauth://` URI that authenticator apps read from a QR code. */
export function totpUri(secret: string, account: string, issuer = 'hokan', options: TotpOptions = {}): string {
  const { digits, stepSeconds } = resolve(options);
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const query = new URLSearchParams({
    secret: base32Encode(base32Decode(secret)),
    issuer,
    algorithm: 'SHA1',
    digits: String(digits),
    period: String(stepSeconds),
  });
  return `otpauth://totp/${label}?${query.toString().replace(/\+/g, '%20')}`;
}

/** HOTP (RFC 4226) of one counter value. */
export function hotp(key: Uint8Array, counter: number, digits: number = TOTP_DEFAULTS.digits): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new Error('hotp: counter must be a non-negative integer');
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** The step a moment falls in: whole steps since the Unix epoch. */
export function totpStep(at: Date, stepSeconds: number = TOTP_DEFAULTS.stepSeconds): number {
  const ms = at.getTime();
  if (Number.isNaN(ms)) throw new Error('totp: invalid date');
  return Math.floor(ms / 1000 / stepSeconds);
}

/** The code for the moment `at`. */
export function totpCode(secret: string, at: Date, options: TotpOptions = {}): string {
  const { digits, stepSeconds } = resolve(options);
  return hotp(base32Decode(secret), totpStep(at, stepSeconds), digits);
}

/**
 * Checks a code against the steps around `at`. A step at or before `lastUsedStep` is never
 * accepted again (a code seen once, e.g. over a shoulder or in a log, cannot be replayed). On
 * success, store the returned `step` as the user's new `lastUsedStep` — atomically, with a
 * "only if greater" condition, so two concurrent sign-ins cannot both use one code.
 */
export function verifyTotp(secret: string, code: string, at: Date, lastUsedStep?: number, options: TotpOptions = {}): { ok: boolean; step?: number } {
  const { digits, stepSeconds, window } = resolve(options);
  const given = code.replace(/\s/g, '');
  if (!new RegExp(`^\\d{${digits}}$`).test(given)) return { ok: false };
  let key: Buffer;
  try {
    key = base32Decode(secret);
  } catch {
    return { ok: false };
  }
  const current = totpStep(at, stepSeconds);
  const givenBytes = Buffer.from(given);
  let matched: number | undefined;
  // Every candidate is computed and compared, so the time taken does not tell which one matched.
  for (let step = current - window; step <= current + window; step++) {
    if (step < 0) continue;
    const equal = timingSafeEqual(Buffer.from(hotp(key, step, digits)), givenBytes);
    const fresh = lastUsedStep === undefined || step > lastUsedStep;
    if (equal && fresh && matched === undefined) matched = step;
  }
  return matched === undefined ? { ok: false } : { ok: true, step: matched };
}

const SEAL_VERSION = 't1';
const SEAL_AAD_PREFIX = 'hokan-totp-v1|';

/**
 * The key that seals TOTP secrets at rest, derived from the installation's master key (HKDF-SHA256,
 * its own label), so that the master key itself never encrypts anything but what 0007 says.
 */
export function deriveTotpKey(masterKey: Uint8Array): Buffer {
  if (masterKey.length !== 32) throw new Error('totp: the master key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'hokan-totp-secret-v1', 32));
}

/**
 * Encrypts a secret for `users.totp_secret` (AES-256-GCM, random nonce), bound to the user: a
 * sealed secret copied into another user's row does not open.
 */
export function sealTotpSecret(key: Uint8Array, secret: string, userId: string): string {
  if (key.length !== 32) throw new Error('totp: the sealing key must be 32 bytes');
  const plain = base32Decode(secret);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(SEAL_AAD_PREFIX + userId, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return [SEAL_VERSION, nonce.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
}

/** The base32 secret back from `sealTotpSecret`; throws when the value, key or user does not match. */
export function openTotpSecret(key: Uint8Array, sealed: string, userId: string): string {
  const [version, nonce, ct, tag, ...rest] = sealed.split('.');
  if (version !== SEAL_VERSION || nonce === undefined || ct === undefined || tag === undefined || rest.length > 0) {
    throw new Error('totp: not a sealed secret');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(SEAL_AAD_PREFIX + userId, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return base32Encode(Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]));
  } catch {
    throw new Error('totp: the sealed secret does not open with this key for this user');
  }
}

function resolve(options: TotpOptions): { digits: number; stepSeconds: number; window: number } {
  const digits = options.digits ?? TOTP_DEFAULTS.digits;
  const stepSeconds = options.stepSeconds ?? TOTP_DEFAULTS.stepSeconds;
  const window = options.window ?? TOTP_DEFAULTS.window;
  if (!Number.isInteger(digits) || digits < 6 || digits > 10) throw new Error('totp: digits must be 6 to 10');
  if (!Number.isInteger(stepSeconds) || stepSeconds < 1) throw new Error('totp: stepSeconds must be a positive integer');
  if (!Number.isInteger(window) || window < 0 || window > 10) throw new Error('totp: window must be 0 to 10');
  return { digits, stepSeconds, window };
}
