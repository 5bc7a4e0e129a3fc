import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { renderCertificateHtml, renderCertificatePdf } from '../../src/backup/certificate-render.js';
import type { DeletionCertificate } from '../../src/backup/certificate.js';
import { END_REASONS } from '../../src/contracts/vocabulary.js';
import { bi } from '../../src/core/i18n.js';
import { formatJapanDateTime } from '../../src/core/japan-time.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const uuid = (n: number) => {
  const h = hex(`uuid-${n}`);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

const CUSTOMER_NAME = '社会福祉法人みどり会 <script>alert("x")</script>';
const CUSTOMER_ID = uuid(1);
const BACKUP_IDS = [uuid(100), uuid(101)];
const FINGERPRINT = hex('dek').slice(0, 16);

/** A certificate as purge.ts issues it: two ended contracts, records in 3 collections, files, two backups on two targets each. */
function makeCertificate(fileCount: number): DeletionCertificate {
  const objects = Array.from({ length: fileCount }, (_, i) => ({ id: uuid(1000 + i), sha256: hex(`file-${i}`), size: 1000 + i * 7919 }));
  const backupTarget = (backupId: string, target: 'primary' | 'offsite', retained: boolean) => ({
    target,
    location: target === 'primary' ? 'directory /var/lib/hokan/backups' : 's3://hokan-offsite/backups/ in ap-northeast-1 (object lock)',
    objects: ['records.jsonl.enc', 'files.tar.enc', 'manifest.json.enc'].map((name, i) => ({
      key: `backups/${CUSTOMER_ID}/${backupId}/${name}`,
      sha256: hex(`${backupId}/${name}`),
      size: 40_000 * (i + 1),
    })),
    state: retained ? ('retained' as const) : ('deleted' as const),
    deletedAt: retained ? null : '2026-11-24T01:00:05.000Z',
    retainedUntil: retained ? '2027-02-22T15:00:00.000Z' : null,
  });
  return {
    format: 'hokan-deletion-certificate/1',
    certificateId: uuid(9),
    issuedAt: '2026-11-24T01:00:07.000Z',
    provider: { name: '株式会社ほかんデータセンター & Co.' },
    customer: { id: CUSTOMER_ID, code: 'midori', name: CUSTOMER_NAME },
    contracts: [
      { contractNumber: 'C-midori', endedAt: '2026-11-22T15:00:00.000Z', endReason: 'term_expired', endReasonLabel: END_REASONS.term_expired },
      { contractNumber: 'SU-midori', endedAt: '2026-11-22T15:00:00.000Z', endReason: 'linked_contract_ended', endReasonLabel: END_REASONS.linked_contract_ended },
    ],
    live: {
      deletedAt: '2026-11-24T01:00:02.000Z',
      records: { count: 1205, collections: { residents: 803, 'care-notes': 402, 'ケア記録': 0 } },
      files: { count: objects.length, bytes: objects.reduce((n, o) => n + o.size, 0), store: 'directory /var/lib/hokan/files', objects },
    },
    backups: [
      { backupId: BACKUP_IDS[0]!, createdAt: '2026-11-20T18:00:00.000Z', generation: 'weekly', targets: [backupTarget(BACKUP_IDS[0]!, 'primary', false), backupTarget(BACKUP_IDS[0]!, 'offsite', true)] },
      { backupId: BACKUP_IDS[1]!, createdAt: '2026-11-21T18:00:00.000Z', generation: 'daily', targets: [backupTarget(BACKUP_IDS[1]!, 'primary', false), backupTarget(BACKUP_IDS[1]!, 'offsite', false)] },
    ],
    key: { fingerprint: FINGERPRINT, destroyedAt: '2026-11-24T01:00:01.000Z' },
    statement: bi(
      `ご契約の終了に伴い、上記のお客様データ（バックアップを含む）を消去し、暗号鍵（指紋 ${FINGERPRINT}）を破棄したことを証明します。保持期間中のバックアップは鍵の破棄により復号できず、保持期間の満了時に削除されます。`,
      `We certify that, the contract having ended, the customer data above, backups included, has been deleted and its encryption key (fingerprint ${FINGERPRINT}) destroyed. Any backup still within its retention period cannot be decrypted since the key was destroyed, and is removed when that period ends.`,
    ),
  };
}

