import { escapeHtml, raw, type Html } from './html.js';

/**
 * A time-series line chart as inline SVG (no script), beside the bar charts of charts.ts: points
 * at their instants, gaps where a value is missing, red marks for failed checks, a text summary
 * for screen readers.
 */
export interface TimeSeries {
  name: string;
  color: string;
  points: Array<{ at: Date; value: number | null; bad?: boolean }>;
}

const W = 640;
const H = 200;
const PAD = { l: 48, r: 12, t: 12, b: 36 };

export function lineChart(series: TimeSeries[], opts: { from: Date; to: Date; unit: string; summary: string; max?: number; label: (d: Date) => string }): Html {
  const values = series.flatMap((s) => s.points.map((p) => p.value ?? 0));
  const max = opts.max ?? Math.max(1, ...values) * 1.1;
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const span = Math.max(1, opts.to.getTime() - opts.from.getTime());
  const x = (d: Date) => PAD.l + ((d.getTime() - opts.from.getTime()) / span) * iw;
  const y = (v: number) => PAD.t + ih - (Math.min(v, max) / max) * ih;
  let out = `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(opts.summary)}"><title>${escapeHtml(opts.summary)}</title>`;
  out += `<line x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}" stroke="#4a4a4a"/>`;
  for (const f of [0, 0.5, 1]) {
    const yy = PAD.t + ih - ih * f;
    const v = max * f;
    out += `<text x="${PAD.l - 6}" y="${yy + 4}" font-size="11" text-anchor="end" fill="#1a1a1a">${escapeHtml(`${v >= 10 ? Math.round(v) : v.toFixed(1)}${opts.unit}`)}</text>`;
    if (f > 0) out += `<line x1="${PAD.l}" y1="${yy}" x2="${W - PAD.r}" y2="${yy}" stroke="#c9ccd1" stroke-dasharray="3 3"/>`;
  }
  for (let i = 0; i <= 4; i++) {
    const d = new Date(opts.from.getTime() + (span * i) / 4);
    out += `<text x="${x(d).toFixed(1)}" y="${H - PAD.b + 16}" font-size="11" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}" fill="#1a1a1a">${escapeHtml(opts.label(d))}</text>`;
  }
  for (const s of series) {
    let path = '';
    let pen = false;
    for (const p of s.points) {
      if (p.value === null) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${x(p.at).toFixed(1)} ${y(p.value).toFixed(1)} `;
      pen = true;
    }
    if (path) out += `<path d="${path.trim()}" fill="none" stroke="${s.color}" stroke-width="2"/>`;
    for (const p of s.points.filter((q) => q.bad)) out += `<circle cx="${x(p.at).toFixed(1)}" cy="${(PAD.t + ih - 3).toFixed(1)}" r="3" fill="#b00020"/>`;
  }
  series.forEach((s, k) => {
    const lx = PAD.l + k * 150;
    out += `<rect x="${lx}" y="${H - 14}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${H - 5}" font-size="11" fill="#1a1a1a">${escapeHtml(s.name)}</text>`;
  });
  return raw(`${out}</svg>`);
}
