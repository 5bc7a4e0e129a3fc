/** What one backup holds; encrypted with the customer's key (file names are personal data too). */
export interface BackupManifest {
  format: 'hokan-backup/1';
  backupId: string;
  customerId: string;
  snapshotAt: string;
  keyFingerprint: string;
  records: { part: string; count: number; collections: Record<string, number>; plainBytes: number; plainSha256: string };
  files: Array<{ id: string; name: string; contentType: string; size: number; sha256: string; createdAt: string; part: string }>;
}

/** One record as a line of the records part. */
export interface RecordLine {
  c: string;
  i: string;
  v: number;
  d: unknown;
  ca: string;
  ua: string;
}

/**
 * Serialises one record line from the database's own JSON text of `data` (`data::text`), so the
 * backup neither parses nor re-stringifies every record; field order is fixed, so the backup and
 * the drill produce byte-identical lines for the same rows.
 */
export function recordLineText(collection: string, id: string, version: number, dataJson: string, createdAt: Date, updatedAt: Date): string {
  return `{"c":${JSON.stringify(collection)},"i":${JSON.stringify(id)},"v":${version},"d":${dataJson},"ca":"${createdAt.toISOString()}","ua":"${updatedAt.toISOString()}"}\n`;
}
