import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import { bi, type Bilingual } from '../core/i18n.js';
import { formatJapanDateTime } from '../core/japan-time.js';
import type { DeletionCertificate } from './certificate.js';

/*
 * Both renderings are drawn from one neutral model, so the HTML and the PDF cannot drift apart
 * in what they state: only how it looks differs. The JSON stays the record (its SHA-256 is
 * printed); these are human-readable views of it.
 */

type Text = string | Bilingual;

interface Field {
  label: Bilingual;
  value: Text;
  mono?: boolean;
}

interface Column {
  label: Bilingual;
  /** Share of the table width; the PDF needs fixed widths to paginate predictably. */
  share: number;
  align?: 'left' | 'right';
  mono?: boolean;
}

interface Table {
  kind: 'table';
  /** Shown above the table unless it would repeat the section heading; always on continuation pages. */
  caption: Bilingual;
  showCaption?: boolean;
  columns: Column[];
  rows: Text[][];
  empty: Bilingual;
  /** Small type and tight rows, for object lists that run to thousands of rows. */
  compact?: boolean;
}

type Block =
  | { kind: 'fields'; fields: Field[] }
  /** Kept on one page when it fits, so a backup's id is not separated from its targets. */
  | { kind: 'group'; heading: Bilingual; blocks: Block[] }
  | Table
  | { kind: 'statement'; text: Bilingual };

interface Section {
  heading: Bilingual;
  blocks: Block[];
}

interface CertificateModel {
  title: Bilingual;
  sections: Section[];
  note: Bilingual;
}

const NUMBER = new Intl.NumberFormat('ja-JP');
const DASH = '—';

/** A stored time that does not parse is shown as stored rather than as "NaN年…". */
function when(iso: string | null): string {
  if (!iso) return DASH;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatJapanDateTime(d);
}

