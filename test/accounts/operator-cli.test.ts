import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSession } from '../../src/accounts/sessions.js';
import { authenticate } from '../../src/accounts/users.js';
import { systemClock } from '../../src/core/clock.js';
import { openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { runCli } from '../helpers/cli.js';

// Like test/cli.test.ts: the real `bin/hokan.js` in a child process (runCli), on its own PGlite directory.
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const cli = runCli;

/** Opens the CLI's database between commands (PGlite is one process at a time). */
async function withDb<T>(dataDir: string, fn: (h: DatabaseHandle) => Promise<T>): Promise<T> {
  const h = await openDatabase({ kind: 'pglite', dataDir });
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

const BOSS_PASSWORD = 'the boss passphrase 2026';
const STAFF_PASSWORD = 'the staff passphrase 2026';

describe('R18.1 R11.1③ hokan operator disable / enable / password', () => {
  it('operator --help lists disable, enable and password', async () => {
    const r = await cli(['operator', '--help'], {});
    for (const cmd of ['disable', 'enable', 'password']) expect(r.out).toMatch(new RegExp(`^\\s+${cmd} \\[options\\]`, 'm'));
  });

  it('R11.1③ disable ends the operator\'s sessions and refuses sign-in, enable restores it; the last enabled admin is kept; bad input is refused clearly; audited', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-opcli-'));
    dirs.push(dataDir);
    const env = { HOKAN_DATA_DIR: dataDir, HOKAN_DEMO_SEED: 'false' };
    expect((await cli(['operator', 'create', '--login-id', 'boss', '--name', '管理者', '--email', 'boss@provider.example.jp', '--password-stdin'], env, `${BOSS_PASSWORD}\n`)).code).toBe(0);
    expect((await cli(['operator', 'create', '--login-id', 'staff', '--name', '担当', '--email', 'staff@provider.example.jp', '--roles', 'operator', '--password-stdin'], env, `${STAFF_PASSWORD}\n`)).code).toBe(0);
    const staffId = await withDb(dataDir, async (h) => {
      const user = await authenticate(h.db, 'staff', STAFF_PASSWORD);
      await createSession(h.db, systemClock, user.principal.userId, 12);
      return user.principal.userId;
    });

    const badId = await cli(['operator', 'disable', '--login-id', 'X'], env);
    expect(badId.code).toBe(1);
    expect(badId.err).toContain('--login-id');
    const unknown = await cli(['operator', 'disable', '--login-id', 'nobody'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('"nobody" was not found');
    expect(unknown.err).toContain('見つかりません');
    const lastAdmin = await cli(['operator', 'disable', '--login-id', 'boss'], env);
    expect(lastAdmin.code).toBe(1);
    expect(lastAdmin.err).toContain('last enabled admin');

    const disabled = await cli(['operator', 'disable', '--login-id', 'staff', '--reason', '退職'], env);
    expect(disabled.code, disabled.err).toBe(0);
    expect(disabled.out).toContain('disabled operator staff');
    await withDb(dataDir, async (h) => {
      expect(await h.db.selectFrom('sessions').select('token_hash').where('user_id', '=', staffId).execute()).toEqual([]);
      await expect(authenticate(h.db, 'staff', STAFF_PASSWORD)).rejects.toMatchObject({ code: 'invalid_credentials' });
      await expect(authenticate(h.db, 'boss', BOSS_PASSWORD)).resolves.toBeDefined();
    });

    const enabled = await cli(['operator', 'enable', '--login-id', 'staff'], env);
    expect(enabled.code, enabled.err).toBe(0);
    expect(enabled.out).toContain('enabled operator staff');
    await withDb(dataDir, async (h) => {
      await expect(authenticate(h.db, 'staff', STAFF_PASSWORD)).resolves.toBeDefined();
      const audit = await h.db.selectFrom('audit_log').select(['action', 'actor_kind', 'actor_label', 'reason']).where('subject_id', '=', staffId).orderBy('seq').execute();
      expect(audit.map((a) => a.action)).toEqual(['operator.created', 'operator.disabled', 'operator.enabled']);
      expect(audit[1]).toMatchObject({ actor_kind: 'system', actor_label: 'cli operator disable', reason: '退職' });
    });
  });

  it('R18.1 password sets a new password from stdin or prints a generated one once, ends the sessions, refuses a weak one; audited', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-opcli-'));
    dirs.push(dataDir);
    const env = { HOKAN_DATA_DIR: dataDir, HOKAN_DEMO_SEED: 'false' };
    expect((await cli(['operator', 'create', '--login-id', 'boss', '--name', '管理者', '--email', 'boss@provider.example.jp', '--password-stdin'], env, `${BOSS_PASSWORD}\n`)).code).toBe(0);
    const bossId = await withDb(dataDir, async (h) => {
      const user = await authenticate(h.db, 'boss', BOSS_PASSWORD);
      await createSession(h.db, systemClock, user.principal.userId, 12);
      return user.principal.userId;
    });

    const weak = await cli(['operator', 'password', '--login-id', 'boss', '--password-stdin'], env, 'short\n');
    expect(weak.code).toBe(1);
    expect(weak.err).toMatch(/at least 12 characters/);
    const unknown = await cli(['operator', 'password', '--login-id', 'nobody'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.out).not.toContain('password:');
    await withDb(dataDir, async (h) => {
      await expect(authenticate(h.db, 'boss', BOSS_PASSWORD)).resolves.toBeDefined();
      expect(await h.db.selectFrom('sessions').select('token_hash').where('user_id', '=', bossId).execute()).toHaveLength(1);
    });

    const generated = await cli(['operator', 'password', '--login-id', 'boss'], env);
    expect(generated.code, generated.err).toBe(0);
    const m = /^password: (\S+)$/m.exec(generated.out);
    expect(m, generated.out).not.toBeNull();
    expect(generated.out).toContain('shown only now');
    await withDb(dataDir, async (h) => {
      expect(await h.db.selectFrom('sessions').select('token_hash').where('user_id', '=', bossId).execute()).toEqual([]);
      await expect(authenticate(h.db, 'boss', BOSS_PASSWORD)).rejects.toMatchObject({ code: 'invalid_credentials' });
      await expect(authenticate(h.db, 'boss', m![1]!)).resolves.toBeDefined();
    });

    const chosen = 'an operator chosen passphrase';
    const fromStdin = await cli(['operator', 'password', '--login-id', 'boss', '--password-stdin'], env, `${chosen}\n`);
    expect(fromStdin.code, fromStdin.err).toBe(0);
    expect(fromStdin.out).not.toContain(chosen);
    await withDb(dataDir, async (h) => {
      await expect(authenticate(h.db, 'boss', chosen)).resolves.toBeDefined();
      const audit = await h.db.selectFrom('audit_log').select(['action', 'details']).where('subject_id', '=', bossId).orderBy('seq').execute();
      expect(audit.map((a) => a.action)).toEqual(['operator.created', 'operator.password_reset', 'operator.password_reset']);
      expect(JSON.stringify(audit)).not.toContain(chosen);
    });
  });
});
