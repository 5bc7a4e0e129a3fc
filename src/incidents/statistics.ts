import type { Selectable } from 'kysely';
import { listCustomers, getCustomer, type CustomerView } from '../contracts/customers.js';
import type { Clock } from '../core/clock.js';
import type { DbOrTx } from '../core/db/database.js';
import type { IncidentsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import type { Bilingual } from '../core/i18n.js';
import { addDays, japanDateOf, startOfJapanDay } from '../core/japan-time.js';
import { breachesLearnedBetween } from './breach-clock.js';
import { DETECTION_TARGET_MS, liability, RESTORATION_TARGET_MS, type LiabilityFinding } from './incidents.js';
import { EMERGENCY_CAUSES, PLANNED_REASONS, type EmergencyCause } from './stops.js';

/*
 * R12.4: monitoring records aggregated into statistics, per customer per Japan calendar month.
 *
 * Availability rule (Decision 0020):
 * - the measured period is the month from the later of its start and the customer's creation, up
 *   to the earlier of its end and now;
 * - planned stops (R7.2) are counted apart: their minutes are shown as scheduled maintenance and
 *   taken out of the measured period, never counted as outage;
 * - outage is the union of emergency stops (R7.3) and incidents marked entirely unusable (R20.1),
 *   each from occurrence (or stop start) to recovery (or stop end), minus planned time;
 * - incidents not marked entirely unusable are degraded time: shown, not counted against
 *   availability;
 * - intervals are merged before they are summed, so overlaps never count twice;
 * - availability % = (measured − outage) / measured × 100.
 */

type IncidentRow = Selectable<IncidentsTable>;
type Interval = readonly [number, number];

const MINUTE = 60_000;
const MONTH_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;

// --- interval arithmetic ---------------------------------------------------------------------

/** Sorted, non-overlapping, non-empty intervals covering the same time as the input. */
export function mergeIntervals(list: readonly Interval[]): Interval[] {
  const sorted = list.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

export function clipIntervals(list: readonly Interval[], start: number, end: number): Interval[] {
  return mergeIntervals(list.map(([a, b]) => [Math.max(a, start), Math.min(b, end)] as const));
}

/** The parts of `a` not covered by `b`. */
export function subtractIntervals(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const cut = mergeIntervals(b);
  const out: Interval[] = [];
  for (const [s0, e] of mergeIntervals(a)) {
    let s = s0;
    for (const [cs, ce] of cut) {
      if (ce <= s || cs >= e) continue;
      if (cs > s) out.push([s, cs]);
      s = Math.max(s, ce);
      if (s >= e) break;
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

export const totalMs = (list: readonly Interval[]) => mergeIntervals(list).reduce((n, [a, b]) => n + (b - a), 0);

// --- months ----------------------------------------------------------------------------------

export interface MonthRange {
  month: string;
  start: Date;
  end: Date;
  /** Every Japan calendar day of the month, YYYY-MM-DD. */
  days: string[];
}

export function japanMonthOf(instant: Date): string {
  return japanDateOf(instant).slice(0, 7);
}

export function monthRange(month: string): MonthRange {
  const m = MONTH_RE.exec(month);
  if (!m) throw errors.invalidField('month', '年月は YYYY-MM 形式で指定してください。', 'must be a month YYYY-MM');
  const first = `${month}-01`;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const next = mo === 12 ? `${y + 1}-01-01` : `${y}-${String(mo + 1).padStart(2, '0')}-01`;
  const days: string[] = [];
  for (let d = first; d < next; d = addDays(d, 1)) days.push(d);
  return { month, start: startOfJapanDay(first), end: startOfJapanDay(next), days };
}

/** A report month: YYYY-MM, from 2000 on, and not after the current Japan month. */
export function reportMonth(month: string, now: Date): MonthRange {
  const range = monthRange(month);
  if (month < '2000-01') throw errors.invalidField('month', '2000年1月以降を指定してください。', 'must be 2000-01 or later');
  if (month > japanMonthOf(now)) throw errors.invalidField('month', '未来の月は指定できません。', `must not be after the current month (${japanMonthOf(now)} in Japan)`);
  return range;
}

// --- loading ---------------------------------------------------------------------------------

interface StopSpan {
  id: string;
  kind: 'planned' | 'emergency';
  reason: string;
  start: number;
  /** Clipped to now: the part of the stop that has happened. */
  end: number;
  /** The end as announced or recorded, for display; null while an emergency stop runs. */
  shownEnd: number | null;
  customerIds: string[] | null;
}

interface IncidentSpan {
  row: IncidentRow;
  customerIds: string[] | null;
}

interface MonthData {
  range: MonthRange;
  now: Date;
  incidents: IncidentSpan[];
  stops: StopSpan[];
}

async function loadMonth(db: DbOrTx, range: MonthRange, now: Date): Promise<MonthData> {
  const incidents = await db
    .selectFrom('incidents')
    .selectAll()
    .where('occurred_at', '<', range.end)
    .where((eb) => eb.or([eb('recovered_at', 'is', null), eb('recovered_at', '>=', range.start)]))
    .orderBy('occurred_at')
    .execute();
  const scoped = incidents.filter((i) => !i.all_customers).map((i) => i.id);
  const links = scoped.length ? await db.selectFrom('incident_customers').select(['incident_id', 'customer_id']).where('incident_id', 'in', scoped).execute() : [];
  const stops = await db
    .selectFrom('service_stops')
    .selectAll()
    .where('cancelled_at', 'is', null)
    .where('starts_at', '<', range.end)
    .where((eb) => eb.or([eb('ended_at', 'is', null), eb('ended_at', '>=', range.start)]))
    .where((eb) => eb.or([eb('ends_at', 'is', null), eb('ends_at', '>=', range.start)]))
    .execute();
  const scopedStops = stops.filter((s) => !s.all_customers).map((s) => s.id);
  const stopLinks = scopedStops.length ? await db.selectFrom('service_stop_customers').select(['stop_id', 'customer_id']).where('stop_id', 'in', scopedStops).execute() : [];
  const t = now.getTime();
  return {
    range,
    now,
    incidents: incidents.map((row) => ({ row, customerIds: row.all_customers ? null : links.filter((l) => l.incident_id === row.id).map((l) => l.customer_id) })),
    stops: stops.map((s) => ({
      id: s.id,
      kind: s.kind,
      reason: s.reason,
      start: s.starts_at.getTime(),
      // An ended stop ends when it was ended; a planned one otherwise at its announced end; a running emergency now.
      end: Math.min((s.ended_at ?? s.ends_at ?? now).getTime(), s.ends_at?.getTime() ?? Infinity, Math.max(t, s.starts_at.getTime())),
      shownEnd: (s.ended_at ?? s.ends_at)?.getTime() ?? null,
      customerIds: s.all_customers ? null : stopLinks.filter((l) => l.stop_id === s.id).map((l) => l.customer_id),
    })),
  };
}

const touches = (ids: string[] | null, customerId: string | undefined) => customerId === undefined || ids === null || ids.includes(customerId);

// --- availability ----------------------------------------------------------------------------

export interface Availability {
  /** null when nothing of the period could be measured (a future day, before the customer existed). */
  availabilityPct: number | null;
  measuredMinutes: number;
  outageMinutes: number;
  degradedMinutes: number;
  plannedMinutes: number;
}

interface Spans {
  outage: Interval[];
  degraded: Interval[];
  planned: Interval[];
}

function spansFor(data: MonthData, customerId: string | undefined): Spans {
  const t = data.now.getTime();
  const outage: Interval[] = [];
  const degraded: Interval[] = [];
  const planned: Interval[] = [];
  for (const { row, customerIds } of data.incidents) {
    if (!touches(customerIds, customerId)) continue;
    const span = [row.occurred_at.getTime(), Math.min((row.recovered_at ?? data.now).getTime(), t)] as const;
    (row.entirely_unusable ? outage : degraded).push(span);
  }
  for (const s of data.stops) {
    if (!touches(s.customerIds, customerId)) continue;
    (s.kind === 'planned' ? planned : outage).push([s.start, s.end]);
  }
  return { outage: mergeIntervals(outage), degraded: mergeIntervals(degraded), planned: mergeIntervals(planned) };
}

function availabilityIn(spans: Spans, start: number, end: number): Availability {
  const period = end > start ? ([[start, end]] as Interval[]) : [];
  const planned = clipIntervals(spans.planned, start, end);
  const measured = subtractIntervals(period, planned);
  const outage = subtractIntervals(clipIntervals(spans.outage, start, end), planned);
  const degraded = subtractIntervals(subtractIntervals(clipIntervals(spans.degraded, start, end), planned), outage);
  const measuredMs = totalMs(measured);
  const outageMs = totalMs(outage);
  return {
    availabilityPct: measuredMs > 0 ? Math.round(((measuredMs - outageMs) / measuredMs) * 1_000_000) / 10_000 : null,
    measuredMinutes: round2(measuredMs / MINUTE),
    outageMinutes: round2(outageMs / MINUTE),
    degradedMinutes: round2(totalMs(degraded) / MINUTE),
    plannedMinutes: round2(totalMs(planned) / MINUTE),
  };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

// --- incidents -------------------------------------------------------------------------------

export interface IncidentStat {
  id: string;
  title: string;
  severity: IncidentRow['severity'];
  cause: string;
  causeLabel: Bilingual | null;
  occurredAt: string;
  detectedAt: string;
  recoveredAt: string | null;
  entirelyUnusable: boolean;
  /** detected − occurred. */
  detectMinutes: number;
  /** recovered − occurred (R8.3 counts the 24 h from occurrence); null while unresolved. */
  restoreMinutes: number | null;
  /** recovered − detected. */
  restoreAfterDetectMinutes: number | null;
  sla: { detection: 'met' | 'breached'; restoration: 'met' | 'breached' | 'running' };
  liability: LiabilityFinding;
}

function incidentStat(r: IncidentRow, now: Date): IncidentStat {
  const detectMs = r.detected_at.getTime() - r.occurred_at.getTime();
  const restoreMs = r.recovered_at ? r.recovered_at.getTime() - r.occurred_at.getTime() : null;
  const sinceMs = now.getTime() - r.occurred_at.getTime();
  const cause = (r.cause ?? 'unspecified') as EmergencyCause | 'unspecified';
  return {
    id: r.id,
    title: r.title,
    severity: r.severity,
    cause,
    causeLabel: cause === 'unspecified' ? null : (EMERGENCY_CAUSES[cause] ?? null),
    occurredAt: r.occurred_at.toISOString(),
    detectedAt: r.detected_at.toISOString(),
    recoveredAt: r.recovered_at?.toISOString() ?? null,
    entirelyUnusable: r.entirely_unusable,
    detectMinutes: round2(detectMs / MINUTE),
    restoreMinutes: restoreMs === null ? null : round2(restoreMs / MINUTE),
    restoreAfterDetectMinutes: r.recovered_at ? round2((r.recovered_at.getTime() - r.detected_at.getTime()) / MINUTE) : null,
    sla: {
      detection: detectMs > DETECTION_TARGET_MS ? 'breached' : 'met',
      restoration: restoreMs === null ? (sinceMs > RESTORATION_TARGET_MS ? 'breached' : 'running') : restoreMs > RESTORATION_TARGET_MS ? 'breached' : 'met',
    },
    liability: liability(r, now),
  };
}

export interface IncidentSummary {
  /** Incidents that occurred in the month (the basis of the figures below). */
  count: number;
  timeToDetect: { averageMinutes: number | null; maxMinutes: number | null };
  timeToRestore: { averageMinutes: number | null; maxMinutes: number | null; unresolved: number };
  byCause: Record<string, number>;
  bySeverity: Record<IncidentRow['severity'], number>;
  /** R8.3: detection over 1 h, restoration over 24 h (unresolved past 24 h counts). */
  slaBreaches: { detection: number; restoration: number; incidentIds: string[] };
  /** R20: incidents overlapping the month found (or pending) liable. */
  liability: { liable: number; pending: number; incidentIds: string[] };
}

function summarise(occurred: IncidentStat[], overlapping: IncidentStat[]): IncidentSummary {
  const detect = occurred.map((i) => i.detectMinutes);
  const restore = occurred.flatMap((i) => (i.restoreMinutes === null ? [] : [i.restoreMinutes]));
  const avg = (xs: number[]) => (xs.length ? round2(xs.reduce((a, b) => a + b, 0) / xs.length) : null);
  const max = (xs: number[]) => (xs.length ? Math.max(...xs) : null);
  const byCause: Record<string, number> = Object.fromEntries([...Object.keys(EMERGENCY_CAUSES), 'unspecified'].map((k) => [k, 0]));
  const bySeverity: Record<IncidentRow['severity'], number> = { critical: 0, major: 0, minor: 0 };
  for (const i of occurred) {
    byCause[i.cause] = (byCause[i.cause] ?? 0) + 1;
    bySeverity[i.severity]++;
  }
  const breached = occurred.filter((i) => i.sla.detection === 'breached' || i.sla.restoration === 'breached');
  const liable = overlapping.filter((i) => i.liability.liable !== false);
  return {
    count: occurred.length,
    timeToDetect: { averageMinutes: avg(detect), maxMinutes: max(detect) },
    timeToRestore: { averageMinutes: avg(restore), maxMinutes: max(restore), unresolved: occurred.length - restore.length },
    byCause,
    bySeverity,
    slaBreaches: { detection: occurred.filter((i) => i.sla.detection === 'breached').length, restoration: occurred.filter((i) => i.sla.restoration === 'breached').length, incidentIds: breached.map((i) => i.id) },
    liability: { liable: liable.filter((i) => i.liability.liable === true).length, pending: liable.filter((i) => i.liability.liable === 'pending').length, incidentIds: liable.map((i) => i.id) },
  };
}

// --- resource trends (optional) --------------------------------------------------------------

export interface ResourceSeries {
  name: string;
  unit: string;
  points: Array<{ at: string; value: number }>;
}

/** Hardware series for a period, e.g. from the monitoring domain once it exists; optional. */
export type ResourceTrendProvider = (q: { start: Date; end: Date; customerId?: string }) => Promise<ResourceSeries[]>;

// --- the reports -----------------------------------------------------------------------------

export interface StopStat {
  id: string;
  kind: 'planned' | 'emergency';
  reason: string;
  reasonLabel: Bilingual;
  startsAt: string;
  endsAt: string | null;
  /** The part inside the month that has happened by now. */
  minutesInMonth: number;
}

export interface CustomerMonthStatistics {
  month: string;
  period: { start: string; end: string; measuredUntil: string };
  customer: { id: string; code: string; name: string };
  availability: Availability;
  daily: Array<{ date: string } & Availability>;
  incidents: IncidentStat[];
  summary: IncidentSummary;
  stops: StopStat[];
  stopsByReason: Record<string, number>;
  breaches: { learnedInMonth: number; ids: string[] };
  /** null when no provider is wired (hardware monitoring is not on this branch). */
  resources: ResourceSeries[] | null;
  generatedAt: string;
}

function stopStats(data: MonthData, customerId: string | undefined): StopStat[] {
  const { start, end } = data.range;
  return data.stops
    .filter((s) => touches(s.customerIds, customerId))
    .sort((a, b) => a.start - b.start)
    .map((s) => {
      const labels: Record<string, Bilingual> = s.kind === 'planned' ? PLANNED_REASONS : EMERGENCY_CAUSES;
      return {
        id: s.id,
        kind: s.kind,
        reason: s.reason,
        reasonLabel: labels[s.reason] ?? { ja: s.reason, en: s.reason },
        startsAt: new Date(s.start).toISOString(),
        endsAt: s.shownEnd === null ? null : new Date(s.shownEnd).toISOString(),
        minutesInMonth: round2(totalMs(clipIntervals([[s.start, s.end]], start.getTime(), Math.min(end.getTime(), data.now.getTime()))) / MINUTE),
      };
    });
}

function customerStatistics(data: MonthData, customer: CustomerView, breaches: Array<{ id: string; customerIds: string[] }>, resources: ResourceSeries[] | null): CustomerMonthStatistics {
  const { range, now } = data;
  const spans = spansFor(data, customer.id);
  const from = Math.max(range.start.getTime(), Date.parse(customer.createdAt));
  const until = Math.min(range.end.getTime(), now.getTime());
  const daily = range.days.map((date) => {
    const ds = Math.max(startOfJapanDay(date).getTime(), from);
    const de = Math.min(startOfJapanDay(addDays(date, 1)).getTime(), until);
    return { date, ...availabilityIn(spans, ds, de) };
  });
  const mine = data.incidents.filter((i) => touches(i.customerIds, customer.id)).map((i) => incidentStat(i.row, now));
  const occurred = mine.filter((i) => Date.parse(i.occurredAt) >= range.start.getTime());
  const stops = stopStats(data, customer.id);
  const stopsByReason: Record<string, number> = {};
  for (const s of stops) stopsByReason[`${s.kind}:${s.reason}`] = (stopsByReason[`${s.kind}:${s.reason}`] ?? 0) + 1;
  const ownBreaches = breaches.filter((b) => b.customerIds.includes(customer.id));
  return {
    month: range.month,
    period: { start: range.start.toISOString(), end: range.end.toISOString(), measuredUntil: new Date(Math.max(until, range.start.getTime())).toISOString() },
    customer: { id: customer.id, code: customer.code, name: customer.name },
    availability: availabilityIn(spans, from, until),
    daily,
    incidents: mine,
    summary: summarise(occurred, mine),
    stops,
    stopsByReason,
    breaches: { learnedInMonth: ownBreaches.length, ids: ownBreaches.map((b) => b.id) },
    resources,
    generatedAt: now.toISOString(),
  };
}

/** R12.4: one customer's month. `month` must already be validated with reportMonth. */
export async function customerMonthStatistics(db: DbOrTx, clock: Clock, customerId: string, month: string, opts: { resources?: ResourceTrendProvider } = {}): Promise<CustomerMonthStatistics> {
  const now = clock.now();
  const range = reportMonth(month, now);
  const customer = await getCustomer(db, customerId);
  const data = await loadMonth(db, range, now);
  const breaches = await breachesLearnedBetween(db, range.start, range.end);
  const resources = opts.resources ? await opts.resources({ start: range.start, end: range.end, customerId }) : null;
  return customerStatistics(data, customer, breaches, resources);
}

export interface ProviderMonthStatistics {
  month: string;
  period: { start: string; end: string };
  /** Every incident in the month, whichever customers it touched. */
  incidents: IncidentStat[];
  summary: IncidentSummary;
  stops: StopStat[];
  customers: Array<{ id: string; code: string; name: string } & Availability & { incidents: number }>;
  availability: { averagePct: number | null; minPct: number | null; customersBelow99_9: number };
  breaches: { learnedInMonth: number; confirmed: number; ids: string[] };
  generatedAt: string;
}

/** R12.4: the provider-wide month, for operators. */
export async function providerMonthStatistics(db: DbOrTx, clock: Clock, month: string): Promise<ProviderMonthStatistics> {
  const now = clock.now();
  const range = reportMonth(month, now);
  const data = await loadMonth(db, range, now);
  const breaches = await breachesLearnedBetween(db, range.start, range.end);
  const all = data.incidents.map((i) => incidentStat(i.row, now));
  const occurred = all.filter((i) => Date.parse(i.occurredAt) >= range.start.getTime());
  const customers = (await listCustomers(db)).filter((c) => Date.parse(c.createdAt) < range.end.getTime());
  const rows = customers.map((c) => {
    const s = customerStatistics(data, c, [], null);
    return { id: c.id, code: c.code, name: c.name, ...s.availability, incidents: s.summary.count };
  });
  const pcts = rows.flatMap((r) => (r.availabilityPct === null ? [] : [r.availabilityPct]));
  return {
    month: range.month,
    period: { start: range.start.toISOString(), end: range.end.toISOString() },
    incidents: all,
    summary: summarise(occurred, all),
    stops: stopStats(data, undefined),
    customers: rows,
    availability: {
      averagePct: pcts.length ? Math.round((pcts.reduce((a, b) => a + b, 0) / pcts.length) * 10_000) / 10_000 : null,
      minPct: pcts.length ? Math.min(...pcts) : null,
      customersBelow99_9: pcts.filter((p) => p < 99.9).length,
    },
    breaches: { learnedInMonth: breaches.length, confirmed: breaches.filter((b) => b.status === 'confirmed').length, ids: breaches.map((b) => b.id) },
    generatedAt: now.toISOString(),
  };
}
