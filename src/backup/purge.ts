import { createHash, randomUUID } from 'node:crypto';
import { appendAudit, systemActor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { canonicalJson } from '../core/hash-chain.js';
import { lockCustomerData } from '../data/access-log.js';
import { bi } from '../core/i18n.js';
import { consumeDataDeletionDue, customerServiceState, listContracts, listDataDeletionDue } from '../contracts/contracts.js';
import { getCustomer } from '../contracts/customers.js';
import { END_REASONS, type EndReason } from '../contracts/vocabulary.js';
import { BlobRetainedError, LocalDirectoryStore, type BlobStore } from '../storage/index.js';
import { backupPrefix, partKey, partsOf } from './catalog.js';
import type { DeletionCertificate } from './certificate.js';
import { destroyCustomerKey } from './keys.js';
import { migrationHoldsPurge } from './migration.js';
import type { BackupSettings } from './settings.js';

export interface PurgeDeps {
  db: Db;
  clock: Clock;
  live: BlobStore;
  settings: BackupSettings;
  providerName: string;
}

/** Saved in the same transaction that deletes the live rows, so a resumed purge still certifies them. */
interface PurgeProgress {
  liveDeletedAt: string;
  records: { count: number; collections: Record<string, number> };
  files: Array<{ id: string; sha256: string; size: number; blobKey: string }>;
  key: { fingerprint: string | null; destroyedAt: string };
}

const actor = systemActor('job backup.purge');

async function deleteObject(store: BlobStore, key: string, now: Date): Promise<{ state: 'deleted' | 'retained'; retainedUntil: Date | null }> {
  try {
    await store.delete(key, now);
    return { state: 'deleted', retainedUntil: null };
  } catch (err) {
    if (err instanceof BlobRetainedError) {
      const info = await store.head(key);
      return { state: 'retained', retainedUntil: info?.retainUntil ?? null };
    }
    throw err;
  }
}

/**
 * R10.7: deletes everything of a customer whose contracts have all ended — live records and
 * files, every backup on both targets — and destroys the customer's data key first, so any copy
 * that cannot be removed yet (held by its immutability period, or a copy held elsewhere) is
 * unreadable from that moment. Issues the deletion certificate. Resumable: each step is
 * idempotent and the live-data figures are saved before the rows go.
 */
export async function purgeCustomer(deps: PurgeDeps, dueId: string): Promise<DeletionCertificate | null> {
  const { db, clock, settings } = deps;
  const due = (await listDataDeletionDue(db)).find((d) => d.id === dueId);
  if (!due || due.consumedAt) return null;
  const customerId = due.customerId;
  if ((await customerServiceState(db, customerId)) !== 'ended') {
    // Another contract still serves this customer: its data stays.
    await consumeDataDeletionDue(db, clock, dueId, 'purge skipped: the customer has another contract in force');
    return null;
  }

  // 1. Key and live rows, in one transaction with the saved figures.
  const progress = await db.transaction().execute(async (trx) => {
    // A restore running now commits first, and its rows are deleted here; one that comes later
    // finds the key destroyed and restores nothing (decision 0030).
    await lockCustomerData(trx, customerId);
    const row = await trx.selectFrom('data_deletion_due').select('purge_progress').where('id', '=', dueId).forUpdate().executeTakeFirstOrThrow();
    const saved = (typeof row.purge_progress === 'string' ? JSON.parse(row.purge_progress) : row.purge_progress) as PurgeProgress | null;
    if (saved) return saved;
    const counts = await trx
      .selectFrom('data_records')
      .select(['collection', (eb) => eb.fn.countAll<string>().as('n')])
      .where('customer_id', '=', customerId)
      .groupBy('collection')
      .execute();
    const files = await trx.selectFrom('data_files').select(['id', 'sha256', 'size', 'blob_key']).where('customer_id', '=', customerId).orderBy('id').execute();
    const key = await destroyCustomerKey(trx, clock, customerId);
    await trx.deleteFrom('data_records').where('customer_id', '=', customerId).execute();
    await trx.deleteFrom('data_files').where('customer_id', '=', customerId).execute();
    const collections = Object.fromEntries(counts.map((c) => [c.collection, Number(c.n)]));
    const p: PurgeProgress = {
      liveDeletedAt: clock.now().toISOString(),
      records: { count: Object.values(collections).reduce((a, b) => a + b, 0), collections },
      files: files.map((f) => ({ id: f.id, sha256: f.sha256, size: Number(f.size), blobKey: f.blob_key })),
      key: { fingerprint: key.fingerprint, destroyedAt: key.destroyedAt.toISOString() },
    };
    await trx.updateTable('data_deletion_due').set({ purge_progress: JSON.stringify(p) }).where('id', '=', dueId).execute();
    await appendAudit(trx, clock, {
      actor,
      action: 'customer.data_purged',
      subjectType: 'customer',
      subjectId: customerId,
      customerId,
      reason: 'R10.7 contract ended',
      details: { records: p.records.count, files: p.files.length, keyFingerprint: p.key.fingerprint },
    });
    return p;
  });

  // 2. Live objects (also any stray object under the customer's prefix).
  const now = clock.now();
  for (const f of progress.files) await deps.live.delete(f.blobKey, now);
  for await (const blob of deps.live.list(`customers/${customerId}/`)) await deps.live.delete(blob.key, now);
  if (deps.live instanceof LocalDirectoryStore) await deps.live.removeLeftovers(`customers/${customerId}/`, now, 0);

  // 3. Every backup on both targets.
  const backups = await db.selectFrom('backups').selectAll().where('customer_id', '=', customerId).orderBy('started_at').execute();
  const certBackups: DeletionCertificate['backups'] = [];
  for (const b of backups) {
    const targets: DeletionCertificate['backups'][number]['targets'] = [];
    for (const [name, store] of [['primary', settings.primary], ['offsite', settings.offsite]] as const) {
      if (!store) continue;
      const known = new Map(partsOf(b).map((p) => [partKey(customerId, b.id, p.name), p]));
      const keys = new Set(known.keys());
      for await (const blob of store.list(backupPrefix(customerId, b.id))) keys.add(blob.key);
      const objects: DeletionCertificate['backups'][number]['targets'][number]['objects'] = [];
      let retainedUntil: Date | null = null;
      for (const key of [...keys].sort()) {
        const info = await store.head(key);
        const part = known.get(key);
        if (!info && !part) continue;
        objects.push({ key, sha256: part?.sha256 ?? 'unrecorded (partial object of a failed backup)', size: part?.size ?? info?.size ?? 0 });
        if (!info) continue;
        const r = await deleteObject(store, key, now);
        if (r.state === 'retained' && r.retainedUntil && (!retainedUntil || r.retainedUntil > retainedUntil)) retainedUntil = r.retainedUntil;
      }
      if (objects.length === 0) continue;
      targets.push({
        target: name,
        location: store.description,
        objects,
        state: retainedUntil ? 'retained' : 'deleted',
        deletedAt: retainedUntil ? null : now.toISOString(),
        retainedUntil: retainedUntil?.toISOString() ?? null,
      });
    }
    for (const store of [settings.primary, settings.offsite]) {
      if (store instanceof LocalDirectoryStore) await store.removeLeftovers(backupPrefix(customerId, b.id), now, 0);
    }
    await db.updateTable('backups').set({ state: 'purged' }).where('id', '=', b.id).execute();
    certBackups.push({ backupId: b.id, createdAt: b.started_at.toISOString(), generation: b.generation, targets });
  }

  // 4. The certificate.
  const customer = await getCustomer(db, customerId);
  const contracts = (await listContracts(db, { customerId })).filter((c) => c.status === 'ended');
  const cert: DeletionCertificate = {
    format: 'hokan-deletion-certificate/1',
    certificateId: randomUUID(),
    issuedAt: clock.now().toISOString(),
    provider: { name: deps.providerName },
    customer: { id: customer.id, code: customer.code, name: customer.name },
    contracts: contracts.map((c) => ({
      contractNumber: c.contract_number,
      endedAt: c.ended_at?.toISOString() ?? '',
      endReason: c.end_reason ?? '',
      endReasonLabel: END_REASONS[c.end_reason as EndReason] ?? bi(c.end_reason ?? '', c.end_reason ?? ''),
    })),
    live: {
      deletedAt: progress.liveDeletedAt,
      records: progress.records,
      files: { count: progress.files.length, bytes: progress.files.reduce((n, f) => n + f.size, 0), store: deps.live.description, objects: progress.files.map(({ id, sha256, size }) => ({ id, sha256, size })) },
    },
    backups: certBackups,
    key: progress.key,
    statement: bi(
      `ご契約の終了に伴い、上記のお客様データ（バックアップを含む）を消去し、暗号鍵（指紋 ${progress.key.fingerprint ?? 'なし'}）を破棄したことを証明します。保持期間中のバックアップは鍵の破棄により復号できず、保持期間の満了時に削除されます。`,
      `We certify that, the contract having ended, the customer data above, backups included, has been deleted and its encryption key (fingerprint ${progress.key.fingerprint ?? 'none'}) destroyed. Any backup still within its retention period cannot be decrypted since the key was destroyed, and is removed when that period ends.`,
    ),
  };
  const body = canonicalJson(cert);
  const sha256 = createHash('sha256').update(body).digest('hex');
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('deletion_certificates').values({ id: cert.certificateId, customer_id: customerId, issued_at: cert.issuedAt, body, sha256 }).onConflict((oc) => oc.column('customer_id').doNothing()).execute();
    await consumeDataDeletionDue(trx, clock, dueId, 'purged');
    await appendAudit(trx, clock, { actor, action: 'customer.deletion_certificate_issued', subjectType: 'customer', subjectId: customerId, customerId, details: { certificateId: cert.certificateId, sha256 } });
  });
  return cert;
}

