import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { MisuseDetector, misusePolicy, sourceKey, type MisuseFinding } from '../../src/gateway/misuse/index.js';

const START = '2026-04-01T09:00:00+09:00';
const MIN = 60_000;
const HOUR = 60 * MIN;

function setup(policy: Parameters<typeof misusePolicy>[0] = {}) {
  const clock = new ManualClock(START);
  return { clock, d: new MisuseDetector(clock, policy) };
}

function fail(d: MisuseDetector, loginId: string, ip: string, times: number): MisuseFinding[] {
  const all: MisuseFinding[] = [];
  for (let i = 0; i < times; i++) all.push(...d.recordSignIn(loginId, ip, false));
  return all;
}

describe('R11.1③ brute force against one ID', () => {
  it('allows N−1 failures and locks at the N-th, for the base lockout exactly', () => {
    const { clock, d } = setup();
    expect(fail(d, 'ops.tanaka', '203.0.113.5', 4)).toEqual([]);
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: true });

    const findings = d.recordSignIn('ops.tanaka', '203.0.113.5', false);
    expect(findings).toEqual([
      expect.objectContaining({ kind: 'brute_force', loginId: 'ops.tanaka', sourceIp: '203.0.113.5', action: 'lock_credential', at: clock.now().toISOString() }),
    ]);
    expect(findings[0]!.detail).toMatch(/5 failed sign-ins.*locked for 60 s/);
    // Locked from any source: the lock is on the ID.
    expect(d.beforeSignIn('ops.tanaka', '198.51.100.9')).toEqual({ allowed: false, retryAfterMs: 60_000, reason: 'account_locked' });
    expect(d.beforeSignIn('ops.suzuki', '203.0.113.5')).toEqual({ allowed: true });

    clock.advance(59_999);
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: false, retryAfterMs: 1, reason: 'account_locked' });
    clock.advance(1);
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: true });
  });

  it('tracks unknown IDs like known ones, so a lock does not reveal which IDs exist', () => {
    const { d } = setup();
    fail(d, 'no-such-user', '203.0.113.5', 5);
    expect(d.beforeSignIn('no-such-user', '203.0.113.5')).toMatchObject({ allowed: false, reason: 'account_locked' });
  });

  it('forgets failures older than the failure window', () => {
    const { clock, d } = setup();
    fail(d, 'ops.tanaka', '203.0.113.5', 4);
    clock.advance(15 * MIN); // the 4 failures are exactly one window old now
    expect(fail(d, 'ops.tanaka', '203.0.113.5', 4)).toEqual([]);
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: true });
    expect(d.recordSignIn('ops.tanaka', '203.0.113.5', false)).toHaveLength(1);
  });

  it('doubles the lockout on each repeated lockout, up to the cap', () => {
    const { clock, d } = setup();
    const seen: number[] = [];
    for (let i = 0; i < 9; i++) {
      fail(d, 'ops.tanaka', `203.0.113.${i}`, 5);
      const gate = d.beforeSignIn('ops.tanaka', '192.0.2.1');
      if (gate.allowed) throw new Error('expected a lock');
      seen.push(gate.retryAfterMs);
      clock.advance(gate.retryAfterMs);
    }
    expect(seen).toEqual([60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000]);
  });

  it('a success resets the failure count but not the backoff level, which is forgotten 24 h after the last lockout', () => {
    const { clock, d } = setup();
    fail(d, 'ops.tanaka', '203.0.113.5', 4);
    expect(d.recordSignIn('ops.tanaka', '203.0.113.5', true)).toEqual([]);
    expect(fail(d, 'ops.tanaka', '203.0.113.5', 4)).toEqual([]); // counted from zero again
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: true });
    fail(d, 'ops.tanaka', '203.0.113.5', 1); // 5th: first lockout, 60 s
    clock.advance(60_000);
    d.recordSignIn('ops.tanaka', '203.0.113.5', true);

    fail(d, 'ops.tanaka', '203.0.113.6', 5); // second lockout: doubled despite the success
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.6')).toMatchObject({ allowed: false, retryAfterMs: 120_000 });

    clock.advance(24 * HOUR - 1);
    d.recordSignIn('ops.tanaka', '203.0.113.6', true);
    fail(d, 'ops.tanaka', '203.0.113.7', 5); // less than 24 h after the last lockout: doubled again
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.7')).toMatchObject({ allowed: false, retryAfterMs: 240_000 });

    clock.advance(24 * HOUR);
    fail(d, 'ops.tanaka', '203.0.113.8', 5); // 24 h after the last lockout: back to the base
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.8')).toMatchObject({ allowed: false, retryAfterMs: 60_000 });
  });

  it('does not count failures reported while the ID is locked', () => {
    const { clock, d } = setup();
    fail(d, 'ops.tanaka', '203.0.113.5', 5);
    expect(fail(d, 'ops.tanaka', '203.0.113.5', 10).filter((f) => f.loginId === 'ops.tanaka' && /for this ID/.test(f.detail))).toEqual([]);
    clock.advance(60_000);
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: true });
  });

  it('an operator can lift a lock', () => {
    const { d } = setup();
    fail(d, 'ops.tanaka', '203.0.113.5', 5);
    expect(d.unlockAccount('ops.tanaka')).toBe(true);
    expect(d.beforeSignIn('ops.tanaka', '203.0.113.5')).toEqual({ allowed: true });
    expect(d.unlockAccount('ops.tanaka')).toBe(false);
  });
});

