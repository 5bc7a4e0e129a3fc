import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomerKeyDestroyedError } from '../../src/backup/keys.js';
import { purgeCustomer } from '../../src/backup/purge.js';
import { restoreCustomer } from '../../src/backup/restore.js';
import { runBackup } from '../../src/backup/run-backup.js';
import { terminateImmediately } from '../../src/contracts/contracts.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { lockCustomerData } from '../../src/data/access-log.js';
import { createRecord, getRecord } from '../../src/data/records.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';
import { backupDepsFor } from '../helpers/backup.js';

/*
 * A restore writes only the rows that differ from the backup (decisions 0025, 0026). These cases
 * cover what that comparison could get wrong: keys that COPY escapes, a key that differs only in
 * collection, another customer's row of the same key, and each way a live row can differ from its
 * backup (data behind hokan's back, version, update time, deleted, added).
 */

const actor = systemActor('test restore of differences');
const ODD_KEYS = ['tab\there', 'back\\slash', 'new\nline', 'cr\rhere', '介護記録', 'trailing\\', "quote'd", 'bell\bform\fvt\v', '絵文字😀', '私用\ue000', 'ｱ半角'];

describe.each(databaseKinds)('R10.4 a restore rewrites only what differs, on %s', (kind) => {
  let app: TestApp & { filesDir: string };
  let deps: Awaited<ReturnType<typeof backupDepsFor>>;
  let customerId: string;
  let contractId: string;
  let otherId: string;
  let backupId: string;
  let original: unknown[];

  const rows = async (customer: string) =>
    (await sql<Record<string, unknown>>`select collection, id, version, data, created_at, updated_at, data_digest, xmin::text as xmin from data_records where customer_id = ${customer} order by collection, id`.execute(app.ctx.db)).rows;
  const withoutXmin = (rs: Array<Record<string, unknown>>) => rs.map(({ xmin: _x, ...r }) => r);

  beforeAll(async () => {
    app = await startTestApp(kind);
    deps = await backupDepsFor(app);
    const hagi = await addCustomerWithContract(app, 'hagi');
    customerId = hagi.customer.id;
    contractId = hagi.contractId;
    otherId = (await addCustomerWithContract(app, 'kaede')).customer.id;
    const at = app.clock.now();
    // More rows than one page of the backup's snapshot reader.
    const values = Array.from({ length: 12_003 }, (_, i) => ({
      customer_id: customerId,
      collection: i % 2 === 0 ? 'care-notes' : 'vitals',
      id: i < ODD_KEYS.length ? ODD_KEYS[i]! : `n-${String(i).padStart(6, '0')}`,
      version: 1 + (i % 4),
      data: JSON.stringify({ i, note: `記録 ${i}`, nested: { deep: [i, 'タブ\t', '改行\n'] } }),
      created_at: at,
      updated_at: at,
    }));
    for (let i = 0; i < values.length; i += 1000) await app.ctx.db.insertInto('data_records').values(values.slice(i, i + 1000)).execute();
    await app.ctx.db.insertInto('data_records').values({ customer_id: otherId, collection: 'care-notes', id: 'tab\there', version: 1, data: '{"other": true}', created_at: at, updated_at: at }).execute();
    backupId = (await runBackup(deps, customerId)).id;
    original = withoutXmin(await rows(customerId));
  });
  afterAll(async () => {
    deps?.cleanup();
    await app?.close();
  });

  it('puts back every kind of difference, keys COPY escapes included, and rewrites nothing else', async () => {
    const db = app.ctx.db;
    const later = new Date(app.clock.now().getTime() + 60_000);
    // Changed data, same version and times (behind hokan's back).
    await sql`update data_records set data = '{"ransom": true}' where customer_id = ${customerId} and id in ('tab\there', 'n-000100')`.execute(db);
    // Same data, other version; same data and version, other update time.
    await sql`update data_records set version = version + 1 where customer_id = ${customerId} and id = 'back\\slash'`.execute(db);
    await db.updateTable('data_records').set({ updated_at: later }).where('customer_id', '=', customerId).where('id', '=', 'n-006001').execute();
    // Deleted rows, one with an escaped key.
    await db.deleteFrom('data_records').where('customer_id', '=', customerId).where('id', 'in', ['new\nline', 'n-004999', 'n-005000', 'n-012002']).execute();
    // Rows the backup does not hold: one whose key differs from a backed-up one only in collection.
    await db
      .insertInto('data_records')
      .values([
        { customer_id: customerId, collection: 'vitals', id: 'tab\there', version: 1, data: '{}', created_at: later, updated_at: later },
        { customer_id: customerId, collection: 'incidents', id: 'cr\rhere', version: 1, data: '{}', created_at: later, updated_at: later },
      ])
      .execute();
    const before = new Map((await rows(customerId)).map((r) => [`${String(r.collection)}/${String(r.id)}`, r.xmin]));
    const otherBefore = await rows(otherId);

    const result = await restoreCustomer(deps, { backupId, actor });

    expect(result.records).toBe(12_003);
    const after = await rows(customerId);
    expect(withoutXmin(after)).toEqual(original);
    const rewritten = after.filter((r) => before.get(`${String(r.collection)}/${String(r.id)}`) !== r.xmin).map((r) => String(r.id)).sort();
    expect(rewritten).toEqual(['back\\slash', 'n-000100', 'n-004999', 'n-005000', 'n-006001', 'n-012002', 'new\nline', 'tab\there'].sort());
    // Another customer's row with the same key is not the restored customer's.
    expect(await rows(otherId)).toEqual(otherBefore);
    expect(otherBefore.map((r) => r.data)).toEqual([{ other: true }]);
  });

  it('restores into an empty customer, and a second restore rewrites nothing', async () => {
    await app.ctx.db.deleteFrom('data_records').where('customer_id', '=', customerId).execute();
    await restoreCustomer(deps, { backupId, actor });
    const first = await rows(customerId);
    expect(withoutXmin(first)).toEqual(original);
    await restoreCustomer(deps, { backupId, actor });
    expect(await rows(customerId)).toEqual(first);
  });

  /** Another session's transaction holding the customer's data lock, as a change in progress does, until released. */
  const holdCustomerData = async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const done = app.ctx.db.transaction().execute(async (trx) => {
      await lockCustomerData(trx, customerId);
      holding();
      await released;
    });
    await held;
    return { release, done };
  };
  const waitingForLock = async (n: number) => {
    // Against a deadline: a restore reads the backup's manifest before it asks for the lock, which
    // takes a while on a loaded machine. pg_locks is the whole server's; this file's database is
    // its own.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_locks
          where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`.execute(app.ctx.db);
      if (r.rows[0]!.n === n) return;
      if (Date.now() > deadline) throw new Error(`expected ${n} sessions waiting for the customer's data lock, found ${r.rows[0]!.n}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  // Two sessions are needed: PGlite has one, so there nothing can run beside a restore anyway.
  it.skipIf(kind !== 'postgres')('a restore waits for a change to the customer’s data in progress, a change asked for meanwhile waits for the restore, and reads go on (decision 0030)', async () => {
    const db = app.ctx.db;
    const inProgress = await holdCustomerData();
    await db.deleteFrom('data_records').where('customer_id', '=', customerId).where('id', '=', 'n-000200').execute();
    const restore = restoreCustomer(deps, { backupId, actor });
    let change: Promise<unknown> = Promise.resolve();
    try {
      await waitingForLock(1);
      change = createRecord(db, app.clock, { customerId, actor, sourceIp: null }, 'care-notes', { id: 'written-during-restore', data: { later: true } });
      await waitingForLock(2);
      // Both wait before touching the customer's records: neither holds a lock on data_records yet
      // (the restore used to take the lock last, after its changes; a change, after its insert).
      const touching = await sql<{ n: number }>`select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation
          where c.relname in ('data_records', 'data_files') and l.database = (select oid from pg_database where datname = current_database())
            and l.pid in (select pid from pg_locks where locktype = 'advisory' and not granted)`.execute(db);
      expect(touching.rows[0]!.n).toBe(0);
      // Reads go on meanwhile (their access-log entries take another lock), and see the data as it was.
      await expect(getRecord(db, app.clock, { customerId, actor, sourceIp: null }, 'care-notes', 'n-000200')).rejects.toThrow(/not found/);
      expect((await getRecord(db, app.clock, { customerId, actor, sourceIp: null }, 'care-notes', 'n-000202')).data).toMatchObject({ i: 202 });
    } finally {
      inProgress.release();
      await inProgress.done;
      await Promise.allSettled([restore, change]);
    }
    await restore;
    await change;
    // The restore ran first, whole; the change came after it and is kept.
    const after = await rows(customerId);
    expect(withoutXmin(after.filter((r) => r.id !== 'written-during-restore'))).toEqual(original);
    expect(after.find((r) => r.id === 'written-during-restore')?.data).toEqual({ later: true });
  });

  // Last: it ends the customer's contract and purges its data.
  it.skipIf(kind !== 'postgres')('R10.7 a restore that waited while a purge deleted the customer’s data restores nothing: the purge comes first, the key is gone (decision 0030)', async () => {
    const db = app.ctx.db;
    await terminateImmediately(db, app.clock, actor, contractId, { ground: 'gross_breach', note: 'test' });
    const due = await db.selectFrom('data_deletion_due').select('id').where('customer_id', '=', customerId).executeTakeFirstOrThrow();
    const change = await holdCustomerData();
    let purge: Promise<unknown> = Promise.resolve();
    let restore: Promise<unknown> = Promise.resolve();
    try {
      purge = purgeCustomer({ ...deps, providerName: 'test' }, due.id);
      await waitingForLock(1);
      // The restore reads the backup and the customer's key now, before the purge destroys it.
      restore = restoreCustomer(deps, { backupId, actor });
      restore.catch(() => {});
      await waitingForLock(2);
    } finally {
      change.release();
      await change.done;
      await Promise.allSettled([purge, restore]);
    }
    expect(await purge).toMatchObject({ customer: { id: customerId } });
    await expect(restore).rejects.toBeInstanceOf(CustomerKeyDestroyedError);
    expect(await rows(customerId)).toEqual([]);
    expect(await db.selectFrom('data_files').select('id').where('customer_id', '=', customerId).execute()).toEqual([]);
  });
});
