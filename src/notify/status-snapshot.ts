import type { Clock } from '../core/clock.js';
import type { DbOrTx } from '../core/db/database.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { addDays, japanDateOf, startOfJapanDay } from '../core/japan-time.js';
import { listIncidents } from '../incidents/incidents.js';
import { listStops, reasonLabel, stopState } from '../incidents/stops.js';
import { incidentComponentMap, listComponents, stopComponentMap, type StatusComponentDef } from './components.js';
import { incidentPosts } from './notices.js';

/**
 * The public status page's data (contract in docs: shared with the web helper). Public data only
 * (R9.2): component names, incident titles and posts, stop reasons and times — never customer
 * names or ids, nor the data center's location, hosts or addresses.
 *
 * An incident is public once its first notice is posted; the availability bars count every
 * incident linked to a component (and an incident linked to none counts for every component),
 * from its occurrence to its recovery (or now), per Japan day. Planned stops are maintenance:
 * counted apart, not as downtime. Emergency stops linked to a component count as outage.
 */

export type ComponentStatus = 'operational' | 'degraded' | 'outage' | 'maintenance';
export interface StatusPost { id: string; stage: 'first' | 'update' | 'recovery' | 'report'; label: Bilingual /* 第一報 / 第二報 … / 最終報 (復旧報) / 障害報告 */; postedAt: string /* ISO */; subject: Bilingual; body: Bilingual }
export interface StatusIncident { id: string; title: string; severity: 'critical' | 'major' | 'minor'; components: string[] /* component keys */; occurredAt: string; recoveredAt: string | null; posts: StatusPost[] /* oldest first */ }
export interface StatusStop { id: string; kind: 'planned' | 'emergency'; reason: Bilingual; startsAt: string; endsAt: string | null; components: string[] }
export interface StatusComponent { key: string; name: Bilingual; status: ComponentStatus; days: Array<{ date: string /* YYYY-MM-DD, Japan */; availabilityPct: number | null /* null: no data */; worst: 'none' | 'minor' | 'major' | 'critical' | 'maintenance' }> /* 90 entries, oldest first */ }
export interface StatusSnapshot { generatedAt: string; overall: ComponentStatus; components: StatusComponent[]; activeIncidents: StatusIncident[]; activeStops: StatusStop[]; upcomingStops: StatusStop[]; history: StatusIncident[] /* resolved in the last 90 days, newest first */ }

const DAYS = 90;
const DAY_MS = 86_400_000;
type Worst = StatusComponent['days'][number]['worst'];
const RANK: Record<Worst, number> = { none: 0, maintenance: 1, minor: 2, major: 3, critical: 4 };
const STATUS_RANK: Record<ComponentStatus, number> = { operational: 0, maintenance: 1, degraded: 2, outage: 3 };

type Interval = [number, number];

/** Total length of the union of intervals, clipped to [from, to). */
function covered(intervals: readonly Interval[], from: number, to: number): number {
  const clipped = intervals.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as Interval).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curA = -Infinity;
  let curB = -Infinity;
  for (const [a, b] of clipped) {
    if (a > curB) {
      if (curB > curA) total += curB - curA;
      curA = a;
      curB = b;
    } else curB = Math.max(curB, b);
  }
  if (curB > curA) total += curB - curA;
  return total;
}

/** Length of `down` outside `maintenance`, within [from, to). */
function downOutside(down: readonly Interval[], maintenance: readonly Interval[], from: number, to: number): number {
  return covered([...down, ...maintenance], from, to) - covered(maintenance, from, to);
}

