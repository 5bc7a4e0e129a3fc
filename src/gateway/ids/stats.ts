import { japanDateOf } from '../../core/japan-time.js';

/**
 * Aggregation of IDS events into the statistics the terms promise (R12.2, R12.4): how many
 * attacks of which kind, on which Japan day, against which customer, and what was done. Pure:
 * storage and the page that shows it live elsewhere.
 */

export interface IdsEvent {
  at: Date;
  class: string;
  customerId: string | null;
  action: string;
}

export interface IdsAggregateOptions {
  /** Days are calendar days in Japan (JST, UTC+9, no daylight saving). */
  timeZone: 'Asia/Tokyo';
}

export interface IdsAggregate {
  total: number;
  /** Class → events, most frequent first (ties by name). */
  byClass: Record<string, number>;
  /** YYYY-MM-DD in JST → events, oldest day first. */
  byDay: Record<string, number>;
  /** Day → class → events, oldest day first. */
  byDayAndClass: Record<string, Record<string, number>>;
  /** Customer id → events, most frequent first; events with no customer are in `unattributed`. */
  byCustomer: Record<string, number>;
  unattributed: number;
  /** Action (allow/log/block) → events. */
  byAction: Record<string, number>;
  /** First and last day with events, or null when there are none. */
  firstDay: string | null;
  lastDay: string | null;
}

const byCountThenName = (a: [string, number], b: [string, number]) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
const byName = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export function aggregate(events: readonly IdsEvent[], opts: IdsAggregateOptions): IdsAggregate {
  if (opts.timeZone !== 'Asia/Tokyo') throw new RangeError(`unsupported time zone ${JSON.stringify(opts.timeZone)}: statistics are kept by Japan day`);
  const byClass = new Map<string, number>();
  const byDay = new Map<string, number>();
  const byDayClass = new Map<string, Map<string, number>>();
  const byCustomer = new Map<string, number>();
  const byAction = new Map<string, number>();
  let unattributed = 0;
  events.forEach((e, i) => {
    const t = e.at instanceof Date ? e.at.getTime() : Number.NaN;
    if (Number.isNaN(t)) throw new RangeError(`IDS event #${i} has no valid time`);
    const day = japanDateOf(e.at);
    bump(byClass, e.class);
    bump(byDay, day);
    let perClass = byDayClass.get(day);
    if (!perClass) {
      perClass = new Map();
      byDayClass.set(day, perClass);
    }
    bump(perClass, e.class);
    if (e.customerId === null) unattributed++;
    else bump(byCustomer, e.customerId);
    bump(byAction, e.action);
  });
  const days = [...byDay.entries()].sort(byName);
  return {
    total: events.length,
    byClass: Object.fromEntries([...byClass.entries()].sort(byCountThenName)),
    byDay: Object.fromEntries(days),
    byDayAndClass: Object.fromEntries([...byDayClass.entries()].sort(byName).map(([d, m]) => [d, Object.fromEntries([...m.entries()].sort(byCountThenName))])),
    byCustomer: Object.fromEntries([...byCustomer.entries()].sort(byCountThenName)),
    unattributed,
    byAction: Object.fromEntries([...byAction.entries()].sort(byCountThenName)),
    firstDay: days[0]?.[0] ?? null,
    lastDay: days[days.length - 1]?.[0] ?? null,
  };
}
