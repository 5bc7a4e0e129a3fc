import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HokanError } from '../../src/core/errors.js';
import {
  AbroadRefusedError,
  CountryLookup,
  DEFAULT_GEO_PACKAGE,
  GEO_UPDATE_ARGS,
  GeoDatabaseError,
  GeoUpdateError,
  compileOriginPolicy,
  decideOrigin,
  findProjectRoot,
  isPrivateNetwork,
  normalizeIp,
  parseCidr,
  refusalError,
  updateGeoDatabase,
  type CountrySource,
} from '../../src/gateway/geo/index.js';

let lookup: CountryLookup;

beforeAll(async () => {
  lookup = await CountryLookup.open();
});

// Addresses checked against the shipped database (DB-IP Lite, dbip-country-mmdb 2.3.2026060120).
const JAPANESE = [
  '133.11.0.1', // 133.0.0.0/8, JPNIC academic (University of Tokyo)
  '202.232.0.1', // IIJ
  '203.178.141.194', // WIDE Project
  '126.0.0.1', // SoftBank
  '2001:240::1', // IIJ IPv6
  '2400:4050::1', // NTT OCN IPv6
];

describe('CountryLookup against the shipped database', () => {
  it('places well-known Japanese networks in JP, IPv6 included (where the WHOIS/ASN data said AU)', () => {
    for (const ip of ['2001:200::1', '2001:218::1', '2001:268::1']) expect(lookup.countryOf(ip), ip).toBe('JP');
    for (const ip of JAPANESE) expect(lookup.countryOf(ip), ip).toBe('JP');
  });

  it('places foreign networks abroad', () => {
    expect(lookup.countryOf('8.8.8.8')).toBe('US');
    // Google's IPv6 resolver range: DB-IP says CA, other sources US; abroad either way.
    expect(lookup.countryOf('2001:4860:4860::8888')).not.toBe('JP');
    expect(lookup.countryOf('2001:4860:4860::8888')).not.toBeNull();
    expect(lookup.countryOf('193.99.144.80')).toBe('DE'); // heise.de
    expect(lookup.countryOf('2003::1')).toBe('DE'); // Deutsche Telekom
    expect(lookup.countryOf('114.114.114.114')).toBe('CN');
    expect(lookup.countryOf('2400:3200::1')).toBe('CN'); // Alibaba
    // 1.1.1.0/24 is registered to APNIC (AU) and announced by Cloudflare (US): sources differ.
    const one = lookup.countryOf('1.1.1.1');
    expect(one).not.toBeNull();
    expect(one).not.toBe('JP');
  });

  it('reads IPv4-mapped IPv6 as the IPv4 address, in every spelling', () => {
    expect(lookup.countryOf('::ffff:8.8.8.8')).toBe('US');
    expect(lookup.countryOf('::FFFF:133.11.0.1')).toBe('JP');
    expect(lookup.countryOf('::ffff:0808:0808')).toBe('US');
    expect(lookup.countryOf('0:0:0:0:0:ffff:850b:1')).toBe('JP'); // 133.11.0.1
  });

  it('returns null, without throwing, for what is not an address', () => {
    for (const bad of ['x', '', '999.1.1.1', '1.2.3.4/24', ' 8.8.8.8', '8.8.8.8:443', '[::1]', '01.2.3.4', 'localhost', '1.2.3']) {
      expect(lookup.countryOf(bad), JSON.stringify(bad)).toBeNull();
    }
    expect(lookup.countryOf(undefined as unknown as string)).toBeNull();
  });

  it('returns null for addresses the database does not place', () => {
    expect(lookup.countryOf('10.1.2.3')).toBeNull();
    expect(lookup.countryOf('0.0.0.0')).toBeNull();
    expect(lookup.countryOf('240.0.0.1')).toBeNull();
    expect(lookup.countryOf('::')).toBeNull();
  });

  it('reports the database version, build date and shape', () => {
    const info = lookup.info();
    expect(info.packageVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.buildEpoch).toBeInstanceOf(Date);
    expect(info.buildEpoch!.getUTCFullYear()).toBeGreaterThanOrEqual(2026);
    expect(info.source).toContain(path.join('node_modules', DEFAULT_GEO_PACKAGE));
    expect(info.source.endsWith('.mmdb')).toBe(true);
    expect(info.ipVersion).toBe(6);
    expect(info.nodeCount).toBeGreaterThan(100_000);
    expect(info.databaseType).toMatch(/country/i);
  });

  it('opens another file by path, and fails clearly on a missing or foreign one', async () => {
    const dir = path.dirname(lookup.info().source);
    const v4 = await CountryLookup.open({ path: path.join(dir, 'dbip-country-ipv4.mmdb') });
    expect(v4.info().ipVersion).toBe(4);
    expect(v4.info().packageVersion).toBeNull();
    expect(v4.countryOf('133.11.0.1')).toBe('JP');
    expect(v4.countryOf('2001:240::1')).toBeNull(); // an IPv4 tree cannot answer for IPv6

    await expect(CountryLookup.open({ path: '/nonexistent/geo.mmdb' })).rejects.toThrow(GeoDatabaseError);
    await expect(CountryLookup.open({ path: path.join(dir, 'package.json') })).rejects.toThrow(/not a valid MMDB/);
  });

  it('logs its lookup rate (information, not an assertion)', () => {
    const n = 200_000;
    const rnd = (k: number) => Math.floor(Math.random() * k);
    const v4 = Array.from({ length: n }, () => `${1 + rnd(222)}.${rnd(256)}.${rnd(256)}.${rnd(256)}`);
    const v6 = Array.from({ length: n }, () => `240${rnd(10)}:${rnd(65536).toString(16)}:${rnd(65536).toString(16)}::${rnd(65536).toString(16)}`);
    const rate = (ips: string[]): number => {
      for (let i = 0; i < 20_000; i++) lookup.countryOf(ips[i]!); // warm-up
      const t = process.hrtime.bigint();
      let placed = 0;
      for (const ip of ips) if (lookup.countryOf(ip) !== null) placed++;
      expect(placed).toBeGreaterThan(0);
      return Math.round(ips.length / (Number(process.hrtime.bigint() - t) / 1e9));
    };
    const r4 = rate(v4);
    const r6 = rate(v6);
    console.log(`geo lookups/s: IPv4 ${r4.toLocaleString('en')} · IPv6 ${r6.toLocaleString('en')} (random addresses, no per-address cache)`);
  });
});

