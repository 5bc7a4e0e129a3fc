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