describe('R11.1③ brute force from one source', () => {
  it('allows 19 failures from one source and locks it at the 20th', () => {
    const { clock, d } = setup();
    // 5 IDs × 4 failures: below the per-ID limit and below the stuffing limit (10 distinct IDs).
    const ids = ['a.one', 'a.two', 'a.three', 'a.four', 'a.five'];
    for (let i = 0; i < 19; i++) expect(d.recordSignIn(ids[i % 5]!, '203.0.113.5', false)).toEqual([]);
    expect(d.beforeSignIn('someone.else', '203.0.113.5')).toEqual({ allowed: true });
    const findings = d.recordSignIn(ids[19 % 5]!, '203.0.113.5', false);
    expect(findings).toEqual([expect.objectContaining({ kind: 'brute_force', sourceIp: '203.0.113.5', action: 'lock_credential' })]);
    expect(findings[0]!.detail).toMatch(/20 failed sign-ins from one source.*locked for 60 s/);
    expect(d.beforeSignIn('someone.else', '203.0.113.5')).toEqual({ allowed: false, retryAfterMs: 60_000, reason: 'source_locked' });
    expect(d.beforeSignIn('someone.else', '203.0.113.6')).toEqual({ allowed: true });
    clock.advance(60_000);
    expect(d.beforeSignIn('someone.else', '203.0.113.5')).toEqual({ allowed: true });
  });

  it('a success from the source does not reset the source count', () => {
    const { d } = setup();
    const ids = ['a.one', 'a.two', 'a.three', 'a.four', 'a.five'];
    for (let i = 0; i < 19; i++) d.recordSignIn(ids[i % 5]!, '203.0.113.5', false);
    d.recordSignIn('a.six', '203.0.113.5', true);
    const f = d.recordSignIn('a.seven', '203.0.113.5', false);
    expect(f.map((x) => x.kind)).toEqual(['brute_force']);
    expect(f[0]!.detail).toMatch(/from one source/);
  });

  it('treats an IPv6 /64 as one source and an IPv4-mapped address as the IPv4 one', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('::ffff:203.0.113.5')).toBe('203.0.113.5');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey('2001:db8::1', false)).toBe('2001:db8::1');
    const { d } = setup();
    const ids = ['a.one', 'a.two', 'a.three', 'a.four', 'a.five'];
    for (let i = 0; i < 20; i++) d.recordSignIn(ids[i % 5]!, `2001:db8:1:2::${(i + 1).toString(16)}`, false);
    expect(d.beforeSignIn('x.y', '2001:db8:1:2:ffff::9')).toMatchObject({ allowed: false, reason: 'source_locked' });
    expect(d.beforeSignIn('x.y', '2001:db8:1:3::1')).toEqual({ allowed: true });
  });
});

