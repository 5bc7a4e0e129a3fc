import type { Bilingual } from '../core/i18n.js';

/**
 * データ消去証明書 — what the purge deleted, where, when, with hashes (R10.7). The JSON is the
 * record; HTML and PDF are renderings of it. It names objects by id and hash, never by file name
 * or content: the certificate must not itself keep the personal data it certifies as deleted.
 */
export interface DeletionCertificate {
  format: 'hokan-deletion-certificate/1';
  certificateId: string;
  issuedAt: string;
  provider: { name: string };
  customer: { id: string; code: string; name: string };
  contracts: Array<{ contractNumber: string; endedAt: string; endReason: string; endReasonLabel: Bilingual }>;
  live: {
    deletedAt: string;
    records: { count: number; collections: Record<string, number> };
    files: { count: number; bytes: number; store: string; objects: Array<{ id: string; sha256: string; size: number }> };
  };
  backups: Array<{
    backupId: string;
    createdAt: string;
    generation: string;
    targets: Array<{
      target: 'primary' | 'offsite';
      location: string;
      objects: Array<{ key: string; sha256: string; size: number }>;
      /** deleted: removed now; retained: held by its immutability period, unreadable since the key is destroyed, removed at retainedUntil. */
      state: 'deleted' | 'retained';
      deletedAt: string | null;
      retainedUntil: string | null;
    }>;
  }>;
  key: { fingerprint: string | null; destroyedAt: string };
  statement: Bilingual;
}
