import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { appendAudit, systemActor, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { MigrationRequestsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import { customerServiceState, listContracts } from '../contracts/contracts.js';
import { exportCustomerData } from '../data/export.js';
import type { BlobStore } from '../storage/index.js';
import { describeSchema } from './schema-description.js';

type RequestRow = Selectable<MigrationRequestsTable>;

export interface MigrationRequestView {
  id: string;
  customerId: string;
  requestedAt: string;
  requestedBy: string;
  note: string;
  state: RequestRow['state'];
  package: { sha256: string; size: number; producedAt: string } | null;
  deliveredAt: string | null;
  billableItemId: string | null;
}

const view = (r: RequestRow): MigrationRequestView => ({
  id: r.id,
  customerId: r.customer_id,
  requestedAt: r.requested_at.toISOString(),
  requestedBy: r.requested_by,
  note: r.note,
  state: r.state,
  package: r.package_sha256 && r.produced_at ? { sha256: r.package_sha256, size: Number(r.package_size), producedAt: r.produced_at.toISOString() } : null,
  deliveredAt: r.delivered_at?.toISOString() ?? null,
  billableItemId: r.billable_item_id,
});

/** The package lives under the customer's own prefix, so the purge removes it with everything else. */
const packageKey = (customerId: string, requestId: string) => `customers/${customerId}/migration/${requestId}.zip`;

async function dataAlreadyPurged(db: DbOrTx, customerId: string): Promise<boolean> {
  const key = await db.selectFrom('customer_keys').select('destroyed_at').where('customer_id', '=', customerId).executeTakeFirst();
  const purged = await db.selectFrom('deletion_certificates').select('id').where('customer_id', '=', customerId).executeTakeFirst();
  return Boolean(key?.destroyed_at) || purged !== undefined;
}

/**
 * R10.6: the customer asks for its data to be migrated out. Recorded before or after the end; a
 * request open at the end holds the purge until the package is delivered (or the provider's bound).
 */
export async function requestMigration(db: Db, clock: Clock, actor: Actor, customerId: string, note: string): Promise<MigrationRequestView> {
  if (await dataAlreadyPurged(db, customerId)) {
    throw errors.conflict('このお客様のデータは既に消去されています。', "This customer's data has already been deleted.");
  }
  return db.transaction().execute(async (trx) => {
    const open = await trx.selectFrom('migration_requests').select('id').where('customer_id', '=', customerId).where('state', 'in', ['requested', 'produced']).executeTakeFirst();
    if (open) throw errors.conflict('データ移行の依頼は既に受け付けています。', `A migration request is already open (${open.id}).`);
    const row = await trx
      .insertInto('migration_requests')
      .values({ id: randomUUID(), customer_id: customerId, requested_at: clock.now(), requested_by: actor.label, note, state: 'requested', package_key: null, package_sha256: null, package_size: null, produced_at: null, delivered_at: null, billable_item_id: null })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'migration.requested', subjectType: 'customer', subjectId: customerId, customerId, reason: note, details: { requestId: row.id } });
    return view(row);
  });
}

export async function getMigrationRequest(db: DbOrTx, id: string): Promise<RequestRow> {
  const row = await db.selectFrom('migration_requests').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('データ移行依頼 / migration request', id);
  return row;
}

export async function listMigrationRequests(db: DbOrTx, customerId?: string): Promise<MigrationRequestView[]> {
  let q = db.selectFrom('migration_requests').selectAll().orderBy('requested_at', 'desc');
  if (customerId) q = q.where('customer_id', '=', customerId);
  return (await q.execute()).map(view);
}

/**
 * At contract end the operator produces the package: the open export format (records as NDJSON per
 * collection, files as they are, manifest with checksums) plus `schema.json` describing the data.
 * It is recorded as a billable item on the ended contract; the billing role sets the amount.
 */
