import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile() && f.name.endsWith('.ts')).map((f) => path.join(f.parentPath, f.name));
}

describe('documentation stays true', () => {
  it('the README configuration table names every HOKAN_ variable the code reads', () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const used = new Set<string>();
    for (const file of sourceFiles(path.join(root, 'src'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\bHOKAN_[A-Z0-9_]*[A-Z0-9]\b/g)) used.add(m[0]);
    }
    const missing = [...used].filter((v) => !readme.includes(`\`${v}\``));
    expect(missing).toEqual([]);
  });

  // The requirements live beside the project (../shared), as in every session and in CI.
  const specPath = path.join(root, '..', 'shared', 'spec', 'REQUIREMENTS.md');
  it.skipIf(!fs.existsSync(specPath))('docs/traceability.md cites only requirement ids that exist, and every id cited in src is mapped', () => {
    const spec = fs.readFileSync(specPath, 'utf8');
    const known = new Set([...spec.matchAll(/\bR\d{1,2}\.\d{1,2}\b/g)].map((m) => m[0]));
    const trace = fs.readFileSync(path.join(root, 'docs', 'traceability.md'), 'utf8');
    const expand = (text: string) => {
      const ids = new Set<string>();
      for (const m of text.matchAll(/\bR(\d{1,2})\.(\d{1,2})(?:[–-]R?(\d{1,2})\.(\d{1,2}))?/g)) {
        if (!m[3]) ids.add(`R${m[1]}.${m[2]}`);
        else if (m[1] === m[3]) for (let i = Number(m[2]); i <= Number(m[4]); i++) ids.add(`R${m[1]}.${i}`);
        else {
          ids.add(`R${m[1]}.${m[2]}`);
          ids.add(`R${m[3]}.${m[4]}`);
        }
      }
      return ids;
    };
    const mapped = expand(trace);
    expect([...mapped].filter((id) => !known.has(id))).toEqual([]);
    const cited = new Set<string>();
    for (const file of sourceFiles(path.join(root, 'src'))) for (const id of expand(fs.readFileSync(file, 'utf8'))) cited.add(id);
    expect([...cited].filter((id) => known.has(id) && !mapped.has(id))).toEqual([]);
  });
});
