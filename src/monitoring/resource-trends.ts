import type { DbOrTx } from '../core/db/database.js';
import { japanDateOf, startOfJapanDay } from '../core/japan-time.js';
import type { ResourceSeries, ResourceTrendProvider } from '../incidents/statistics.js';
import { listHosts } from './hardware-hosts.js';
import type { SampleMetric } from './hardware-metrics.js';
import { querySeries } from './hardware-samples.js';

const TRENDS: Array<{ metric: SampleMetric; name: string; unit: string; peak: boolean }> = [
  { metric: 'cpu_percent', name: 'CPU', unit: '%', peak: false },
  { metric: 'memory_percent', name: 'メモリ / memory', unit: '%', peak: false },
  { metric: 'disk_percent', name: 'ディスク使用率（最大） / disk use (max)', unit: '%', peak: true },
];

/**
 * R12.4: resource trends for the monthly report, one point per Japan day and host (daily mean, or
 * the daily peak for disk use). The hosts are the provider's shared infrastructure, so every
 * customer's report shows the same series; nothing in them is customer data.
 */
export function hardwareResourceTrends(db: DbOrTx): ResourceTrendProvider {
  return async ({ start, end }) => {
    const out: ResourceSeries[] = [];
    for (const host of await listHosts(db)) {
      for (const t of TRENDS) {
        const { points } = await querySeries(db, host.id, t.metric, start, end);
        if (points.length === 0) continue;
        const byDay = new Map<string, { sum: number; n: number; max: number }>();
        for (const p of points) {
          const day = japanDateOf(new Date(p.at));
          const d = byDay.get(day) ?? { sum: 0, n: 0, max: Number.NEGATIVE_INFINITY };
          d.sum += p.value * p.samples;
          d.n += p.samples;
          d.max = Math.max(d.max, p.max);
          byDay.set(day, d);
        }
        out.push({
          name: `${host.name}: ${t.name}`,
          unit: t.unit,
          points: [...byDay].sort(([a], [b]) => a.localeCompare(b)).map(([day, d]) => ({ at: startOfJapanDay(day).toISOString(), value: Math.round((t.peak ? d.max : d.sum / Math.max(1, d.n)) * 10) / 10 })),
        });
      }
    }
    return out;
  };
}