const IEC_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** The exact byte count is what the certificate asserts; the rounded unit is only a reading aid. */
function bytes(n: number): string {
  const exact = `${NUMBER.format(n)} B`;
  if (!(n >= 1024)) return exact;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < IEC_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${exact} (${v.toFixed(v < 10 ? 2 : 1)} ${IEC_UNITS[i]})`;
}

const TARGET_LABELS: Record<string, Bilingual> = {
  primary: bi('プライマリ', 'primary'),
  offsite: bi('オフサイト', 'off-site'),
};

const GENERATION_LABELS: Record<string, Bilingual> = {
  daily: bi('日次', 'daily'),
  weekly: bi('週次', 'weekly'),
  manual: bi('手動', 'manual'),
};

type Target = DeletionCertificate['backups'][number]['targets'][number];

function targetState(t: Target): Bilingual {
  if (t.state === 'deleted') return bi(`削除済み（${when(t.deletedAt)}）`, `deleted at ${when(t.deletedAt)}`);
  return bi(
    `保持期間中・暗号鍵破棄により復号不能（${when(t.retainedUntil)} まで保持、その後削除）`,
    `retained until ${when(t.retainedUntil)} and unreadable since the key was destroyed`,
  );
}

function buildModel(cert: DeletionCertificate, sha256: string): CertificateModel {
  const sections: Section[] = [];

  sections.push({
    heading: bi('証明書', 'Certificate'),
    blocks: [
      {
        kind: 'fields',
        fields: [
          { label: bi('証明書番号', 'Certificate ID'), value: cert.certificateId, mono: true },
          { label: bi('発行日時', 'Issued at'), value: when(cert.issuedAt) },
          { label: bi('発行者', 'Issued by'), value: cert.provider.name },
          { label: bi('証明書JSONのSHA-256', 'SHA-256 of the certificate JSON'), value: sha256, mono: true },
          { label: bi('形式', 'Format'), value: cert.format, mono: true },
        ],
      },
    ],
  });

  sections.push({
    heading: bi('お客様', 'Customer'),
    blocks: [
      {
        kind: 'fields',
        fields: [
          { label: bi('お客様コード', 'Customer code'), value: cert.customer.code, mono: true },
          { label: bi('お客様名', 'Customer name'), value: cert.customer.name },
          { label: bi('お客様ID', 'Customer ID'), value: cert.customer.id, mono: true },
        ],
      },
    ],
  });

  sections.push({
    heading: bi('終了した契約', 'Ended contracts'),
    blocks: [
      {
        kind: 'table',
        caption: bi('終了した契約', 'Ended contracts'),
        showCaption: false,
        columns: [
          { label: bi('契約番号', 'Contract no.'), share: 0.22, mono: true },
          { label: bi('終了日時', 'Ended at'), share: 0.26 },
          { label: bi('終了事由', 'End reason'), share: 0.52 },
        ],
        rows: cert.contracts.map((c) => [c.contractNumber, when(c.endedAt), c.endReasonLabel]),
        empty: bi('記載する契約はありません', 'no contract listed'),
      },
    ],
  });

  const live = cert.live;
  const collections = Object.entries(live.records.collections).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  sections.push({
    heading: bi('削除した稼働中のデータ', 'Live data deleted'),
    blocks: [
      {
        kind: 'fields',
        fields: [
          { label: bi('削除日時', 'Deleted at'), value: when(live.deletedAt) },
          { label: bi('レコード', 'Records'), value: bi(`${NUMBER.format(live.records.count)} 件`, `${NUMBER.format(live.records.count)} records`) },
          { label: bi('ファイル', 'Files'), value: bi(`${NUMBER.format(live.files.count)} 件、合計 ${bytes(live.files.bytes)}`, `${NUMBER.format(live.files.count)} files, ${bytes(live.files.bytes)} in total`) },
          { label: bi('ファイルの保存先', 'File store'), value: live.files.store, mono: true },
        ],
      },
      {
        kind: 'table',
        caption: bi('コレクション別のレコード数', 'Records per collection'),
        columns: [
          { label: bi('コレクション', 'Collection'), share: 0.7, mono: true },
          { label: bi('件数', 'Records'), share: 0.3, align: 'right' },
        ],
        rows: collections.map(([name, n]) => [name, NUMBER.format(n)]),
        empty: bi('レコードはありませんでした', 'no records'),
      },
      {
        kind: 'table',
        caption: bi('削除したファイル', 'Files deleted'),
        compact: true,
        columns: [
          { label: bi('#', '#'), share: 0.055, align: 'right' },
          { label: bi('ファイルID', 'File ID'), share: 0.29, mono: true },
          { label: bi('サイズ（バイト）', 'Size (bytes)'), share: 0.135, align: 'right' },
          // Wide enough for a 64-digit hash on one line at the compact size.
          { label: bi('SHA-256', 'SHA-256'), share: 0.52, mono: true },
        ],
        rows: live.files.objects.map((o, i) => [String(i + 1), o.id, NUMBER.format(o.size), o.sha256]),
        empty: bi('ファイルはありませんでした', 'no files'),
      },
    ],
  });

  const backupBlocks: Block[] = cert.backups.map((b, i) => ({
    kind: 'group',
    heading: bi(`バックアップ ${i + 1}`, `Backup ${i + 1}`),
    blocks: [
      {
        kind: 'fields',
        fields: [
          { label: bi('バックアップID', 'Backup ID'), value: b.backupId, mono: true },
          { label: bi('作成日時', 'Created at'), value: when(b.createdAt) },
          { label: bi('世代', 'Generation'), value: GENERATION_LABELS[b.generation] ?? b.generation },
        ],
      },
      {
        kind: 'table',
        caption: bi(`バックアップ ${i + 1} の保存先`, `Backup ${i + 1} targets`),
        columns: [
          { label: bi('保存先', 'Target'), share: 0.12 },
          { label: bi('場所', 'Location'), share: 0.25, mono: true },
          { label: bi('オブジェクト数', 'Objects'), share: 0.13, align: 'right' },
          { label: bi('合計サイズ', 'Total size'), share: 0.16, align: 'right' },
          { label: bi('状態', 'State'), share: 0.34 },
        ],
        rows: b.targets.map((t) => [
          TARGET_LABELS[t.target] ?? t.target,
          // A store's description never holds a secret (BlobStore contract), so it is shown as is.
          t.location,
          NUMBER.format(t.objects.length),
          bytes(t.objects.reduce((n, o) => n + o.size, 0)),
          targetState(t),
        ]),
        empty: bi('保存先にオブジェクトはありませんでした', 'no objects on any target'),
      },
    ],
  }));
  if (backupBlocks.length === 0) {
    backupBlocks.push({ kind: 'fields', fields: [{ label: bi('バックアップ', 'Backups'), value: bi('ありませんでした', 'none') }] });
  }
  sections.push({ heading: bi('削除したバックアップ', 'Backups deleted'), blocks: backupBlocks });

  sections.push({
    heading: bi('暗号鍵', 'Encryption key'),
    blocks: [
      {
        kind: 'fields',
        fields: [
          { label: bi('鍵の指紋', 'Key fingerprint'), value: cert.key.fingerprint ?? bi('なし', 'none'), mono: cert.key.fingerprint !== null },
          { label: bi('破棄日時', 'Destroyed at'), value: when(cert.key.destroyedAt) },
        ],
      },
    ],
  });

  sections.push({ heading: bi('証明', 'Statement'), blocks: [{ kind: 'statement', text: cert.statement }] });

  return {
    title: bi('データ消去証明書', 'Certificate of Data Deletion'),
    sections,
    note: bi(
      'この証明書の正本はJSON形式の記録です。上記のSHA-256でその記録と照合できます。',
      'The JSON record is the authoritative certificate; the SHA-256 above identifies it.',
    ),
  };
}

// ───────────────────────────── HTML ─────────────────────────────

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

function htmlText(t: Text): string {
  if (typeof t === 'string') return esc(t);
  if (t.ja === t.en) return esc(t.ja);
  return `<span class="ja">${esc(t.ja)}</span><span class="en" lang="en">${esc(t.en)}</span>`;
}

function htmlHeading(tag: 'h1' | 'h2' | 'h3', t: Bilingual): string {
  return `<${tag}><span class="ja">${esc(t.ja)}</span> <span class="en" lang="en">${esc(t.en)}</span></${tag}>`;
}

function htmlBlock(b: Block): string {
  switch (b.kind) {
    case 'fields':
      return `<dl class="fields">${b.fields
        .map((f) => `<div><dt>${htmlText(f.label)}</dt><dd${f.mono ? ' class="mono"' : ''}>${htmlText(f.value)}</dd></div>`)
        .join('')}</dl>`;
    case 'group':
      return `<section class="group">${htmlHeading('h3', b.heading)}${b.blocks.map(htmlBlock).join('\n')}</section>`;
    case 'statement':
      return `<div class="statement"><p class="ja">${esc(b.text.ja)}</p><p class="en" lang="en">${esc(b.text.en)}</p></div>`;
    case 'table': {
      const cls = (c: Column) => [c.align === 'right' ? 'num' : '', c.mono ? 'mono' : ''].filter(Boolean).join(' ');
      const attr = (c: Column) => (cls(c) ? ` class="${cls(c)}"` : '');
      const cols = b.columns.map((c) => `<col style="width:${(c.share * 100).toFixed(1)}%">`).join('');
      const head = b.columns.map((c) => `<th scope="col"${c.align === 'right' ? ' class="num"' : ''}>${htmlText(c.label)}</th>`).join('');
      const body =
        b.rows.length === 0
          ? `<tr><td class="empty" colspan="${b.columns.length}">${htmlText(b.empty)}</td></tr>`
          : b.rows.map((r) => `<tr>${r.map((cell, i) => `<td${b.columns[i] ? attr(b.columns[i]) : ''}>${htmlText(cell)}</td>`).join('')}</tr>`).join('\n');
      return `<table class="data${b.compact ? ' compact' : ''}"><caption${b.showCaption === false ? ' class="sr-only"' : ''}>${htmlText(b.caption)}</caption><colgroup>${cols}</colgroup><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
    }
  }
}