export async function statusSnapshot(db: DbOrTx, clock: Clock): Promise<StatusSnapshot> {
  const now = clock.now();
  const t = now.getTime();
  const registered = await listComponents(db);
  // Before an operator has named any component, the page still shows the service as one whole.
  const components: StatusComponentDef[] = registered.length > 0 ? registered : [{ key: 'service', name: bi('サービス', 'Service'), position: 0, createdAt: new Date(0).toISOString() }];
  const incidents = await listIncidents(db, clock);
  const stops = (await listStops(db)).filter((s) => !s.cancelledAt);
  const incComp = await incidentComponentMap(db, incidents.map((i) => i.id));
  const stopComp = await stopComponentMap(db, stops.map((s) => s.id));
  const posts = await incidentPosts(db, incidents.map((i) => i.id));

  const toIncident = (i: (typeof incidents)[number]): StatusIncident => ({
    id: i.id,
    title: i.title,
    severity: i.severity,
    components: incComp.get(i.id) ?? [],
    occurredAt: i.times.occurred,
    recoveredAt: i.times.recovered,
    posts: (posts.get(i.id) ?? [])
      .filter((p) => p.stage === 'first' || p.stage === 'update' || p.stage === 'recovery' || p.stage === 'report')
      .map((p) => ({ id: p.id, stage: p.stage as StatusPost['stage'], label: p.label, postedAt: p.postedAt, subject: p.subject, body: p.body })),
  });
  const toStop = (s: (typeof stops)[number]): StatusStop => ({
    id: s.id,
    kind: s.kind,
    reason: reasonLabel(s.kind, s.reason),
    startsAt: s.startsAt.toISOString(),
    endsAt: (s.endedAt ?? s.endsAt)?.toISOString() ?? null,
    components: stopComp.get(s.id) ?? [],
  });

  const publicIncidents = incidents.filter((i) => (posts.get(i.id) ?? []).length > 0);
  const activeIncidents = publicIncidents.filter((i) => !i.times.recovered).map(toIncident);
  const horizon = t - DAYS * DAY_MS;
  const history = publicIncidents
    .filter((i) => i.times.recovered && new Date(i.times.recovered).getTime() >= horizon)
    .sort((a, b) => new Date(b.times.occurred).getTime() - new Date(a.times.occurred).getTime())
    .map(toIncident);
  const activeStops = stops.filter((s) => stopState(s, now) === 'in_progress').map(toStop);
  const upcomingStops = stops
    .filter((s) => stopState(s, now) === 'scheduled')
    .sort((a, b) => a.startsAt.getTime() - b.startsAt.getTime())
    .map(toStop);

  const affects = (keys: string[] | undefined, key: string) => !keys || keys.length === 0 || keys.includes(key);
  const publicIds = new Set(publicIncidents.map((i) => i.id));
  // Linked incidents count for their components; an unlinked one for every component once it is public.
  const incidentAffects = (id: string, key: string) => {
    const keys = incComp.get(id);
    return keys && keys.length ? keys.includes(key) : publicIds.has(id);
  };
  // An emergency stop linked to components counts for those. An unlinked one counts for every
  // component, as an unlinked planned stop does: the console's form links none, and a stop of the
  // whole service must not leave the page saying all is well. One that stops only some customers
  // degrades the components without counting as downtime, and the page does not say whose.
  const emergencyEffect = (s: (typeof stops)[number], key: string): 'outage' | 'degraded' | null => {
    const keys = stopComp.get(s.id);
    if (keys && keys.length > 0) return keys.includes(key) ? 'outage' : null;
    return s.customerIds === null ? 'outage' : 'degraded';
  };
  const today = japanDateOf(now);
  const firstDay = addDays(today, -(DAYS - 1));

  const out: StatusComponent[] = components.map((c) => {
    const incs = incidents.filter((i) => incidentAffects(i.id, c.key));
    const down: Array<Interval & { sev: Worst }> = incs.map((i) => Object.assign([new Date(i.times.occurred).getTime(), i.times.recovered ? new Date(i.times.recovered).getTime() : t] as Interval, { sev: i.severity as Worst }));
    for (const s of stops.filter((x) => x.kind === 'emergency' && x.startsAt.getTime() < t && emergencyEffect(x, c.key) === 'outage')) {
      down.push(Object.assign([s.startsAt.getTime(), (s.endedAt ?? s.endsAt)?.getTime() ?? t] as Interval, { sev: 'critical' as Worst }));
    }
    const maintenance: Interval[] = stops
      .filter((x) => x.kind === 'planned' && affects(stopComp.get(x.id), c.key) && x.startsAt.getTime() < t)
      .map((s) => [s.startsAt.getTime(), Math.min((s.endedAt ?? s.endsAt)?.getTime() ?? t, t)] as Interval);
    const createdDay = japanDateOf(new Date(c.createdAt));
    const days: StatusComponent['days'] = [];
    for (let d = 0; d < DAYS; d++) {
      const date = addDays(firstDay, d);
      const from = startOfJapanDay(date).getTime();
      const to = Math.min(from + DAY_MS, t);
      if (date < createdDay || to <= from) {
        days.push({ date, availabilityPct: null, worst: 'none' });
        continue;
      }
      const maint = covered(maintenance, from, to);
      const span = to - from - maint;
      const lost = downOutside(down, maintenance, from, to);
      let worst: Worst = maint > 0 ? 'maintenance' : 'none';
      for (const iv of down) if (iv[0] < to && iv[1] > from && RANK[iv.sev] > RANK[worst]) worst = iv.sev;
      const pct = span > 0 ? Math.round((1 - lost / span) * 100_000) / 1000 : 100;
      days.push({ date, availabilityPct: Math.max(0, pct), worst });
    }
    let status: ComponentStatus = 'operational';
    const raise = (s: ComponentStatus) => {
      if (STATUS_RANK[s] > STATUS_RANK[status]) status = s;
    };
    for (const i of incs.filter((x) => !x.times.recovered)) raise(i.severity === 'critical' ? 'outage' : 'degraded');
    for (const s of stops.filter((x) => stopState(x, now) === 'in_progress')) {
      const keys = stopComp.get(s.id);
      const effect = s.kind === 'emergency' ? emergencyEffect(s, c.key) : null;
      if (effect) raise(effect);
      if (s.kind === 'planned' && affects(keys, c.key)) raise('maintenance');
    }
    return { key: c.key, name: c.name, status, days };
  });
  // An announced (public) incident raises the overall state even where no component is defined or linked.
  const announced = activeIncidents.reduce<ComponentStatus>((w, i) => {
    const s: ComponentStatus = i.severity === 'critical' ? 'outage' : 'degraded';
    return STATUS_RANK[s] > STATUS_RANK[w] ? s : w;
  }, 'operational');
  const overall = out.reduce<ComponentStatus>((w, c) => (STATUS_RANK[c.status] > STATUS_RANK[w] ? c.status : w), announced);
  return { generatedAt: now.toISOString(), overall, components: out, activeIncidents, activeStops, upcomingStops, history };
}
