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
  // No-break spaces keep "240,000 B" and "(234.4 KiB)" whole when a narrow cell wraps.
  const exact = `${NUMBER.format(n)}\u00a0B`;
  if (!(n >= 1024)) return exact;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < IEC_UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${exact} (${v.toFixed(v < 10 ? 2 : 1)}\u00a0${IEC_UNITS[i]})`;
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
          { label: bi('保存先', 'Target'), share: 0.11 },
          { label: bi('場所', 'Location'), share: 0.22, mono: true },
          { label: bi('オブジェクト数', 'Objects'), share: 0.13, align: 'right' },
          { label: bi('合計サイズ', 'Total size'), share: 0.15, align: 'right' },
          { label: bi('状態', 'State'), share: 0.39 },
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
/* Break at spaces and slashes first; mid-run only for hashes that have no other break. */
.mono { font-size: .85em; overflow-wrap: anywhere; }
dl.fields { margin: 0; display: grid; grid-template-columns: minmax(9em, 14em) 1fr; border-top: 1px solid #d5dae0; }
dl.fields > div { display: contents; }
dl.fields dt, dl.fields dd { margin: 0; padding: .3em .5em; border-bottom: 1px solid #d5dae0; break-inside: avoid; }
dl.fields dt { background: #f3f5f8; font-weight: bold; font-size: .92em; }
table.data { width: 100%; table-layout: fixed; border-collapse: collapse; margin: .6em 0 .2em; font-size: .9em; }
/* Short tables move to the next page whole rather than leave their caption behind. */
table.data:not(.compact) { break-inside: avoid; page-break-inside: avoid; }
table.data caption { caption-side: top; text-align: left; font-weight: bold; font-size: .92em; padding: .2em 0; }
table.data caption .en { display: inline; margin-left: .5em; font-weight: normal; }
table.data th, table.data td { border: 1px solid #d5dae0; padding: .25em .45em; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
/* One size per row, so top-aligned cells stay level. */
table.data td.mono { font-size: 1em; }
table.data th { background: #e8edf3; font-size: .88em; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; }
table.data td.empty { color: #58606a; text-align: center; }
table.data tbody tr:nth-child(even) td { background: #f8f9fb; }
table.compact { font-size: 7.5pt; line-height: 1.35; }
table.compact th, table.compact td { padding: .1em .35em; }
/* Sized so a 64-digit hash and a UUID each keep to one line on A4 in common monospace fonts. */
table.compact td, table.compact td.mono { font-size: .88em; }
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
const PAD_X = 4;
const FIELD_LABEL_WIDTH = 150;

interface Style {
  size: number;
  bold?: boolean;
}

type Doc = PDFKit.PDFDocument;
type Align = 'left' | 'right' | 'center';

/**
 * A small flow layout over PDFKit: every block is measured before it is drawn, and a new page
 * is started by us, never by PDFKit's own overflow handling, so nothing is drawn past the
 * bottom margin and table headers can be repeated.
 */
class PdfLayout {
  y = MARGIN.top;

  constructor(
    private readonly doc: Doc,
    private readonly footer: string,
  ) {}

  private get left(): number {
    return MARGIN.left;
  }

  private get width(): number {
    return this.doc.page.width - MARGIN.left - MARGIN.right;
  }

  private get bottom(): number {
    return this.doc.page.height - MARGIN.bottom;
  }

  private get pageContentHeight(): number {
    return this.bottom - MARGIN.top;
  }

  /** Starts a new page unless `h` more points fit; true when it did. */
  private ensure(h: number): boolean {
    if (this.y + h <= this.bottom) return false;
    this.doc.addPage();
    this.y = MARGIN.top;
    return true;
  }

  private use(style: Style): void {
    this.doc.font(style.bold ? F_BOLD : F_REGULAR).fontSize(style.size);
  }

  private heightOf(s: string, width: number, style: Style): number {
    this.use(style);
    // Most cells are one short line; measuring the width first skips the line wrapper for them.
    if (this.doc.widthOfString(s) <= width) return this.doc.currentLineHeight(true);
    return this.doc.heightOfString(s, { width });
  }

  private widthOf(s: string, style: Style): number {
    this.use(style);
    return this.doc.widthOfString(s);
  }

  private measure(t: Text, width: number, style: Style): number {
    if (typeof t === 'string') return this.heightOf(t, width, style);
    if (t.ja === t.en) return this.heightOf(t.ja, width, style);
    return this.heightOf(t.ja, width, style) + this.heightOf(t.en, width, { ...style, size: style.size * EN_SCALE, bold: false });
  }

  /** Draws at (x, y) without moving the flow; returns the height used, as `measure` predicts. */
  private draw(t: Text, x: number, y: number, width: number, style: Style, align: Align = 'left', color = INK): number {
    const line = (s: string, at: number, st: Style, c: string) => {
      const h = this.heightOf(s, width, st);
      this.use(st);
      this.doc.fillColor(c).text(s, x, at, { width, align });
      return h;
    };
    if (typeof t === 'string' || t.ja === t.en) return line(typeof t === 'string' ? t : t.ja, y, style, color);
    const h = line(t.ja, y, style, color);
    return h + line(t.en, y + h, { ...style, size: style.size * EN_SCALE, bold: false }, MUTED);
  }

  /** Japanese, then the English smaller on the same line: the form of every heading. */
  private inlinePair(t: Bilingual, ja: Style, enSize: number, color: string): number {
    const jaW = this.widthOf(t.ja, ja);
    const h = this.draw(t.ja, this.left, this.y, this.width, ja, 'left', color);
    if (t.en !== t.ja) this.draw(t.en, this.left + jaW + 7, this.y + (ja.size - enSize) * 0.75, this.width - jaW - 7, { size: enSize }, 'left', MUTED);
    return h;
  }

  private rule(y: number, width: number, color = RULE): void {
    this.doc.moveTo(this.left, y).lineTo(this.left + this.width, y).lineWidth(width).strokeColor(color).stroke();
  }

  title(t: Bilingual): void {
    this.y += this.draw(t.ja, this.left, this.y, this.width, { size: 20, bold: true }, 'center', ACCENT);
    this.y += this.draw(t.en, this.left, this.y, this.width, { size: 11 }, 'center', MUTED) + 6;
    this.rule(this.y, 0.8, ACCENT);
    this.rule(this.y + 2.2, 0.8, ACCENT);
    this.y += 10;
  }

  heading(t: Bilingual): void {
    const style: Style = { size: 12, bold: true };
    const h = this.heightOf(t.ja, this.width, style);
    // Never leave a heading alone at the foot of a page.
    this.ensure(14 + h + 60);
    this.y += 14;
    this.y += this.inlinePair(t, style, 9.5, ACCENT) + 1;
    this.rule(this.y, 1.1, ACCENT);
    this.y += 5;
  }

  // ── blocks: each measured with the same arithmetic that draws it ──

  private fieldHeight(f: Field): number {
    const valueStyle = this.fieldValueStyle(f);
    const label = this.measure(f.label, FIELD_LABEL_WIDTH - 2 * PAD_X, { size: 8.5, bold: true });
    const value = this.measure(f.value, this.width - FIELD_LABEL_WIDTH - 2 * PAD_X, valueStyle);
    return Math.max(label, value) + 2 * 2.5 + 1;
  }

  private fieldValueStyle(f: Field): Style {
    // Identifiers and hashes are long unbroken runs; a smaller size keeps them on one line.
    return { size: f.mono ? 8.5 : 9.5 };
  }

  private fieldsHeight(fields: Field[]): number {
    return fields.reduce((n, f) => n + this.fieldHeight(f), 0) + 4;
  }

  private fields(fields: Field[]): void {
    for (const f of fields) {
      const h = this.fieldHeight(f);
      this.ensure(h);
      this.doc.rect(this.left, this.y, FIELD_LABEL_WIDTH, h).fill(LABEL_FILL);
      this.draw(f.label, this.left + PAD_X, this.y + 2.5, FIELD_LABEL_WIDTH - 2 * PAD_X, { size: 8.5, bold: true });
      this.draw(f.value, this.left + FIELD_LABEL_WIDTH + PAD_X, this.y + 2.5, this.width - FIELD_LABEL_WIDTH - 2 * PAD_X, this.fieldValueStyle(f));
      this.y += h;
      this.rule(this.y, 0.5);
    }
    this.y += 4;
  }

  private tableMetrics(b: Table) {
    const size = b.compact ? 6.8 : 8.5;
    const padY = b.compact ? 1.2 : 2.5;
    const head: Style = { size: b.compact ? 7 : 8, bold: true };
    const widths = b.columns.map((c) => c.share * this.width);
    const xs = widths.map((_, i) => this.left + widths.slice(0, i).reduce((a, w) => a + w, 0));
    const inner = widths.map((w) => w - 2 * PAD_X);
    const headH = Math.max(...b.columns.map((c, i) => this.measure(c.label, inner[i] ?? 0, head))) + 2 * 2.5;
    const rowH = (row: Text[]) => Math.max(...row.map((cell, i) => this.measure(cell, inner[i] ?? 0, { size }))) + 2 * padY;
    const emptyH = this.measure(b.empty, this.width, { size }) + 2 * padY;
    return { size, padY, head, xs, inner, headH, rowH, emptyH };
  }

  private captionHeight(): number {
    return this.heightOf('表', this.width, { size: 8.5, bold: true }) + 1;
  }

  private tableHeight(b: Table, m = this.tableMetrics(b), rowHeights = b.rows.map(m.rowH)): number {
    const body = b.rows.length === 0 ? m.emptyH : rowHeights.reduce((n, h) => n + h, 0);
    return 6 + (b.showCaption === false ? 0 : this.captionHeight()) + m.headH + body + 4;
  }

  private table(b: Table): void {
    const m = this.tableMetrics(b);
    const heights = b.rows.map(m.rowH);
    const showCaption = b.showCaption !== false;
    const caption = (continued: boolean) => {
      const t = continued ? bi(`${b.caption.ja}（続き）`, `${b.caption.en} (continued)`) : b.caption;
      this.inlinePair(t, { size: 8.5, bold: true }, 7.5, INK);
      this.y += this.captionHeight();
    };
    const header = () => {
      this.doc.rect(this.left, this.y, this.width, m.headH).fill(HEAD_FILL);
      b.columns.forEach((c, i) => this.draw(c.label, (m.xs[i] ?? 0) + PAD_X, this.y + 2.5, m.inner[i] ?? 0, m.head, c.align ?? 'left'));
      this.y += m.headH;
      this.rule(this.y, 0.6);
    };

    // A short table is not worth splitting; a long one starts with at least a few rows under its header.
    const whole = this.tableHeight(b, m, heights);
    const start = 6 + (showCaption ? this.captionHeight() : 0) + m.headH;
    const firstRows = b.rows.length === 0 ? m.emptyH : heights.slice(0, 3).reduce((n, h) => n + h, 0);
    this.ensure(whole <= this.pageContentHeight / 3 ? whole : start + firstRows);
    this.y += 6;
    if (showCaption) caption(false);
    header();
    if (b.rows.length === 0) {
      this.draw(b.empty, this.left, this.y + m.padY, this.width, { size: m.size }, 'center', MUTED);
      this.y += m.emptyH;
      this.rule(this.y, 0.4);
    }
    b.rows.forEach((row, r) => {
      const h = heights[r] ?? 0;
      if (this.ensure(h)) {
        caption(true);
        header();
      }
      if (r % 2 === 1) this.doc.rect(this.left, this.y, this.width, h).fill(ZEBRA_FILL);
      row.forEach((cell, i) => this.draw(cell, (m.xs[i] ?? 0) + PAD_X, this.y + m.padY, m.inner[i] ?? 0, { size: m.size }, b.columns[i]?.align ?? 'left'));
      this.y += h;
      this.rule(this.y, 0.3);
    });
    this.y += 4;
  }

  private subheadingHeight(t: Bilingual): number {
    return 8 + this.heightOf(t.ja, this.width, { size: 10, bold: true }) + 3;
  }

  private group(g: Extract<Block, { kind: 'group' }>): void {
    const total = this.subheadingHeight(g.heading) + g.blocks.reduce((n, b) => n + this.blockHeight(b), 0);
    // A group taller than a page starts on a fresh page and then flows.
    this.ensure(Math.min(total, this.pageContentHeight));
    this.y += 8;
    this.inlinePair(g.heading, { size: 10, bold: true }, 8.5, INK);
    this.y += this.subheadingHeight(g.heading) - 8;
    for (const b of g.blocks) this.block(b);
  }

  private statementMetrics(t: Bilingual) {
    const pad = 9;
    const w = this.width - 2 * pad;
    this.use({ size: 10 });
    const hJa = this.doc.heightOfString(t.ja, { width: w, lineGap: 2 });
    this.use({ size: 9 });
    const hEn = this.doc.heightOfString(t.en, { width: w, lineGap: 1.5 });
    return { pad, w, hJa, hEn, h: hJa + 6 + hEn + 2 * pad };
  }

  private statement(t: Bilingual): void {
    const m = this.statementMetrics(t);
    this.ensure(m.h + 6);
    this.y += 6;
    this.doc.roundedRect(this.left, this.y, this.width, m.h, 3).lineWidth(1.2).strokeColor(ACCENT).stroke();
    this.use({ size: 10 });
    this.doc.fillColor(INK).text(t.ja, this.left + m.pad, this.y + m.pad, { width: m.w, lineGap: 2 });
    this.use({ size: 9 });
    this.doc.fillColor(MUTED).text(t.en, this.left + m.pad, this.y + m.pad + m.hJa + 6, { width: m.w, lineGap: 1.5 });
    this.y += m.h + 4;
  }

  private blockHeight(b: Block): number {
    switch (b.kind) {
      case 'fields':
        return this.fieldsHeight(b.fields);
      case 'table':
        return this.tableHeight(b);
      case 'group':
        return this.subheadingHeight(b.heading) + b.blocks.reduce((n, x) => n + this.blockHeight(x), 0);
      case 'statement':
        return this.statementMetrics(b.text).h + 10;
    }
  }

  block(b: Block): void {
    switch (b.kind) {
      case 'fields':
        return this.fields(b.fields);
      case 'table':
        return this.table(b);
      case 'group':
        return this.group(b);
      case 'statement':
        return this.statement(b.text);
    }
  }

  note(t: Bilingual): void {
    const h = this.measure(t, this.width, { size: 8 });
    this.ensure(10 + h);
    this.y += 10;
    this.y += this.draw(t, this.left, this.y, this.width, { size: 8 }, 'left', MUTED);
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
      this.rule(y - 4, 0.4);
      this.use({ size: 7 });
      this.doc.fillColor(MUTED);
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
    layout.heading(section.heading);
    // After the heading, which may have started a new page: a bookmark points at the current page.
    doc.outline.addItem(`${section.heading.ja} / ${section.heading.en}`);
    for (const block of section.blocks) layout.block(block);
  }
  layout.note(model.note);
  layout.footers();
  doc.end();
  return done;
}
