#!/usr/bin/env node
// `npm run bench -- NAME [args…]` runs bench/NAME.ts through tsx's loader (no build step, like
// bin/hokan.js). A benchmark prints a table and writes bench/results/NAME.json; see
// docs/decisions/0010-benchmarks.md.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bench');
const NAME = /^[a-z0-9][a-z0-9-]*$/;

function available() {
  let entries = [];
  try {
    entries = fs.readdirSync(benchDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && NAME.test(e.name.slice(0, -3)))
    .map((e) => e.name.slice(0, -3))
    .sort();
}

const [name, ...rest] = process.argv.slice(2);
const names = available();
if (!name || name === '--help' || name === '-h' || !NAME.test(name) || !names.includes(name)) {
  if (name && name !== '--help' && name !== '-h') process.stderr.write(`bench: unknown benchmark ${JSON.stringify(name)}\n`);
  process.stderr.write('usage: npm run bench -- NAME [args…]\n');
  process.stderr.write(`available benchmarks: ${names.length > 0 ? names.join(', ') : '(none)'}\n`);
  process.exit(2);
}

const { register } = await import('tsx/esm/api');
register();
// The benchmark sees its own arguments as process.argv.slice(2), as if run directly.
const file = path.join(benchDir, `${name}.ts`);
process.argv = [process.argv[0] ?? 'node', file, ...rest];
await import(pathToFileURL(file).href);