const CSS = `
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: #e9ecf0; color: #1b1f24;
  font-family: "Noto Sans JP", "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic", "Meiryo", sans-serif;
  font-size: 10pt; line-height: 1.6; }
main { max-width: 210mm; margin: 24px auto; padding: 16mm 14mm; background: #fff; box-shadow: 0 1px 6px rgba(0,0,0,.18); }
header.title { border-bottom: 3px double #1f3a5f; margin-bottom: 1.2em; padding-bottom: .6em; text-align: center; }
h1 { margin: 0; font-size: 20pt; letter-spacing: .12em; color: #1f3a5f; }
h1 .en { display: block; font-size: 11pt; letter-spacing: .02em; font-weight: normal; }
h2 { margin: 1.4em 0 .5em; padding-bottom: .15em; border-bottom: 1.5px solid #1f3a5f; font-size: 12pt; color: #1f3a5f; break-after: avoid; page-break-after: avoid; }
h3 { margin: 1.1em 0 .3em; font-size: 10.5pt; break-after: avoid; page-break-after: avoid; }
h2 .en, h3 .en { font-size: .8em; font-weight: normal; margin-left: .5em; }
.en { color: #58606a; }
td .en, dd .en, dt .en, th .en, caption .en { display: block; font-size: .86em; line-height: 1.35; }
.mono, .mono .en { font-family: ui-monospace, "SFMono-Regular", "Menlo", "Consolas", "Noto Sans Mono", monospace; }
.mono { font-size: .85em; overflow-wrap: anywhere; word-break: break-all; }
dl.fields { margin: 0; display: grid; grid-template-columns: minmax(9em, 14em) 1fr; border-top: 1px solid #d5dae0; }
dl.fields > div { display: contents; }
dl.fields dt, dl.fields dd { margin: 0; padding: .3em .5em; border-bottom: 1px solid #d5dae0; break-inside: avoid; }
dl.fields dt { background: #f3f5f8; font-weight: bold; font-size: .92em; }
table.data { width: 100%; table-layout: fixed; border-collapse: collapse; margin: .6em 0 .2em; }
table.data caption { caption-side: top; text-align: left; font-weight: bold; font-size: .92em; padding: .2em 0; }
table.data caption .en { display: inline; margin-left: .5em; font-weight: normal; }
table.data th, table.data td { border: 1px solid #d5dae0; padding: .25em .45em; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
table.data th { background: #e8edf3; font-size: .88em; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; }
table.data td.empty { color: #58606a; text-align: center; }
table.data tbody tr:nth-child(even) td { background: #f8f9fb; }
table.compact { font-size: 7.5pt; line-height: 1.35; }
table.compact th, table.compact td { padding: .1em .35em; }
table.compact .mono { font-size: 1em; }
thead { display: table-header-group; }
tr, dl.fields dt, dl.fields dd { break-inside: avoid; page-break-inside: avoid; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
section.group { break-inside: avoid; page-break-inside: avoid; }
.statement { margin-top: .6em; padding: .8em 1em; border: 1.5px solid #1f3a5f; border-radius: 3px; break-inside: avoid; page-break-inside: avoid; }
.statement p { margin: 0; }
.statement p.en { margin-top: .5em; font-size: .92em; }
footer.note { margin-top: 1.5em; font-size: .85em; color: #58606a; }
footer.note .en { display: block; }
@media (max-width: 720px) {
  main { margin: 0; padding: 16px 12px; box-shadow: none; }
  dl.fields { grid-template-columns: 1fr; }
  dl.fields dt { border-bottom: 0; }
}
@media print {
  body { background: #fff; font-size: 9.5pt; }
  main { max-width: none; margin: 0; padding: 0; box-shadow: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
`;

