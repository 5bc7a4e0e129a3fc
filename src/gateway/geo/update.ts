import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_GEO_PACKAGE, readPackageVersion } from './country-lookup.js';

/** The npm arguments `hokan geo update` runs (no shell involved). */
export const GEO_UPDATE_ARGS: readonly string[] = ['install', '--save-exact', `${DEFAULT_GEO_PACKAGE}@latest`];

export interface GeoUpdateResult {
  /** Installed package version before and after; null when it was not installed. */
  before: string | null;
  after: string | null;
  /** npm's stdout and stderr. */
  output: string;
}

export interface GeoUpdateOptions {
  /** The npm executable; default `npm`, found on the PATH of `env`. */
  npmCommand?: string;
  /** Where package.json is; default: the project this file belongs to. */
  projectRoot?: string;
  /** Environment of the npm process; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Default 5 minutes. */
  timeoutMs?: number;
}

export class GeoUpdateError extends Error {
  constructor(
    message: string,
    readonly output: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GeoUpdateError';
  }
}

const here = import.meta.dirname ?? path.dirname(fileURLToPath(import.meta.url));

/** The nearest directory at or above `from` that has a package.json. */
export function findProjectRoot(from: string = here): string {
  let dir = path.resolve(from);
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No package.json found at or above ${from}`);
    dir = parent;
  }
}

export function installedGeoPackageVersion(projectRoot: string): Promise<string | null> {
  return readPackageVersion(path.join(projectRoot, 'node_modules', DEFAULT_GEO_PACKAGE, 'package.json'));
}

/**
 * Updates the shipped geo database to the newest published package (`npm install --save-exact
 * …@latest` in the project root) and reports the versions before and after. package.json and
 * package-lock.json change: commit them so every machine gets the same data. A running server
 * keeps the database it loaded until it is restarted (or opens a new CountryLookup).
 */
export async function updateGeoDatabase(opts: GeoUpdateOptions = {}): Promise<GeoUpdateResult> {
  const root = opts.projectRoot ?? findProjectRoot();
  const before = await installedGeoPackageVersion(root);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      opts.npmCommand ?? 'npm',
      [...GEO_UPDATE_ARGS],
      {
        cwd: root,
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? 5 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
        windowsHide: true,
      },
      (err, stdout, stderr) => {
        const text = [stdout, stderr].filter((s) => s.length > 0).join('\n');
        if (err) {
          reject(new GeoUpdateError(`npm ${GEO_UPDATE_ARGS.join(' ')} failed: ${err.message}`, text, { cause: err }));
        } else {
          resolve(text);
        }
      },
    );
  });
  const after = await installedGeoPackageVersion(root);
  return { before, after, output };
}
