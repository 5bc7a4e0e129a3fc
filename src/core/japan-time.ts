/**
 * Japan has kept UTC+9 without daylight saving since 1951, so a fixed offset is exact and
 * avoids depending on the host's time-zone database for contract dates.
 */
const JST_OFFSET_MS = 9 * 3_600_000;
const DAY_MS = 86_400_000;

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The calendar date (YYYY-MM-DD) in Japan at the given instant. */
export function japanDateOf(instant: Date): string {
  return new Date(instant.getTime() + JST_OFFSET_MS).toISOString().slice(0, 10);
}

export function isValidDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  if (!m) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

/** Adds whole calendar days to a YYYY-MM-DD date. */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  return new Date(d.getTime() + days * DAY_MS).toISOString().slice(0, 10);
}

/** The instant a Japan calendar day begins (00:00 JST). */
export function startOfJapanDay(date: string): Date {
  return new Date(new Date(`${date}T00:00:00Z`).getTime() - JST_OFFSET_MS);
}

/**
 * A contract "ending on" a date runs through that whole day in Japan, so it ends at the
 * start of the next Japan day.
 */
export function endOfJapanDay(date: string): Date {
  return startOfJapanDay(addDays(date, 1));
}

const WEEKDAYS_JA = ['日', '月', '火', '水', '木', '金', '土'];

/** 2026年11月24日(火) 10:00 JST — the form Japanese notices use. */
export function formatJapanDateTime(instant: Date): string {
  const j = new Date(instant.getTime() + JST_OFFSET_MS);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${j.getUTCFullYear()}年${j.getUTCMonth() + 1}月${j.getUTCDate()}日(${WEEKDAYS_JA[j.getUTCDay()]}) ${pad(j.getUTCHours())}:${pad(j.getUTCMinutes())} JST`;
}

export function formatJapanDate(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  return `${d.getUTCFullYear()}年${d.getUTCMonth() + 1}月${d.getUTCDate()}日(${WEEKDAYS_JA[d.getUTCDay()]})`;
}
