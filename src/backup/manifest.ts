import { copyText } from '../core/db/copy.js';

/** What one backup holds; encrypted with the customer's key (file names are personal data too). */
export interface BackupManifest {
  /**
   * 1: records as NDJSON lines (RecordLine); 2: records as PostgreSQL COPY text lines (decision
   * 0025); 3: the same with each record's digest (decision 0026).
   */
  format: BackupFormat;
  backupId: string;
  customerId: string;
  snapshotAt: string;
  keyFingerprint: string;
  records: { part: string; count: number; collections: Record<string, number>; plainBytes: number; plainSha256: string };
  files: Array<{ id: string; name: string; contentType: string; size: number; sha256: string; createdAt: string; part: string }>;
}

/** One record as a line of a format-1 records part. */
export interface RecordLine {
  c: string;
  i: string;
  v: number;
  d: unknown;
  ca: string;
  ua: string;
}

export type BackupFormat = 'hokan-backup/1' | 'hokan-backup/2' | 'hokan-backup/3';

/** The records part's name in each format. */
export const RECORDS_PART = { 'hokan-backup/1': 'records.ndjson.gz.hkn', 'hokan-backup/2': 'records.tsv.gz.hkn', 'hokan-backup/3': 'records.tsv.gz.hkn' } as const;
export const CURRENT_FORMAT = 'hokan-backup/3' as const;

/** The columns of a format-3 line, in order, as COPY names them; format 2 lacks the last. */
export const RECORD_COPY_COLUMNS = 'collection, id, version, data, created_at, updated_at, data_digest';
export const RECORD_COPY_COLUMNS_V2 = 'collection, id, version, data, created_at, updated_at';

/**
 * Format 3: one record as a line of PostgreSQL's COPY text format (RECORD_COPY_COLUMNS), so a
 * restore streams the part into COPY without parsing a record. `data` is the database's own JSON
 * text (`data::text`), so the backup neither parses nor re-stringifies a record, and the same row
 * always gives the same line (the drill relies on it). `digest` is the row's data_digest (md5 of
 * that text, kept by the database, migration 0017), or null (`\N`) for a line converted from
 * format 1, whose digest the restore computes itself.
 */
export function recordLineCopy(collection: string, id: string, version: number, dataJson: string, createdAt: Date, updatedAt: Date, digest: string | null): string {
  return `${recordLineCopyV2(collection, id, version, dataJson, createdAt, updatedAt).slice(0, -1)}\t${digest ?? '\\N'}\n`;
}

/** Format 2 (no digest), kept to restore and drill backups written before format 3. */
export function recordLineCopyV2(collection: string, id: string, version: number, dataJson: string, createdAt: Date, updatedAt: Date): string {
  return `${copyText(collection)}\t${copyText(id)}\t${version}\t${copyText(dataJson)}\t${createdAt.toISOString()}\t${updatedAt.toISOString()}\n`;
}

/** Format 1, kept to restore and drill backups written before format 2. */
export function recordLineNdjson(collection: string, id: string, version: number, dataJson: string, createdAt: Date, updatedAt: Date): string {
  return `{"c":${JSON.stringify(collection)},"i":${JSON.stringify(id)},"v":${version},"d":${dataJson},"ca":"${createdAt.toISOString()}","ua":"${updatedAt.toISOString()}"}\n`;
}