/**
 * A standalone page: inline CSS, no script, no external resource, and a CSP that forbids both,
 * so the document stays inert even if an escaping mistake ever let markup through.
 */
export function renderCertificateHtml(cert: DeletionCertificate, sha256: string): string {
  const model = buildModel(cert, sha256);
  const sections = model.sections.map((s) => `<section>${htmlHeading('h2', s.heading)}${s.blocks.map(htmlBlock).join('\n')}</section>`).join('\n');
  return `<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(model.title.ja)} / ${esc(model.title.en)} — ${esc(cert.certificateId)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header class="title">${htmlHeading('h1', model.title)}</header>
${sections}
<footer class="note"><span class="ja">${esc(model.note.ja)}</span><span class="en" lang="en">${esc(model.note.en)}</span></footer>
</main>
</body>
</html>
`;
}

// ───────────────────────────── PDF ─────────────────────────────

/*
 * Noto Sans JP as static TrueType (glyf) files: fontkit subsets glyf fonts compactly, and the
 * embedded subset carries a ToUnicode map, so text stays searchable and copyable. Loaded once
 * per process: the files are ~5.5 MB each.
 */
const requireHere = createRequire(import.meta.url);
let fontCache: { regular: Buffer; bold: Buffer } | undefined;
function fonts(): { regular: Buffer; bold: Buffer } {
  fontCache ??= {
    regular: readFileSync(requireHere.resolve('@expo-google-fonts/noto-sans-jp/400Regular/NotoSansJP_400Regular.ttf')),
    bold: readFileSync(requireHere.resolve('@expo-google-fonts/noto-sans-jp/700Bold/NotoSansJP_700Bold.ttf')),
  };
  return fontCache;
}

