import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  base32Decode,
  base32Encode,
  deriveTotpKey,
  generateTotpSecret,
  hotp,
  openTotpSecret,
  sealTotpSecret,
  totpCode,
  totpStep,
  totpUri,
  verifyTotp,
} from '../../src/accounts/totp.js';
import { ManualClock } from '../../src/core/clock.js';

// RFC 6238 appendix B uses the ASCII seed "12345678901234567890" for SHA1.
const RFC_SEED = Buffer.from('12345678901234567890', 'ascii');
const RFC_SECRET = base32Encode(RFC_SEED);

describe('base32 (RFC 4648)', () => {
  it('matches the RFC 4648 test vectors, without padding', () => {
    const vectors: Array<[string, string]> = [
      ['', ''],
      ['f', 'MY'],
      ['fo', 'MZXQ'],
      ['foo', 'MZXW6'],
      ['foob', 'MZXW6YQ'],
      ['fooba', 'MZXW6YTB'],
      ['foobar', 'MZXW6YTBOI'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(base32Encode(Buffer.from(plain))).toBe(encoded);
      expect(base32Decode(encoded).toString()).toBe(plain);
    }
    expect(RFC_SECRET).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  });

  it('tolerates padding, lower case, spaces and hyphens; refuses other characters and impossible lengths', () => {
    expect(base32Decode('MZXW6YQ=').toString()).toBe('foob');
    expect(base32Decode('mzxw 6ytb-oi').toString()).toBe('foobar');
    expect(() => base32Decode('MZXW1')).toThrow(/invalid character/);
    expect(() => base32Decode('M')).toThrow(/invalid length/);
  });

  it('round-trips random bytes of every length', () => {
    for (let n = 0; n < 64; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n * 11) & 0xff));
      expect(base32Decode(base32Encode(bytes)).equals(bytes)).toBe(true);
    }
  });
});

describe('HOTP (RFC 4226) and TOTP (RFC 6238)', () => {
  it('HOTP matches RFC 4226 appendix D', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) => expect(hotp(RFC_SEED, counter)).toBe(code));
  });

  it('TOTP matches the RFC 6238 SHA1 test vectors (8 digits)', () => {
    const vectors: Array<[number, string]> = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [seconds, code] of vectors) {
      const at = new Date(seconds * 1000);
      expect(totpCode(RFC_SECRET, at, { digits: 8 })).toBe(code);
      expect(verifyTotp(RFC_SECRET, code, at, undefined, { digits: 8 })).toEqual({ ok: true, step: totpStep(at) });
    }
  });

  it('defaults to 6 digits (the last 6 of the 8-digit value)', () => {
    expect(totpCode(RFC_SECRET, new Date(59_000))).toBe('287082');
  });
});

describe('secrets and URIs', () => {
  it('generates 20 random bytes as 32 base32 characters, different every time', () => {
    const a = generateTotpSecret();
    const b = generateTotpSecret();
    expect(a).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(a)).toHaveLength(20);
    expect(a).not.toBe(b);
  });

  it('builds an otpauth:// URI authenticator apps read', () => {
    const uri = totpUri(RFC_SECRET, 'ops.tanaka', 'hokan');
    expect(uri).toBe('otpauth://totp/hokan:ops.tanaka?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=hokan&algorithm=SHA1&digits=6&period=30');
    const spaced = new URL(totpUri(RFC_SECRET, 'a b@example.jp', 'hokan 保管'));
    expect(spaced.protocol).toBe('otpauth:');
    expect(decodeURIComponent(spaced.pathname)).toBe('/hokan 保管:a b@example.jp');
    expect(spaced.searchParams.get('issuer')).toBe('hokan 保管');
  });
});

describe('verifyTotp with a ManualClock', () => {
  const secret = base32Encode(Buffer.from('hokan-operator-totp-', 'ascii')); // fixed: the results are the same on every run

  it('accepts the current step and one step either side, nothing further', () => {
    const clock = new ManualClock('2026-04-01T09:00:15+09:00');
    const code = totpCode(secret, clock.now());
    const step = totpStep(clock.now());
    expect(verifyTotp(secret, code, clock.now())).toEqual({ ok: true, step });
    clock.advance(30_000); // next step: the code is one step old
    expect(verifyTotp(secret, code, clock.now())).toEqual({ ok: true, step });
    clock.advance(30_000); // two steps old
    expect(verifyTotp(secret, code, clock.now()).ok).toBe(false);
    clock.advance(-90_000); // one step before the code's step: the phone runs ahead
    expect(verifyTotp(secret, code, clock.now())).toEqual({ ok: true, step });
    clock.advance(-30_000);
    expect(verifyTotp(secret, code, clock.now()).ok).toBe(false);
  });

  it('refuses a replay of the step already used, and of older steps', () => {
    const clock = new ManualClock('2026-04-01T09:00:00+09:00');
    const first = verifyTotp(secret, totpCode(secret, clock.now()), clock.now());
    expect(first.ok).toBe(true);
    const lastUsed = first.step!;
    expect(verifyTotp(secret, totpCode(secret, clock.now()), clock.now(), lastUsed)).toEqual({ ok: false });
    const older = totpCode(secret, new Date(clock.now().getTime() - 30_000));
    expect(verifyTotp(secret, older, clock.now(), lastUsed)).toEqual({ ok: false });
    clock.advance(30_000);
    expect(verifyTotp(secret, totpCode(secret, clock.now()), clock.now(), lastUsed)).toEqual({ ok: true, step: lastUsed + 1 });
  });

  it('refuses malformed codes, wrong codes and a broken secret without throwing', () => {
    const at = new ManualClock('2026-04-01T00:00:00Z').now();
    const code = totpCode(secret, at);
    expect(verifyTotp(secret, code.slice(0, 5), at).ok).toBe(false);
    expect(verifyTotp(secret, `${code}0`, at).ok).toBe(false);
    expect(verifyTotp(secret, 'abcdef', at).ok).toBe(false);
    expect(verifyTotp(secret, code.replace(/./, (d) => String((Number(d) + 1) % 10)), at).ok).toBe(false);
    expect(verifyTotp('not base32!', code, at).ok).toBe(false);
    expect(verifyTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, at).ok).toBe(true);
  });
});

describe('secrets at rest', () => {
  it('seals a secret for one user under a key derived from the master key', () => {
    const master = randomBytes(32);
    const key = deriveTotpKey(master);
    expect(key.equals(master)).toBe(false);
    expect(deriveTotpKey(master).equals(key)).toBe(true);
    const secret = generateTotpSecret();
    const sealed = sealTotpSecret(key, secret, 'user-1');
    expect(sealed).toMatch(/^t1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain(secret);
    expect(sealTotpSecret(key, secret, 'user-1')).not.toBe(sealed); // random nonce
    expect(openTotpSecret(key, sealed, 'user-1')).toBe(secret);
  });

  it('does not open for another user, another key, or a tampered value', () => {
    const key = deriveTotpKey(randomBytes(32));
    const sealed = sealTotpSecret(key, generateTotpSecret(), 'user-1');
    expect(() => openTotpSecret(key, sealed, 'user-2')).toThrow(/does not open/);
    expect(() => openTotpSecret(deriveTotpKey(randomBytes(32)), sealed, 'user-1')).toThrow(/does not open/);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    expect(() => openTotpSecret(key, [parts[0], parts[1], ct.toString('base64url'), parts[3]].join('.'), 'user-1')).toThrow(/does not open/);
    expect(() => openTotpSecret(key, 'GEZDGNBV', 'user-1')).toThrow(/not a sealed secret/);
  });
});