describe('R11.1③ credential stuffing', () => {
  it('9 distinct IDs from one source pass; the 10th is stuffing and locks the source, not the IDs', () => {
    const { d } = setup();
    for (let i = 0; i < 9; i++) expect(d.recordSignIn(`user${i}`, '198.51.100.7', false)).toEqual([]);
    expect(d.beforeSignIn('user9', '198.51.100.7')).toEqual({ allowed: true });
    const findings = d.recordSignIn('user9', '198.51.100.7', false);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ kind: 'credential_stuffing', sourceIp: '198.51.100.7', action: 'lock_credential' });
    expect(findings[0]!.related).toHaveLength(10);
    expect(new Set(findings[0]!.related)).toEqual(new Set(Array.from({ length: 10 }, (_, i) => `user${i}`)));
    expect(d.beforeSignIn('user0', '198.51.100.7')).toEqual({ allowed: false, retryAfterMs: 60_000, reason: 'source_locked' });
    // The real users, elsewhere, are not locked out by the attacker.
    expect(d.beforeSignIn('user0', '192.0.2.44')).toEqual({ allowed: true });
  });

  it('counts distinct IDs within the stuffing window only', () => {
    const { clock, d } = setup();
    for (let i = 0; i < 9; i++) d.recordSignIn(`user${i}`, '198.51.100.7', false);
    clock.advance(10 * MIN);
    expect(d.recordSignIn('user9', '198.51.100.7', false)).toEqual([]);
    expect(d.beforeSignIn('user9', '198.51.100.7')).toEqual({ allowed: true });
  });

  it('the same ID tried again is not a new distinct ID', () => {
    const { d } = setup();
    for (let i = 0; i < 9; i++) d.recordSignIn(`user${i}`, '198.51.100.7', false);
    expect(d.recordSignIn('user3', '198.51.100.7', false)).toEqual([]);
  });

  it('a stuffing run over many accounts is stopped after every 10 IDs, with growing lockouts', () => {
    const { clock, d } = setup();
    let tried = 0;
    let refused = 0;
    const lockouts: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const gate = d.beforeSignIn(`victim${i}`, '198.51.100.7');
      if (!gate.allowed) {
        refused++;
        lockouts.push(gate.retryAfterMs);
        clock.advance(gate.retryAfterMs);
        continue;
      }
      tried++;
      d.recordSignIn(`victim${i}`, '198.51.100.7', false);
      clock.advance(1000);
    }
    expect(tried).toBeLessThan(1000);
    // Seen one second after each lock: 60 s, 120 s, 240 s, 480 s.
    expect(lockouts.slice(0, 4)).toEqual([59_000, 119_000, 239_000, 479_000]);
    expect(refused).toBeGreaterThan(0);
  });
});