const F_REGULAR = 'NotoSansJP';
const F_BOLD = 'NotoSansJP-Bold';
const INK = '#1b1f24';
const MUTED = '#58606a';
const ACCENT = '#1f3a5f';
const RULE = '#c9d0d8';
const HEAD_FILL = '#e8edf3';
const LABEL_FILL = '#f3f5f8';
const ZEBRA_FILL = '#f8f9fb';

const MARGIN = { top: 50, bottom: 56, left: 48, right: 48 };
/** English sits under the Japanese at this fraction of its size. */
const EN_SCALE = 0.86;
const CELL_PAD_X = 4;
const CELL_PAD_Y = 2.5;

interface Style {
  size: number;
  bold?: boolean;
}

type Doc = PDFKit.PDFDocument;

class PdfLayout {
  y: number;

  constructor(
    readonly doc: Doc,
    private readonly footer: string,
  ) {
    this.y = MARGIN.top;
  }

  get left(): number {
    return MARGIN.left;
  }

  get width(): number {
    return this.doc.page.width - MARGIN.left - MARGIN.right;
  }

  get bottom(): number {
    return this.doc.page.height - MARGIN.bottom;
  }

  newPage(): void {
    this.doc.addPage();
    this.y = MARGIN.top;
  }

  /** Starts a new page unless `h` more points fit; true when it did. */
  ensure(h: number): boolean {
    if (this.y + h <= this.bottom) return false;
    this.newPage();
    return true;
  }

  private use(style: Style): void {
    this.doc.font(style.bold ? F_BOLD : F_REGULAR).fontSize(style.size);
  }

  /** Height of one line of a single string, measured the way `draw` will lay it out. */
  private heightOf(s: string, width: number, style: Style): number {
    this.use(style);
    // Most cells are one short line; measuring width first skips the line wrapper for them.
    if (this.doc.widthOfString(s) <= width) return this.doc.currentLineHeight(true);
    return this.doc.heightOfString(s, { width });
  }

