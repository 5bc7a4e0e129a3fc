import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReference } from '../../src/core/config.js';

const root = path.resolve(import.meta.dirname, '../..');
const read = (f: string) => fs.readFileSync(path.join(root, f), 'utf8');

/** variable → default, from a markdown table whose first column names variables in backticks. */
function configTable(markdown: string): Map<string, string> {
  const start = markdown.indexOf('| variable | default | meaning |');
  expect(start).toBeGreaterThanOrEqual(0);
  const rows = new Map<string, string>();
  for (const line of markdown.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [names, def] = line.split(' | ').map((c) => c.replace(/^\|\s*/, '').trim());
    for (const m of (names ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)) rows.set(m[1]!, (def ?? '').replaceAll('`', ''));
  }
  return rows;
}

describe('deployment documentation stays true', () => {
  it('docs/deployment.md carries the same configuration reference as the README', () => {
    const readme = configTable(read('README.md'));
    const deployment = configTable(read('docs/deployment.md'));
    expect(readme.size).toBeGreaterThan(30);
    expect([...deployment]).toEqual([...readme]);
  });

  it('every variable of configReference (src/core/config.ts) is in the README table with the same default', () => {
    const readme = configTable(read('README.md'));
    for (const [names, def] of configReference) {
      for (const name of names.split(/\s*\/\s*/)) {
        expect(readme.has(name), name).toBe(true);
        expect(readme.get(name), name).toBe(def);
      }
    }
  });

  it('the README links the deployment guide; the unit and container file it names exist and run `hokan serve`', () => {
    expect(read('README.md')).toContain('](docs/deployment.md)');
    expect(read('deploy/hokan.service')).toMatch(/^ExecStart=.*bin\/hokan\.js serve$/m);
    const containerfile = read('deploy/Containerfile');
    expect(containerfile).toMatch(/^FROM docker\.io\/library\/node:20-slim$/m);
    expect(containerfile).toMatch(/^USER node$/m);
    // --omit=dev works because tsx, which runs the sources, is a runtime dependency.
    expect(containerfile).toContain('npm ci --omit=dev');
    expect(Object.keys((JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies)).toContain('tsx');
  });
});
