import { sql, type Kysely } from 'kysely';

/**
 * PGlite's parameterised query path takes one statement at a time, so a migration script is
 * split into statements here (respecting $$-quoted bodies) and run one by one in its transaction.
 */
export function splitStatements(script: string): string[] {
  const out: string[] = [];
  let current = '';
  let inDollar = false;
  for (let i = 0; i < script.length; i++) {
    if (script.startsWith('$$', i)) {
      inDollar = !inDollar;
      current += '$$';
      i++;
      continue;
    }
    if (script.startsWith('--', i) && !inDollar) {
      const nl = script.indexOf('\n', i);
      i = nl === -1 ? script.length : nl;
      current += '\n';
      continue;
    }
    const ch = script[i]!;
    if (ch === ';' && !inDollar) {
      if (current.trim()) out.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

export async function runScript(db: Kysely<unknown>, script: string): Promise<void> {
  for (const statement of splitStatements(script)) {
    await sql.raw(statement).execute(db);
  }
}
