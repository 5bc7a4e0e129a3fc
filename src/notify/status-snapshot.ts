import type { Clock } from '../core/clock.js';
import type { DbOrTx } from '../core/db/database.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { addDays, japanDateOf, startOfJapanDay } from '../core/japan-time.js';
import { listIncidents, type IncidentView } from '../incidents/incidents.js';
import { listStops, reasonLabel, stopState, type StopRecord } from '../incidents/stops.js';

/*
 * The status page's data (contract shared with the notices work, see decision 0022). This version
 * is computed from incidents and stops only: one component, no posts. The notices helper's version
 * (components from monitoring, posts from the incident notices) replaces it; the renderer depends
 * only on these types. Public data only (R9.2): no customer names or ids, no location, no hosts.
 */

export type ComponentStatus = 'operational' | 'degraded' | 'outage' | 'maintenance';
export interface StatusPost { id: string; stage: 'first' | 'update' | 'recovery' | 'report'; label: Bilingual /* 第一報 / 第二報 … / 最終報 (復旧報) / 障害報告 */; postedAt: string /* ISO */; subject: Bilingual; body: Bilingual }
export interface StatusIncident { id: string; title: string; severity: 'critical' | 'major' | 'minor'; components: string[] /* component keys */; occurredAt: string; recoveredAt: string | null; posts: StatusPost[] /* oldest first */ }
export interface StatusStop { id: string; kind: 'planned' | 'emergency'; reason: Bilingual; startsAt: string; endsAt: string | null; components: string[] }
export interface StatusComponent { key: string; name: Bilingual; status: ComponentStatus; days: Array<{ date: string /* YYYY-MM-DD, Japan */; availabilityPct: number | null /* null: no data */; worst: 'none' | 'minor' | 'major' | 'critical' | 'maintenance' }> /* 90 entries, oldest first */ }
export interface StatusSnapshot { generatedAt: string; overall: ComponentStatus; components: StatusComponent[]; activeIncidents: StatusIncident[]; activeStops: StatusStop[]; upcomingStops: StatusStop[]; history: StatusIncident[] /* resolved in the last 90 days, newest first */ }

const SERVICE = { key: 'service', name: bi('サービス', 'Service') };
const DAYS = 90;
const DAY_MS = 86_400_000;
const SEVERITY_RANK = { none: 0, maintenance: 1, minor: 2, major: 3, critical: 4 } as const;

const toIncident = (i: IncidentView): StatusIncident => ({
  id: i.id,
  title: i.title,
  severity: i.severity,
  components: [SERVICE.key],
  occurredAt: i.times.occurred,
  recoveredAt: i.times.recovered,
  posts: [],
});

const toStop = (s: StopRecord): StatusStop => ({
  id: s.id,
  kind: s.kind,
  // The reason's label (①–④ / ①–⑥), not the operator's free text, which may name internals (R9.2).
  reason: reasonLabel(s.kind, s.reason),
  startsAt: s.startsAt.toISOString(),
  endsAt: s.endsAt?.toISOString() ?? null,
  components: [SERVICE.key],
});

/** Total length of the union of intervals clipped to [from, to). */
function coveredMs(intervals: Array<[number, number]>, from: number, to: number): number {
  const clipped = intervals.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as [number, number]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of clipped) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

export async function statusSnapshot(db: DbOrTx, clock: Clock): Promise<StatusSnapshot> {
  const now = clock.now();
  const nowMs = now.getTime();
  const today = japanDateOf(now);
  const firstDay = addDays(today, -(DAYS - 1));
  const windowStart = startOfJapanDay(firstDay).getTime();

  const incidents = await listIncidents(db, clock);
  // A stop for chosen customers is between them and the provider; the public page shows service-wide ones.
  const stops = (await listStops(db)).filter((s) => s.customerIds === null && !s.cancelledAt);

  const active = incidents.filter((i) => i.times.recovered === null);
  const activeStops = stops.filter((s) => stopState(s, now) === 'in_progress');
  const upcoming = stops.filter((s) => s.kind === 'planned' && stopState(s, now) === 'scheduled').sort((a, b) => a.startsAt.getTime() - b.startsAt.getTime());
  const history = incidents.filter((i) => i.times.recovered !== null && new Date(i.times.recovered).getTime() >= windowStart);

  let status: ComponentStatus = 'operational';
  if (activeStops.some((s) => s.kind === 'emergency') || active.some((i) => i.severity === 'critical')) status = 'outage';
  else if (active.length) status = 'degraded';
  else if (activeStops.length) status = 'maintenance';

  const stopEnd = (s: StopRecord) => (s.endedAt ?? s.endsAt ?? now).getTime();
  // Unavailable: critical incidents and emergency stops. Planned stops are announced maintenance, not outage.
  const down: Array<[number, number]> = [
    ...incidents.filter((i) => i.severity === 'critical').map((i) => [new Date(i.times.occurred).getTime(), i.times.recovered ? new Date(i.times.recovered).getTime() : nowMs] as [number, number]),
    ...stops.filter((s) => s.kind === 'emergency').map((s) => [s.startsAt.getTime(), Math.min(stopEnd(s), nowMs)] as [number, number]),
  ];
  const days: StatusComponent['days'] = [];
  for (let k = 0; k < DAYS; k++) {
    const date = addDays(firstDay, k);
    const from = startOfJapanDay(date).getTime();
    const to = Math.min(from + DAY_MS, nowMs);
    let worst: StatusComponent['days'][number]['worst'] = 'none';
    const raise = (w: typeof worst) => {
      if (SEVERITY_RANK[w] > SEVERITY_RANK[worst]) worst = w;
    };
    for (const i of incidents) {
      const a = new Date(i.times.occurred).getTime();
      const b = i.times.recovered ? new Date(i.times.recovered).getTime() : nowMs;
      if (a < to && b >= from) raise(i.severity);
    }
    for (const s of stops) {
      if (s.startsAt.getTime() < to && stopEnd(s) >= from && s.startsAt.getTime() <= nowMs) raise(s.kind === 'planned' ? 'maintenance' : 'critical');
    }
    const span = to - from;
    const pct = span <= 0 ? null : Math.round((1 - coveredMs(down, from, to) / span) * 10000) / 100;
    days.push({ date, availabilityPct: pct, worst });
  }

  return {
    generatedAt: now.toISOString(),
    overall: status,
    components: [{ key: SERVICE.key, name: SERVICE.name, status, days }],
    activeIncidents: active.map(toIncident),
    activeStops: activeStops.map(toStop),
    upcomingStops: upcoming.map(toStop),
    history: history.map(toIncident),
  };
}