  measure(t: Text, width: number, style: Style): number {
    if (typeof t === 'string') return this.heightOf(t, width, style);
    return this.heightOf(t.ja, width, style) + this.heightOf(t.en, width, { ...style, size: style.size * EN_SCALE });
  }

  /** Draws at (x, y) without moving the layout cursor; returns the height used. */
  draw(t: Text, x: number, y: number, width: number, style: Style, align: 'left' | 'right' | 'center' = 'left', color = INK): number {
    const one = (s: string, yy: number, st: Style, c: string) => {
      const h = this.heightOf(s, width, st);
      this.use(st);
      this.doc.fillColor(c).text(s, x, yy, { width, align, lineBreak: true });
      return h;
    };
    if (typeof t === 'string') return one(t, y, style, color);
    const h = one(t.ja, y, style, color);
    return h + one(t.en, y + h, { ...style, size: style.size * EN_SCALE }, MUTED);
  }

  title(t: Bilingual): void {
    const h = this.draw(t.ja, this.left, this.y, this.width, { size: 20, bold: true }, 'center', ACCENT);
    const h2 = this.draw(t.en, this.left, this.y + h, this.width, { size: 11 }, 'center', MUTED);
    this.y += h + h2 + 6;
    this.doc.moveTo(this.left, this.y).lineTo(this.left + this.width, this.y).lineWidth(0.8).strokeColor(ACCENT).stroke();
    this.doc.moveTo(this.left, this.y + 2.2).lineTo(this.left + this.width, this.y + 2.2).lineWidth(0.8).strokeColor(ACCENT).stroke();
    this.y += 10;
  }

  heading(t: Bilingual): void {
    const style: Style = { size: 12, bold: true };
    const h = this.heightOf(t.ja, this.width, style);
    // Keep a heading with at least a few lines of what it introduces.
    this.ensure(14 + h + 48);
    this.y += 14;
    this.use(style);
    const jaWidth = this.doc.widthOfString(t.ja);
    this.draw(t.ja, this.left, this.y, this.width, style, 'left', ACCENT);
    this.draw(t.en, this.left + jaWidth + 8, this.y + 2.5, this.width - jaWidth - 8, { size: 9.5 }, 'left', MUTED);
    this.y += h + 1;
    this.doc.moveTo(this.left, this.y).lineTo(this.left + this.width, this.y).lineWidth(1.1).strokeColor(ACCENT).stroke();
    this.y += 5;
  }

  subheading(t: Bilingual): void {
    const style: Style = { size: 10, bold: true };
    const h = this.heightOf(t.ja, this.width, style);
    this.ensure(8 + h + 40);
    this.y += 8;
    this.use(style);
    const jaWidth = this.doc.widthOfString(t.ja);
    this.draw(t.ja, this.left, this.y, this.width, style);
    this.draw(t.en, this.left + jaWidth + 6, this.y + 1.5, this.width - jaWidth - 6, { size: 8.5 }, 'left', MUTED);
    this.y += h + 3;
  }

  fields(fields: Field[]): void {
    const labelW = 150;
    const valueW = this.width - labelW;
    const labelStyle: Style = { size: 8.5, bold: true };
    for (const f of fields) {
      // Identifiers and hashes are long unbroken runs; a smaller size keeps most on one line.
      const valueStyle: Style = { size: f.mono ? 8.5 : 9.5 };
      const h =
        Math.max(this.measure(f.label, labelW - 2 * CELL_PAD_X, labelStyle), this.measure(f.value, valueW - 2 * CELL_PAD_X, valueStyle)) + 2 * CELL_PAD_Y + 1;
      this.ensure(h);
      this.doc.rect(this.left, this.y, labelW, h).fill(LABEL_FILL);
      this.draw(f.label, this.left + CELL_PAD_X, this.y + CELL_PAD_Y, labelW - 2 * CELL_PAD_X, labelStyle);
      this.draw(f.value, this.left + labelW + CELL_PAD_X, this.y + CELL_PAD_Y, valueW - 2 * CELL_PAD_X, valueStyle);
      this.y += h;
      this.doc.moveTo(this.left, this.y).lineTo(this.left + this.width, this.y).lineWidth(0.5).strokeColor(RULE).stroke();
    }
    this.y += 4;
  }