const small = makeCertificate(5);
const large = makeCertificate(2000);
const SHA = hex('canonical certificate json');

// Set CERT_RENDER_OUT to a directory to keep the rendered files for a person to look at.
const outDir = process.env.CERT_RENDER_OUT;
const keep = (name: string, body: string | Buffer) => {
  if (outDir) fs.writeFileSync(path.join(outDir, name), body);
};

describe('deletion certificate as HTML', () => {
  const html = renderCertificateHtml(small, SHA);
  keep('certificate.html', html);

  it('is a standalone Japanese-first HTML5 document with the bilingual title', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<html lang="ja">');
    expect(html).toContain('データ消去証明書');
    expect(html).toContain('Certificate of Data Deletion');
    expect(html).toContain('@page');
    expect(html).toMatch(/<meta charset="utf-8">/);
    // No script, no external resource of any kind.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(|@import/i);
  });

  it('escapes every value from the certificate', () => {
    expect(html).toContain('社会福祉法人みどり会 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).not.toContain(CUSTOMER_NAME);
    expect(html).toContain('株式会社ほかんデータセンター &amp; Co.');
  });

  it('shows the hash, customer, contracts, live data, every backup target and the key', () => {
    expect(html).toContain(SHA);
    expect(html).toContain(small.certificateId);
    expect(html).toContain(formatJapanDateTime(new Date(small.issuedAt)));
    expect(html).toContain('midori');
    expect(html).toContain(END_REASONS.term_expired.ja);
    expect(html).toContain(END_REASONS.linked_contract_ended.en);
    for (const c of ['residents', 'care-notes', 'ケア記録']) expect(html).toContain(c);
    expect(html).toContain('1,205');
    for (const o of small.live.files.objects) {
      expect(html).toContain(o.id);
      expect(html).toContain(o.sha256);
    }
    for (const id of BACKUP_IDS) expect(html).toContain(id);
    expect(html).toContain('s3://hokan-offsite/backups/ in ap-northeast-1 (object lock)');
    expect(html).toContain(`削除済み（${formatJapanDateTime(new Date('2026-11-24T01:00:05.000Z'))}）`);
    expect(html).toContain('保持期間中・暗号鍵破棄により復号不能');
    expect(html).toContain(`retained until ${formatJapanDateTime(new Date('2027-02-22T15:00:00.000Z'))}`);
    expect(html).toContain(FINGERPRINT);
    expect(html).toContain(formatJapanDateTime(new Date(small.key.destroyedAt)));
    expect(html).toContain(small.statement.ja);
    expect(html).toContain(small.statement.en);
  });

  it('lists every file object of a large certificate', () => {
    const big = renderCertificateHtml(large, SHA);
    expect(big.match(/<tr>/g)?.length).toBeGreaterThan(2000);
    expect(big).toContain(large.live.files.objects[1999]!.sha256);
  });

  it('says "none" rather than printing null when no key was ever recorded', () => {
    const html2 = renderCertificateHtml({ ...small, key: { fingerprint: null, destroyedAt: small.key.destroyedAt }, backups: [] }, SHA);
    expect(html2).not.toContain('null');
    expect(html2).toContain('なし');
  });
});

/** Every Flate stream in the file, inflated: font programs, content and ToUnicode maps. */
function inflatedStreams(pdf: Buffer): string[] {
  const out: string[] = [];
  const bin = pdf.toString('latin1');
  const re = /stream\r?\n/g;
  for (let m = re.exec(bin); m; m = re.exec(bin)) {
    const start = m.index + m[0].length;
    const end = bin.indexOf('endstream', start);
    if (end < 0) break;
    try {
      out.push(inflateSync(pdf.subarray(start, end)).toString('latin1'));
    } catch {
      // Not every stream is deflated.
    }
    re.lastIndex = end + 'endstream'.length;
  }
  return out;
}

/** A document-information entry; PDFKit writes each value as its own object. */
function infoValue(raw: string, key: string): string | undefined {
  const ref = new RegExp(`/${key} (\\d+) 0 R`).exec(raw)?.[1];
  if (!ref) return undefined;
  return new RegExp(`\\n${ref} 0 obj\\n(.*)\\nendobj`).exec(raw)?.[1];
}

