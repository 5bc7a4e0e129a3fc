import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit, GENESIS_HASH, listAudit, systemActor, verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { ManualClock } from '../../src/core/clock.js';
import { migrate, openDatabase } from '../../src/core/db/database.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../helpers/databases.js';

const run = promisify(execFile);
const clock = new ManualClock('2026-11-24T00:00:00Z');
const actor = systemActor('test');

async function appendMany(h: TestDatabase | Awaited<ReturnType<typeof openDatabase>>, n: number) {
  for (let i = 0; i < n; i++) {
    await h.db.transaction().execute((trx) => appendAudit(trx, clock, { actor, action: 'test.event', subjectType: 'thing', subjectId: `t${i}`, details: { i, text: '日本語' } }));
    clock.advance(1000);
  }
}

describe.each(databaseKinds)('audit log on %s', (kind) => {
  let h: TestDatabase;
  beforeAll(async () => {
    h = await openTestDatabase(kind);
  });
  afterAll(async () => h?.close());

  it('chains each entry to the hash of the one before', async () => {
    await appendMany(h, 5);
    const entries = await listAudit(h.db, {});
    expect(entries[0]?.prevHash).toBe(GENESIS_HASH);
    for (let i = 1; i < entries.length; i++) expect(entries[i]?.prevHash).toBe(entries[i - 1]?.hash);
    expect(await verifyAuditChain(h.db)).toMatchObject({ ok: true, entries: 5 });
  });

  it('the database refuses updates and deletes', async () => {
    await expect(sql`update audit_log set action = 'x'`.execute(h.db)).rejects.toThrow(/append-only/);
    await expect(sql`delete from audit_log`.execute(h.db)).rejects.toThrow(/append-only/);
  });

  it('a rolled-back change leaves no entry and no gap in the chain', async () => {
    await expect(
      h.db.transaction().execute(async (trx) => {
        await appendAudit(trx, clock, { actor, action: 'test.rolled_back', subjectType: 'thing', subjectId: 'x' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await appendMany(h, 1);
    expect(await verifyAuditChain(h.db)).toMatchObject({ ok: true, entries: 6 });
  });

  it('concurrent appends still form one chain', async () => {
    await Promise.all(Array.from({ length: 20 }, () => appendMany(h, 1)));
    expect(await verifyAuditChain(h.db)).toMatchObject({ ok: true, entries: 26 });
  });

  it('reports the first broken link after tampering with content', async () => {
    const entries = await listAudit(h.db, {});
    const victim = entries[3]!;
    await sql`alter table audit_log disable trigger audit_log_no_update`.execute(h.db);
    await sql`update audit_log set details = ${JSON.stringify({ i: 999 })}::jsonb where seq = ${String(victim.seq)}`.execute(h.db);
    await sql`alter table audit_log enable trigger audit_log_no_update`.execute(h.db);
    expect(await verifyAuditChain(h.db)).toMatchObject({ ok: false, brokenAtSeq: victim.seq, entries: 3 });
  });
});

describe('hokan audit verify (CLI, PGlite data directory)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-audit-'));
  const env = { ...process.env, HOKAN_DATA_DIR: dataDir, DATABASE_URL: '' };
  const cli = (args: string[]) => run(process.execPath, ['bin/hokan.js', ...args], { env, cwd: path.resolve(import.meta.dirname, '../..') }).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('says OK on an intact chain and names the first broken link after an entry is removed', async () => {
    const h = await openDatabase({ kind: 'pglite', dataDir });
    await migrate(h.db);
    await appendMany(h, 4);
    await h.close();
    const ok = await cli(['audit', 'verify']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/audit log OK: 4 entries/);

    const h2 = await openDatabase({ kind: 'pglite', dataDir });
    const second = (await listAudit(h2.db, {}))[1]!;
    await sql`alter table audit_log disable trigger audit_log_no_update`.execute(h2.db);
    await sql`delete from audit_log where seq = ${String(second.seq)}`.execute(h2.db);
    await h2.close();
    const broken = await cli(['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.out).toContain(`BROKEN at entry #${second.seq + 1}`);
  });
});