describe('normalizeIp', () => {
  it('keeps IPv4 and IPv6, maps IPv4-mapped to IPv4, drops zones', () => {
    expect(normalizeIp('1.2.3.4')).toEqual({ address: '1.2.3.4', family: 4 });
    expect(normalizeIp('::ffff:1.2.3.4')).toEqual({ address: '1.2.3.4', family: 4 });
    expect(normalizeIp('::ffff:102:304')).toEqual({ address: '1.2.3.4', family: 4 });
    expect(normalizeIp('2001:DB8::1')).toEqual({ address: '2001:db8::1', family: 6 });
    expect(normalizeIp('fe80::1%eth0')).toEqual({ address: 'fe80::1', family: 6 });
    expect(normalizeIp('1.2.3.4%eth0')).toBeNull();
    expect(normalizeIp('::ffff:ffff')).toEqual({ address: '::ffff:ffff', family: 6 }); // not mapped
  });
});

describe('decideOrigin (Japan only)', () => {
  it('lets in Japanese addresses as domestic', () => {
    for (const ip of JAPANESE) {
      expect(decideOrigin(ip, lookup, {}), ip).toEqual({ allowed: true, country: 'JP', reason: 'domestic' });
    }
    expect(decideOrigin('::ffff:133.11.0.1', lookup, {}).reason).toBe('domestic');
  });

  it('refuses foreign addresses as abroad, with the country for the record', () => {
    expect(decideOrigin('8.8.8.8', lookup, {})).toEqual({ allowed: false, country: 'US', reason: 'abroad' });
    expect(decideOrigin('::ffff:8.8.8.8', lookup, {})).toEqual({ allowed: false, country: 'US', reason: 'abroad' });
    expect(decideOrigin('2003::1', lookup, {})).toEqual({ allowed: false, country: 'DE', reason: 'abroad' });
    expect(decideOrigin('114.114.114.114', lookup, {}).reason).toBe('abroad');
  });

  it('lets in private, loopback, link-local, CGNAT and ULA addresses without looking them up', () => {
    // The shipped database wrongly maps 192.168.0.0/16 and 172.16.0.0/12 to AU: this must not matter.
    const addrs = ['127.0.0.1', '10.0.0.1', '172.16.5.4', '172.31.255.254', '192.168.1.1', '169.254.1.1', '100.64.0.1', '100.127.255.254', '::1', 'fd00::1', 'fc12:3456::1', 'fe80::1', 'fe80::1%eth0', '::ffff:192.168.1.1', '::ffff:127.0.0.1'];
    for (const ip of addrs) {
      expect(decideOrigin(ip, lookup, {}), ip).toEqual({ allowed: true, country: null, reason: 'private_network' });
      expect(isPrivateNetwork(ip), ip).toBe(true);
    }
    // Just outside the ranges.
    for (const ip of ['100.128.0.1', '172.32.0.1', '11.0.0.1', 'fec0::1', '8.8.8.8']) expect(isPrivateNetwork(ip), ip).toBe(false);
  });

  it('refuses public addresses it cannot place, unless unknownAllowed', () => {
    const unknown = ['0.0.0.0', '240.0.0.1', '255.255.255.255', '224.0.0.1'];
    for (const ip of unknown) {
      expect(decideOrigin(ip, lookup, {}), ip).toEqual({ allowed: false, country: null, reason: 'unknown_location' });
      expect(decideOrigin(ip, lookup, { unknownAllowed: true }).allowed, ip).toBe(true);
    }
    // What is not an address at all is never let in.
    for (const bad of ['x', '', '1.2.3.4/24', '999.1.1.1']) {
      expect(decideOrigin(bad, lookup, { unknownAllowed: true }), bad).toEqual({ allowed: false, country: null, reason: 'unknown_location' });
    }
  });

  it('honours allowCountries', () => {
    expect(decideOrigin('8.8.8.8', lookup, { allowCountries: ['jp', 'US'] })).toEqual({ allowed: true, country: 'US', reason: 'domestic' });
    expect(decideOrigin('133.11.0.1', lookup, { allowCountries: ['US'] }).reason).toBe('abroad');
  });

  it('lets in allowlisted CIDRs, IPv4 and IPv6, and keeps the database country for the record', () => {
    const policy = compileOriginPolicy({ allowCidrs: ['8.8.8.0/24', '2003::/19', '193.99.144.80'] });
    expect(decideOrigin('8.8.8.8', lookup, policy)).toEqual({ allowed: true, country: 'US', reason: 'allowlisted' });
    expect(decideOrigin('::ffff:8.8.8.200', lookup, policy).reason).toBe('allowlisted');
    expect(decideOrigin('8.8.9.1', lookup, policy).reason).not.toBe('allowlisted');
    expect(decideOrigin('2003:1234::5', lookup, policy)).toEqual({ allowed: true, country: 'DE', reason: 'allowlisted' });
    expect(decideOrigin('193.99.144.80', lookup, policy).reason).toBe('allowlisted');
    expect(decideOrigin('193.99.144.81', lookup, policy).reason).toBe('abroad');
    // An exception for a Japanese network the database misplaces (KDDI 2001:268::/32; decision 0012).
    expect(decideOrigin('2001:268:1::1', lookup, { allowCidrs: ['2001:268::/32'] }).allowed).toBe(true);
  });

  it('rejects a bad CIDR or country, naming the entry', () => {
    const cases: Array<[string, RegExp]> = [
      ['10.0.0.0/33', /"10\.0\.0\.0\/33" has an invalid prefix length/],
      ['2001:db8::/129', /invalid prefix length \(0–128\)/],
      ['10.0.0.0/', /invalid prefix length/],
      ['10.0.0.0/-1', /invalid prefix length/],
      ['banana', /"banana" is not a valid CIDR/],
      ['10.1.2.3/8', /"10\.1\.2\.3\/8" has host bits set below \/8/],
      ['2001:db8::1/32', /host bits set below \/32/],
      ['::ffff:1.2.3.0/120', /IPv4-mapped/],
      ['fe80::%eth0/64', /zone/],
    ];
    for (const [entry, message] of cases) {
      let err: unknown;
      try {
        compileOriginPolicy({ allowCidrs: ['192.0.2.0/24', entry] });
      } catch (e) {
        err = e;
      }
      expect(err, entry).toBeInstanceOf(HokanError);
      const h = err as HokanError;
      expect(h.code).toBe('validation_failed');
      expect(h.messages.en, entry).toMatch(message);
      expect(h.messages.en).toContain('allowCidrs[1]');
      expect(h.messages.ja).toContain(`「${entry}」`);
    }
    expect(() => compileOriginPolicy({ allowCountries: ['JPN'] })).toThrow(/allowCountries\[0\].*"JPN"/);
    expect(parseCidr('2001:DB8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 6 });
    expect(parseCidr(' 0.0.0.0/0 ')).toEqual({ address: '0.0.0.0', prefix: 0, family: 4 });
    expect(parseCidr('203.0.113.7')).toEqual({ address: '203.0.113.7', prefix: 32, family: 4 });
  });

  it('compiles plain option objects once and works with any country source', () => {
    const fake: CountrySource = { countryOf: (ip) => (ip === '198.51.100.1' ? 'JP' : null) };
    const opts = { allowCidrs: ['203.0.113.0/24'] };
    expect(decideOrigin('198.51.100.1', fake, opts).reason).toBe('domestic');
    expect(decideOrigin('203.0.113.9', fake, opts)).toEqual({ allowed: true, country: null, reason: 'allowlisted' });
    expect(decideOrigin('198.51.100.2', fake, opts).reason).toBe('unknown_location');
  });
});

describe('refusalError', () => {
  it('is a bilingual 403 forbidden naming the reason, never the address', () => {
    const ip = '8.8.8.8';
    const decision = decideOrigin(ip, lookup, {});
    const err = refusalError(decision);
    expect(err).toBeInstanceOf(AbroadRefusedError);
    expect(err).toBeInstanceOf(HokanError);
    expect(err.code).toBe('forbidden');
    expect(err.httpStatus).toBe(403);
    expect(err.details).toEqual([{ path: 'source', message: 'abroad' }]);
    expect(err.messages.ja).toContain('本サービスは日本国内でのみご利用いただけます（利用規約第4条）。海外からのアクセスはお受けできません。');
    expect(err.messages.en).toContain('This service is provided in Japan only (Terms, Art. 4); access from abroad is not accepted.');
    expect(err.country).toBe('US');
    const body = JSON.stringify(err.toJSON());
    expect(body).not.toContain(ip);
    expect(body).not.toContain('US');
    expect(err.message).not.toContain(ip);

    const unknown = refusalError(decideOrigin('240.0.0.1', lookup, {}));
    expect(unknown.details).toEqual([{ path: 'source', message: 'unknown_location' }]);
    expect(unknown.messages.ja).toContain('日本国内であることを確認できない');
    expect(JSON.stringify(unknown.toJSON())).not.toContain('240.0.0.1');
  });

  it('refuses to make an error for an allowed decision', () => {
    expect(() => refusalError(decideOrigin('133.11.0.1', lookup, {}))).toThrow(TypeError);
    expect(() => refusalError(decideOrigin('240.0.0.1', lookup, { unknownAllowed: true }))).toThrow(TypeError);
  });
});

describe('updateGeoDatabase (with a fake npm)', () => {
  let dir: string;
  let bin: string;
  let project: string;
  const pkgDir = () => path.join(project, 'node_modules', DEFAULT_GEO_PACKAGE);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hokan-geo-update-'));
    bin = path.join(dir, 'bin');
    project = path.join(dir, 'project');
    await mkdir(bin);
    await mkdir(project);
    await writeFile(path.join(project, 'package.json'), '{"name":"fake","version":"0.0.0"}\n');
    // Records its arguments and working directory, then "installs" version 2.0.0.
    const script = [
      '#!/bin/sh',
      'printf "%s\\n" "$@" > "$PWD/npm-args.txt"',
      'pwd > "$PWD/npm-cwd.txt"',
      `mkdir -p "node_modules/${DEFAULT_GEO_PACKAGE}"`,
      `printf '{"name":"${DEFAULT_GEO_PACKAGE}","version":"2.0.0"}' > "node_modules/${DEFAULT_GEO_PACKAGE}/package.json"`,
      'echo "changed 1 package in 0.1s"',
      'echo "npm warn something" >&2',
    ].join('\n');
    await writeFile(path.join(bin, 'npm'), `${script}\n`);
    await chmod(path.join(bin, 'npm'), 0o755);
    await writeFile(path.join(bin, 'npm-fails'), '#!/bin/sh\necho "npm error 404 Not Found" >&2\nexit 1\n');
    await chmod(path.join(bin, 'npm-fails'), 0o755);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs npm install --save-exact …@latest in the project root (npm found first on PATH) and reports versions', async () => {
    await mkdir(pkgDir(), { recursive: true });
    await writeFile(path.join(pkgDir(), 'package.json'), `{"name":"${DEFAULT_GEO_PACKAGE}","version":"1.0.0"}`);
    const result = await updateGeoDatabase({
      projectRoot: project,
      env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env['PATH'] ?? ''}` },
    });
    expect(result.before).toBe('1.0.0');
    expect(result.after).toBe('2.0.0');
    expect(result.output).toContain('changed 1 package');
    expect(result.output).toContain('npm warn something');
    const args = (await readFile(path.join(project, 'npm-args.txt'), 'utf8')).trim().split('\n');
    expect(args).toEqual(['install', '--save-exact', `${DEFAULT_GEO_PACKAGE}@latest`]);
    expect(args).toEqual([...GEO_UPDATE_ARGS]);
    expect((await readFile(path.join(project, 'npm-cwd.txt'), 'utf8')).trim()).toBe(project);
  });

  it('takes an explicit npm command, reports null before a first install, and surfaces failures', async () => {
    await rm(path.join(project, 'node_modules'), { recursive: true, force: true });
    const result = await updateGeoDatabase({ projectRoot: project, npmCommand: path.join(bin, 'npm') });
    expect(result.before).toBeNull();
    expect(result.after).toBe('2.0.0');

    const failed = updateGeoDatabase({ projectRoot: project, npmCommand: path.join(bin, 'npm-fails') });
    await expect(failed).rejects.toBeInstanceOf(GeoUpdateError);
    await expect(failed).rejects.toMatchObject({ output: expect.stringContaining('404 Not Found') });
  });

  it('finds this project as the default root', () => {
    const root = findProjectRoot();
    expect(root).toBe(path.resolve(import.meta.dirname, '../..'));
  });
});