describe('R11.1③ misuse of a credential in use', () => {
  it('many_sources: 4 distinct sources pass, the 5th is a finding, reported once per window', () => {
    const { clock, d } = setup();
    for (let i = 1; i <= 4; i++) expect(d.recordCredentialUse('tok1', 'cust1', `203.0.113.${i}`, 'JP')).toEqual([]);
    expect(d.recordCredentialUse('tok1', 'cust1', '203.0.113.1', 'JP')).toEqual([]); // not new
    const f = d.recordCredentialUse('tok1', 'cust1', '203.0.113.5', 'JP');
    expect(f).toEqual([expect.objectContaining({ kind: 'many_sources', credentialId: 'tok1', customerId: 'cust1', sourceIp: '203.0.113.5', action: 'lock_credential' })]);
    expect(f[0]!.related).toHaveLength(5);
    expect(d.recordCredentialUse('tok1', 'cust1', '203.0.113.6', 'JP')).toEqual([]);
    clock.advance(5 * MIN);
    for (let i = 10; i < 14; i++) expect(d.recordCredentialUse('tok1', 'cust1', `203.0.113.${i}`, 'JP')).toEqual([]);
    expect(d.recordCredentialUse('tok1', 'cust1', '203.0.113.14', 'JP').map((x) => x.kind)).toEqual(['many_sources']);
  });

  it('many_sources: sources older than the window do not count', () => {
    const { clock, d } = setup();
    for (let i = 1; i <= 4; i++) d.recordCredentialUse('tok1', 'cust1', `203.0.113.${i}`, null);
    clock.advance(5 * MIN);
    expect(d.recordCredentialUse('tok1', 'cust1', '203.0.113.5', null)).toEqual([]);
    // Another credential of the same customer is counted on its own.
    for (let i = 1; i <= 4; i++) expect(d.recordCredentialUse('tok2', 'cust1', `203.0.113.${i}`, null)).toEqual([]);
  });

  it('impossible_travel: JP then abroad within 2 h is a finding; after 2 h it is not', () => {
    const { clock, d } = setup();
    d.recordCredentialUse('tok1', 'cust1', '203.0.113.1', 'JP');
    clock.advance(2 * HOUR - 1);
    const f = d.recordCredentialUse('tok1', 'cust1', '198.51.100.1', 'us');
    expect(f).toEqual([expect.objectContaining({ kind: 'impossible_travel', credentialId: 'tok1', customerId: 'cust1', sourceIp: '198.51.100.1', action: 'flag_customer' })]);
    expect(f[0]!.related).toEqual(['JP', 'US']);

    const other = setup();
    other.d.recordCredentialUse('tok1', 'cust1', '203.0.113.1', 'JP');
    other.clock.advance(2 * HOUR);
    expect(other.d.recordCredentialUse('tok1', 'cust1', '198.51.100.1', 'US')).toEqual([]);
  });

  it('impossible_travel: two foreign countries count too; one country, or unknown countries, do not', () => {
    const { d } = setup();
    d.recordCredentialUse('tok1', 'cust1', '198.51.100.1', 'US');
    expect(d.recordCredentialUse('tok1', 'cust1', '192.0.2.1', 'DE').map((x) => x.kind)).toEqual(['impossible_travel']);
    d.recordCredentialUse('tok2', 'cust2', '203.0.113.1', 'JP');
    expect(d.recordCredentialUse('tok2', 'cust2', '203.0.113.2', 'JP')).toEqual([]);
    expect(d.recordCredentialUse('tok2', 'cust2', '203.0.113.3', null)).toEqual([]);
  });

  it('abroad_use: the 3rd use from abroad by one customer within 24 h is a finding, once per 24 h', () => {
    const { clock, d } = setup({ manySourcesPerCredential: 100 });
    const abroad = (tok: string) => d.recordCredentialUse(tok, 'cust1', '198.51.100.1', 'US').filter((x) => x.kind === 'abroad_use');
    expect(abroad('tok1')).toEqual([]);
    clock.advance(HOUR);
    expect(abroad('tok2')).toEqual([]); // counted per customer, across its credentials
    clock.advance(HOUR);
    const f = abroad('tok1');
    expect(f).toEqual([expect.objectContaining({ kind: 'abroad_use', credentialId: 'tok1', customerId: 'cust1', action: 'flag_customer' })]);
    expect(f[0]!.detail).toMatch(/3 uses from outside JP/);
    expect(abroad('tok1')).toEqual([]);
    clock.advance(24 * HOUR);
    expect(abroad('tok1')).toEqual([]);
    expect(abroad('tok1')).toEqual([]);
    expect(abroad('tok1')).toHaveLength(1);
  });

  it('abroad_use: uses spread over more than 24 h are not a finding; uses from JP never count', () => {
    const { clock, d } = setup();
    for (let i = 0; i < 5; i++) {
      expect(d.recordCredentialUse('tok1', 'cust1', '198.51.100.1', 'US').filter((x) => x.kind === 'abroad_use')).toEqual([]);
      expect(d.recordCredentialUse('tok1', 'cust1', '203.0.113.1', 'JP').filter((x) => x.kind === 'abroad_use')).toEqual([]);
      clock.advance(12 * HOUR);
    }
  });

  it('the action per kind comes from the policy', () => {
    const { d } = setup({ actions: { abroad_use: 'suspend_customer' } });
    expect(d.policy.actions.brute_force).toBe('lock_credential');
    for (let i = 0; i < 2; i++) d.recordCredentialUse('tok1', 'cust1', '198.51.100.1', 'KR');
    expect(d.recordCredentialUse('tok1', 'cust1', '198.51.100.1', 'KR').map((x) => [x.kind, x.action])).toEqual([['abroad_use', 'suspend_customer']]);
  });

  it('refuses a policy that cannot work', () => {
    expect(() => misusePolicy({ maxFailuresPerAccount: 0 })).toThrow(/maxFailuresPerAccount/);
    expect(() => misusePolicy({ lockoutBaseMs: 10_000, lockoutMaxMs: 5_000 })).toThrow(/lockoutMaxMs/);
    expect(() => misusePolicy({ homeCountry: 'jp' })).toThrow(/homeCountry/);
  });
});