/**
 * Which pending deletions are due: the grace period (default 24 h) after the contract ended has
 * passed, and no migration request holds the data (R10.6, bounded by migrationHoldDays).
 */
export async function purgeDueCustomers(deps: PurgeDeps, graceHours: number): Promise<DeletionCertificate[]> {
  const due = await listDataDeletionDue(deps.db, { pendingOnly: true });
  const cutoff = deps.clock.now().getTime() - graceHours * 3_600_000;
  const certs: DeletionCertificate[] = [];
  for (const d of due) {
    if (new Date(d.contractEndedAt).getTime() > cutoff) continue;
    if (await migrationHoldsPurge(deps.db, deps.clock, d.customerId, new Date(d.contractEndedAt), deps.settings.migrationHoldDays)) continue;
    const cert = await purgeCustomer(deps, d.id);
    if (cert) certs.push(cert);
  }
  return certs;
}

export async function getDeletionCertificate(db: Db, customerId: string): Promise<{ certificate: DeletionCertificate; sha256: string } | null> {
  const row = await db.selectFrom('deletion_certificates').select(['body', 'sha256']).where('customer_id', '=', customerId).executeTakeFirst();
  if (!row) return null;
  const certificate = (typeof row.body === 'string' ? JSON.parse(row.body) : row.body) as DeletionCertificate;
  return { certificate, sha256: row.sha256 };
}
