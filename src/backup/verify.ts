import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import type { BlobStore } from '../storage/index.js';
import { getBackup, partAad, partKey, partsOf, type BackupPart, type BackupRow } from './catalog.js';
import { createDecryptStream, decryptBuffer } from './crypto/index.js';
import { customerDataKey } from './keys.js';
import type { BackupManifest } from './manifest.js';
import type { BackupSettings } from './settings.js';
import { HashingStream, readAll } from './streams.js';

export type TargetName = 'primary' | 'offsite';

export interface PartProblem {
  part: string;
  problem: string;
}

export interface VerifyResult {
  backupId: string;
  target: TargetName;
  ok: boolean;
  partsChecked: number;
  records: number | null;
  files: number | null;
  problems: PartProblem[];
}

export function targetStore(settings: BackupSettings, target: TargetName): BlobStore {
  const store = target === 'primary' ? settings.primary : settings.offsite;
  if (!store) throw new Error(`the ${target} backup target is not configured`);
  return store;
}

const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

/** Reads one stored part, checking the stored bytes' hash, then decrypting (and counting) them. */
async function checkPart(store: BlobStore, row: BackupRow, part: BackupPart, key: Buffer, manifest: BackupManifest | null): Promise<{ problem: string | null; lines?: number }> {
  let src: NodeJS.ReadableStream;
  try {
    src = await store.get(partKey(row.customer_id, row.id, part.name));
  } catch (err) {
    return { problem: `missing or unreadable: ${(err as Error).message}` };
  }
  const stored = new HashingStream();
  const decrypt = createDecryptStream(key, { aad: partAad(row.customer_id, row.id, part.name) });
  const plain = new HashingStream();
  let lines = 0;
  try {
    if (part.kind === 'records') {
      const counter = new Writable({
        write(chunk: Buffer, _e, cb) {
          for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
          cb();
        },
      });
      await pipeline(src, stored, decrypt, createGunzip(), plain, counter);
    } else {
      await pipeline(src, stored, decrypt, plain, sink());
    }
  } catch (err) {
    return { problem: `cannot be decrypted or decompressed: ${(err as Error).message}` };
  }
  if (stored.bytes !== part.size || stored.sha256 !== part.sha256) {
    return { problem: `stored bytes do not match the catalog (size ${stored.bytes} vs ${part.size}, sha256 ${stored.sha256.slice(0, 12)}… vs ${part.sha256.slice(0, 12)}…)` };
  }
  if (manifest && part.kind === 'file') {
    const entry = manifest.files.find((f) => f.part === part.name);
    if (!entry) return { problem: 'not listed in the manifest' };
    if (entry.sha256 !== plain.sha256 || entry.size !== plain.bytes) return { problem: `decrypted file does not match its SHA-256 in the manifest` };
  }
  if (manifest && part.kind === 'records' && (manifest.records.plainSha256 !== plain.sha256 || manifest.records.count !== lines)) {
    return { problem: `records do not match the manifest (${lines} lines vs ${manifest.records.count})` };
  }
  return { problem: null, lines };
}

export async function readManifest(store: BlobStore, row: BackupRow, key: Buffer): Promise<BackupManifest> {
  const part = partsOf(row).find((p) => p.kind === 'manifest');
  if (!part) throw new Error('the backup has no manifest part');
  const bytes = await readAll(await store.get(partKey(row.customer_id, row.id, part.name)));
  const manifest = JSON.parse(decryptBuffer(key, bytes, { aad: partAad(row.customer_id, row.id, part.name) }).toString('utf8')) as BackupManifest;
  if (manifest.backupId !== row.id || manifest.customerId !== row.customer_id) throw new Error('the manifest belongs to another backup');
  return manifest;
}

/**
 * `hokan backup verify`: re-reads every part from the target, checks each stored hash against the
 * catalog, decrypts everything and compares the plaintext with the manifest. The first broken part
 * is named; the result is kept in backup_checks.
 */
export async function verifyBackup(
  deps: { db: Db; clock: Clock; settings: BackupSettings },
  backupId: string,
  target: TargetName = 'primary',
  kind: 'verify' | 'drill' = 'verify',
): Promise<VerifyResult> {
  const startedAt = deps.clock.now();
  const row = await getBackup(deps.db, backupId);
  const result: VerifyResult = { backupId, target, ok: false, partsChecked: 0, records: null, files: null, problems: [] };
  try {
    if (row.state !== 'good') throw new Error(`backup is ${row.state}, not good`);
    const store = targetStore(deps.settings, target);
    const { key } = await customerDataKey(deps.db, deps.clock, deps.settings.masterKey, deps.settings.masterKeyFingerprint, row.customer_id);
    let manifest: BackupManifest | null = null;
    const parts = partsOf(row);
    const manifestPart = parts.find((p) => p.kind === 'manifest');
    if (!manifestPart) result.problems.push({ part: '(manifest)', problem: 'missing from the catalog' });
    else {
      const m = await checkPart(store, row, manifestPart, key, null);
      result.partsChecked++;
      if (m.problem) result.problems.push({ part: manifestPart.name, problem: m.problem });
      else manifest = await readManifest(store, row, key);
    }
    for (const part of parts.filter((p) => p.kind !== 'manifest')) {
      const r = await checkPart(store, row, part, key, manifest);
      result.partsChecked++;
      if (r.problem) result.problems.push({ part: part.name, problem: r.problem });
      if (part.kind === 'records' && r.lines !== undefined) result.records = r.lines;
    }
    if (manifest) result.files = manifest.files.length;
    if (manifest && manifest.files.length !== parts.filter((p) => p.kind === 'file').length) {
      result.problems.push({ part: '(files)', problem: `the manifest lists ${manifest.files.length} files, the catalog ${parts.filter((p) => p.kind === 'file').length}` });
    }
  } catch (err) {
    result.problems.push({ part: '(backup)', problem: (err as Error).message });
  }
  result.ok = result.problems.length === 0;
  await deps.db
    .insertInto('backup_checks')
    .values({ id: randomUUID(), backup_id: backupId, kind, target, started_at: startedAt, finished_at: deps.clock.now(), ok: result.ok, detail: JSON.stringify(result) })
    .execute();
  return result;
}