describe('bounded memory under attack', () => {
  it('100,000 distinct sources and IDs never hold more than the configured entries per table', () => {
    const max = 1000;
    const { clock, d } = setup({ maxTrackedKeys: max });
    let peak = 0;
    for (let i = 0; i < 100_000; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      d.recordSignIn(`bot${i}`, ip, false);
      d.recordCredentialUse(`tok${i}`, `cust${i}`, ip, i % 2 === 0 ? 'US' : null);
      if (i % 1000 === 0) {
        const s = d.stateSize();
        peak = Math.max(peak, s.accounts, s.sources, s.credentials, s.customers);
        clock.advance(100);
      }
    }
    const s = d.stateSize();
    expect(Math.max(peak, s.accounts, s.sources, s.credentials, s.customers)).toBeLessThanOrEqual(max);
    expect(s.total).toBeLessThanOrEqual(4 * max);
    expect(s.evicted).toBeGreaterThan(0);
  });

  it('a locked source is not pushed out by a flood of new ones', () => {
    const { d } = setup({ maxTrackedKeys: 1000 });
    for (let i = 0; i < 10; i++) d.recordSignIn(`user${i}`, '198.51.100.7', false); // stuffing: source locked
    expect(d.beforeSignIn('x.y', '198.51.100.7')).toMatchObject({ allowed: false });
    for (let i = 0; i < 100_000; i++) d.recordSignIn('flood', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, false);
    expect(d.stateSize().sources).toBeLessThanOrEqual(1000);
    expect(d.beforeSignIn('x.y', '198.51.100.7')).toMatchObject({ allowed: false, reason: 'source_locked' });
  });

  it('prune() drops entries that no longer hold anything', () => {
    const { clock, d } = setup();
    for (let i = 0; i < 50; i++) {
      d.recordSignIn(`user${i}`, `203.0.113.${i}`, false);
      d.recordCredentialUse(`tok${i}`, `cust${i}`, `203.0.113.${i}`, 'US');
    }
    fail(d, 'ops.tanaka', '192.0.2.1', 5); // a lockout: its level is kept for 24 h
    expect(d.stateSize().total).toBeGreaterThan(150);
    clock.advance(3 * HOUR); // past every window but the 24 h ones
    d.prune();
    expect(d.stateSize()).toMatchObject({ accounts: 1, sources: 0, credentials: 0 });
    expect(d.stateSize().customers).toBe(50); // abroad uses are kept for 24 h
    clock.advance(24 * HOUR);
    d.prune();
    expect(d.stateSize().total).toBe(0);
  });
});