  table(b: Extract<Block, { kind: 'table' }>): void {
    const size = b.compact ? 6.8 : 8.5;
    const headStyle: Style = { size: b.compact ? 7 : 8, bold: true };
    const widths = b.columns.map((c) => c.share * this.width);
    const xs = widths.map((_, i) => this.left + widths.slice(0, i).reduce((a, w) => a + w, 0));
    const inner = (i: number) => (widths[i] ?? 0) - 2 * CELL_PAD_X;
    const headH = Math.max(...b.columns.map((c, i) => this.measure(c.label, inner(i), headStyle))) + 2 * CELL_PAD_Y;
    const captionStyle: Style = { size: 8.5, bold: true };

    const caption = (continued: boolean) => {
      const t: Bilingual = continued ? bi(`${b.caption.ja}（続き）`, `${b.caption.en} (continued)`) : b.caption;
      this.use(captionStyle);
      const jaW = this.doc.widthOfString(t.ja);
      const h = this.heightOf(t.ja, this.width, captionStyle);
      this.draw(t.ja, this.left, this.y, this.width, captionStyle);
      this.draw(t.en, this.left + jaW + 6, this.y + 1, this.width - jaW - 6, { size: 7.5 }, 'left', MUTED);
      this.y += h + 1;
    };
    const header = () => {
      this.doc.rect(this.left, this.y, this.width, headH).fill(HEAD_FILL);
      b.columns.forEach((c, i) => this.draw(c.label, (xs[i] ?? 0) + CELL_PAD_X, this.y + CELL_PAD_Y, inner(i), headStyle, c.align ?? 'left'));
      this.y += headH;
      this.hline(0.6);
    };

    this.ensure(8 + 14 + headH + 24);
    this.y += 6;
    caption(false);
    header();
    if (b.rows.length === 0) {
      const h = this.measure(b.empty, this.width, { size }) + 2 * CELL_PAD_Y;
      this.draw(b.empty, this.left, this.y + CELL_PAD_Y, this.width, { size }, 'center', MUTED);
      this.y += h;
      this.hline(0.5);
    }
    b.rows.forEach((row, r) => {
      const h = Math.max(...row.map((cell, i) => this.measure(cell, inner(i), { size }))) + 2 * CELL_PAD_Y;
      if (this.ensure(h)) {
        caption(true);
        header();
      }
      if (r % 2 === 1) this.doc.rect(this.left, this.y, this.width, h).fill(ZEBRA_FILL);
      row.forEach((cell, i) => {
        const c = b.columns[i];
        this.draw(cell, (xs[i] ?? 0) + CELL_PAD_X, this.y + CELL_PAD_Y, inner(i), { size }, c?.align ?? 'left');
      });
      this.y += h;
      this.hline(0.3);
    });
    this.y += 4;
  }

  statement(t: Bilingual): void {
    const pad = 9;
    const w = this.width - 2 * pad;
    const ja: Style = { size: 10 };
    const en: Style = { size: 9 };
    const hJa = this.doc.font(F_REGULAR).fontSize(ja.size).heightOfString(t.ja, { width: w, lineGap: 2 });
    const hEn = this.doc.font(F_REGULAR).fontSize(en.size).heightOfString(t.en, { width: w, lineGap: 1.5 });
    const h = hJa + 6 + hEn + 2 * pad;
    this.ensure(h + 6);
    this.y += 6;
    this.doc.roundedRect(this.left, this.y, this.width, h, 3).lineWidth(1.2).strokeColor(ACCENT).stroke();
    this.doc.font(F_REGULAR).fontSize(ja.size).fillColor(INK).text(t.ja, this.left + pad, this.y + pad, { width: w, lineGap: 2 });
    this.doc.font(F_REGULAR).fontSize(en.size).fillColor(MUTED).text(t.en, this.left + pad, this.y + pad + hJa + 6, { width: w, lineGap: 1.5 });
    this.y += h + 4;
  }

