import { escapeHtml, raw, type Html } from './html.js';

/**
 * Inline SVG charts (no script): trends are drawn, with a text summary for screen readers and a
 * table behind a <details> for whoever wants the figures.
 */
export interface Series {
  name: string;
  color: string;
  values: number[];
}

const W = 640;
const H = 220;
const PAD = { l: 44, r: 12, t: 12, b: 40 };

/** Stacked daily bars: one bar per label, one segment per series. */
export function stackedBars(labels: string[], series: Series[], summary: string): Html {
  const totals = labels.map((_, i) => series.reduce((s, x) => s + (x.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const bw = labels.length ? iw / labels.length : iw;
  let out = `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(summary)}"><title>${escapeHtml(summary)}</title>`;
  out += `<line x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#4a4a4a"/>`;
  for (const f of [0, 0.5, 1]) {
    const y = PAD.t + ih - ih * f;
    out += `<text x="${PAD.l - 6}" y="${y + 4}" font-size="11" text-anchor="end" fill="#1a1a1a">${Math.round(max * f)}</text>`;
    if (f > 0) out += `<line x1="${PAD.l}" y1="${y}" x2="${W - PAD.r}" y2="${y}" stroke="#c9ccd1" stroke-dasharray="3 3"/>`;
  }
  labels.forEach((label, i) => {
    let y = PAD.t + ih;
    const x = PAD.l + i * bw + bw * 0.1;
    for (const s of series) {
      const v = s.values[i] ?? 0;
      if (v <= 0) continue;
      const h = (v / max) * ih;
      y -= h;
      out += `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bw * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${escapeHtml(`${label} ${s.name}: ${v}`)}</title></rect>`;
    }
    const every = Math.ceil(labels.length / 8);
    if (i % every === 0) out += `<text x="${(x + bw * 0.4).toFixed(1)}" y="${H - PAD.b + 16}" font-size="11" text-anchor="middle" fill="#1a1a1a">${escapeHtml(label.slice(5))}</text>`;
  });
  series.forEach((s, k) => {
    const x = PAD.l + k * 150;
    out += `<rect x="${x}" y="${H - 14}" width="10" height="10" fill="${s.color}"/><text x="${x + 14}" y="${H - 5}" font-size="11" fill="#1a1a1a">${escapeHtml(s.name)}</text>`;
  });
  return raw(`${out}</svg>`);
}

/** Horizontal bars for a breakdown (class → count). */
export function horizontalBars(rows: Array<{ label: string; value: number }>, summary: string, color = '#0b57d0'): Html {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const rowH = 24;
  const h = rows.length * rowH + 8;
  const labelW = 200;
  const iw = W - labelW - 60;
  let out = `<svg class="chart" viewBox="0 0 ${W} ${h}" role="img" aria-label="${escapeHtml(summary)}"><title>${escapeHtml(summary)}</title>`;
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const w = (r.value / max) * iw;
    out += `<text x="${labelW - 6}" y="${y + 15}" font-size="12" text-anchor="end" fill="#1a1a1a">${escapeHtml(r.label)}</text>`;
    out += `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`;
    out += `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" font-size="12" fill="#1a1a1a">${r.value}</text>`;
  });
  return raw(`${out}</svg>`);
}