const pageCount = (pdf: Buffer) => pdf.toString('latin1').match(/\/Type \/Page\b(?!s)/g)?.length ?? 0;
const hasPdftotext = (() => {
  try {
    execFileSync('pdftotext', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('deletion certificate as PDF', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-cert-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  let smallPdf: Buffer;

  it('is a PDF on A4 with an embedded Noto Sans JP subset and the certificate metadata', async () => {
    smallPdf = await renderCertificatePdf(small, SHA);
    keep('certificate.pdf', smallPdf);
    const raw = smallPdf.toString('latin1');
    expect(raw.startsWith('%PDF-')).toBe(true);
    expect(raw.trimEnd().endsWith('%%EOF')).toBe(true);
    expect(raw).toContain('/MediaBox [0 0 595.28 841.89]');
    // A subset font is named with a six-letter tag, and the glyf program is embedded.
    expect(raw).toMatch(/\/BaseFont \/[A-Z]{6}\+NotoSansJP/);
    expect(raw).toContain('/FontFile2');
    expect(raw).toContain('/ToUnicode');
    // Subsetting keeps it small: the full font file alone is ~5.5 MB.
    expect(smallPdf.length).toBeLessThan(300_000);
    expect(infoValue(raw, 'CreationDate')).toBe('(D:20261124010007Z)');
    expect(raw).toContain('/Lang (ja-JP)');
  });

  it('maps the Japanese glyphs it draws back to their characters', () => {
    // Without pdftotext: the ToUnicode maps of the subsets must cover the Japanese text.
    const cmaps = inflatedStreams(smallPdf)
      .filter((s) => s.includes('begincmap'))
      .join('\n')
      .toLowerCase();
    for (const ch of 'データ消去証明書社会福祉法人みどり会削除済み保持期間中暗号鍵破棄') {
      expect(cmaps, ch).toContain(`<${ch.codePointAt(0)!.toString(16).padStart(4, '0')}>`);
    }
  });

  it.skipIf(!hasPdftotext)('has the Japanese text where a PDF reader finds it (pdftotext)', () => {
    const file = path.join(tmp, 'small.pdf');
    fs.writeFileSync(file, smallPdf);
    const text = execFileSync('pdftotext', ['-enc', 'UTF-8', file, '-'], { encoding: 'utf8' });
    const flat = text.replace(/\s+/g, '');
    for (const s of ['データ消去証明書', 'CertificateofDataDeletion', '社会福祉法人みどり会<script>alert("x")</script>', '削除済み', '保持期間中・暗号鍵破棄により復号不能', FINGERPRINT, SHA, ...BACKUP_IDS]) {
      expect(flat, s).toContain(s.replace(/\s+/g, ''));
    }
    for (const o of small.live.files.objects) expect(flat).toContain(o.sha256);
    const info = execFileSync('pdfinfo', [file], { encoding: 'utf8' });
    expect(info).toMatch(/Title:\s+データ消去証明書/);
    expect(info).toMatch(/Page size:\s+595\.28 x 841\.89 pts \(A4\)/);
  });

  it('paginates 2,000 file objects instead of running off the page', async () => {
    const pdf = await renderCertificatePdf(large, SHA);
    keep('certificate-2000.pdf', pdf);
    const pages = pageCount(pdf);
    // ~57 compact rows fit a page (38 pages when written); not one page, nor a page per few rows.
    expect(pages).toBeGreaterThan(20);
    expect(pages).toBeLessThan(60);
    expect(pdf.length).toBeLessThan(3_000_000);
    if (hasPdftotext) {
      const file = path.join(tmp, 'large.pdf');
      fs.writeFileSync(file, pdf);
      const text = execFileSync('pdftotext', ['-enc', 'UTF-8', file, '-'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      // The last object and the statement after the table both made it onto a page.
      expect(text).toContain(large.live.files.objects[1999]!.sha256);
      expect(text).toContain(`${pages} / ${pages}`);
      expect(text.replace(/\s+/g, '')).toContain('削除したファイル（続き）');
    }
  });

  it('renders the same certificate to the same bytes', async () => {
    // Nothing time- or random-dependent goes in, so a re-issued copy is identical to the first.
    expect((await renderCertificatePdf(small, SHA)).equals(smallPdf)).toBe(true);
  });

  it('refuses a certificate without a valid issue time rather than dating the PDF now', async () => {
    await expect(renderCertificatePdf({ ...small, issuedAt: 'not a time' }, SHA)).rejects.toThrow(/issuedAt/);
  });
});