  note(t: Bilingual): void {
    const h = this.measure(t, this.width, { size: 8 });
    this.ensure(h + 10);
    this.y += 10;
    this.draw(t, this.left, this.y, this.width, { size: 8 }, 'left', MUTED);
    this.y += h;
  }

  private hline(width: number): void {
    this.doc.moveTo(this.left, this.y).lineTo(this.left + this.width, this.y).lineWidth(width).strokeColor(RULE).stroke();
  }

  /** Page numbers need the page count, so footers are drawn once everything else is laid out. */
  footers(): void {
    const range = this.doc.bufferedPageRange();
    for (let i = 0; i < range.count; i++) {
      this.doc.switchToPage(range.start + i);
      // Text below the bottom margin would otherwise make PDFKit open a new page.
      const saved = this.doc.page.margins.bottom;
      this.doc.page.margins.bottom = 0;
      const y = this.doc.page.height - MARGIN.bottom + 18;
      this.doc.moveTo(this.left, y - 4).lineTo(this.left + this.width, y - 4).lineWidth(0.4).strokeColor(RULE).stroke();
      this.doc.font(F_REGULAR).fontSize(7).fillColor(MUTED);
      this.doc.text(this.footer, this.left, y, { width: this.width * 0.8, lineBreak: false });
      this.doc.text(`${i + 1} / ${range.count}`, this.left + this.width * 0.8, y, { width: this.width * 0.2, align: 'right', lineBreak: false });
      this.doc.page.margins.bottom = saved;
    }
  }
}

/**
 * The same content as the HTML, as an A4 PDF with an embedded subset of Noto Sans JP. Every
 * table paginates row by row, repeating its header, so certificates with thousands of objects
 * stay within the page.
 */
export async function renderCertificatePdf(cert: DeletionCertificate, sha256: string): Promise<Buffer> {
  const issuedAt = new Date(cert.issuedAt);
  // The PDF's creation date is part of what it asserts; "now" in its place would be wrong.
  if (Number.isNaN(issuedAt.getTime())) throw new TypeError(`certificate ${cert.certificateId} has no valid issuedAt: ${JSON.stringify(cert.issuedAt)}`);
  const model = buildModel(cert, sha256);
  const { regular, bold } = fonts();

  const doc = new PDFDocument({
    size: 'A4',
    margins: MARGIN,
    bufferPages: true,
    pdfVersion: '1.7',
    lang: 'ja-JP',
    displayTitle: true,
    info: {
      Title: `${model.title.ja} / ${model.title.en} ${cert.certificateId}`,
      Author: cert.provider.name,
      Subject: `${cert.customer.code} ${cert.customer.name}`,
      Keywords: `sha256:${sha256}`,
      Creator: 'hokan',
      CreationDate: issuedAt,
      ModDate: issuedAt,
    },
  });
  const chunks: Uint8Array[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('data', (chunk: Uint8Array) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  doc.registerFont(F_REGULAR, regular);
  doc.registerFont(F_BOLD, bold);
  const layout = new PdfLayout(doc, `${model.title.ja} / ${model.title.en}  ${cert.certificateId}`);
  layout.title(model.title);
  for (const section of model.sections) {
    doc.outline.addItem(`${section.heading.ja} / ${section.heading.en}`);
    layout.heading(section.heading);
    for (const block of section.blocks) {
      switch (block.kind) {
        case 'fields':
          layout.fields(block.fields);
          break;
        case 'subheading':
          layout.subheading(block.text);
          break;
        case 'table':
          layout.table(block);
          break;
        case 'statement':
          layout.statement(block.text);
          break;
      }
    }
  }
  layout.note(model.note);
  layout.footers();
  doc.end();
  return done;
}