export async function produceMigrationPackage(deps: { db: Db; clock: Clock; live: BlobStore }, actor: Actor, requestId: string): Promise<MigrationRequestView> {
  const { db, clock, live } = deps;
  const req = await getMigrationRequest(db, requestId);
  if (req.state !== 'requested') throw errors.conflict(`この依頼は「${req.state}」です。`, `The request is ${req.state}; a package is produced once.`);
  if ((await customerServiceState(db, req.customer_id)) !== 'ended') {
    throw errors.conflict('移行パッケージは契約終了時に作成します。', 'The migration package is produced at the end of the contract; a contract of this customer is still in force.');
  }
  const contract = (await listContracts(db, { customerId: req.customer_id, status: 'ended' })).sort((a, b) => (b.ended_at?.getTime() ?? 0) - (a.ended_at?.getTime() ?? 0))[0];
  if (!contract) throw errors.conflict('終了した契約がありません。', 'The customer has no ended contract.');
  const schema = await describeSchema(db, req.customer_id);
  const archive = await exportCustomerData(
    { db, clock, files: live },
    { customerId: req.customer_id, actor, sourceIp: null },
    { extraEntries: [{ name: 'schema.json', content: Buffer.from(`${JSON.stringify(schema, null, 2)}\n`) }] },
  );
  const key = packageKey(req.customer_id, req.id);
  const stored = await live.put(key, archive.stream, { contentType: 'application/zip' });
  return db.transaction().execute(async (trx) => {
    const item = await trx
      .insertInto('billable_items')
      .values({ id: randomUUID(), contract_id: contract.id, customer_id: req.customer_id, kind: 'data_migration', description: `データ移行パッケージ作成 / data migration package (request ${req.id})`, amount_yen: null, created_at: clock.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    const row = await trx
      .updateTable('migration_requests')
      .set({ state: 'produced', package_key: key, package_sha256: stored.sha256, package_size: stored.size, produced_at: clock.now(), billable_item_id: item.id })
      .where('id', '=', req.id)
      .where('state', '=', 'requested')
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'migration.package_produced', subjectType: 'customer', subjectId: req.customer_id, customerId: req.customer_id, details: { requestId: req.id, sha256: stored.sha256, size: stored.size, billableItemId: item.id, contractId: contract.id } });
    return view(row);
  });
}

export async function openMigrationPackage(db: Db, live: BlobStore, requestId: string): Promise<{ request: MigrationRequestView; stream: NodeJS.ReadableStream }> {
  const req = await getMigrationRequest(db, requestId);
  if (!req.package_key || (req.state !== 'produced' && req.state !== 'delivered')) {
    throw errors.conflict('移行パッケージはまだ作成されていません。', 'The migration package has not been produced yet.');
  }
  return { request: view(req), stream: await live.get(req.package_key) };
}

/** Delivery releases the purge hold: on a complete download by the customer, or recorded by an operator. */
export async function markMigrationDelivered(db: Db, clock: Clock, actor: Actor, requestId: string): Promise<MigrationRequestView> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.updateTable('migration_requests').set({ state: 'delivered', delivered_at: clock.now() }).where('id', '=', requestId).where('state', '=', 'produced').returningAll().executeTakeFirst();
    if (!row) {
      const current = await getMigrationRequest(trx, requestId);
      if (current.state === 'delivered') return view(current);
      throw errors.conflict(`この依頼は「${current.state}」です。`, `The request is ${current.state}; only a produced package can be delivered.`);
    }
    await appendAudit(trx, clock, { actor, action: 'migration.package_delivered', subjectType: 'customer', subjectId: row.customer_id, customerId: row.customer_id, details: { requestId } });
    return view(row);
  });
}

/**
 * Whether an open migration request still holds the purge. The hold lasts until delivery, or
 * at most `holdDays` after the contract ended; then the request lapses and the purge goes ahead.
 */
export async function migrationHoldsPurge(db: Db, clock: Clock, customerId: string, contractEndedAt: Date, holdDays: number): Promise<boolean> {
  const open = await db.selectFrom('migration_requests').selectAll().where('customer_id', '=', customerId).where('state', 'in', ['requested', 'produced']).executeTakeFirst();
  if (!open) return false;
  if (clock.now().getTime() < contractEndedAt.getTime() + holdDays * 86_400_000) return true;
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('migration_requests').set({ state: 'lapsed' }).where('id', '=', open.id).execute();
    await appendAudit(trx, clock, { actor: systemActor('job backup.purge'), action: 'migration.lapsed', subjectType: 'customer', subjectId: customerId, customerId, reason: `the hold of ${holdDays} days after the contract end has passed`, details: { requestId: open.id } });
  });
  return false;
}
