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

const WEEKDAYS_EN = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS_EN = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** 2026年11月24日(火) 10:00頃 — the approximate time of an event as Japanese notices give it (R8.1). */
export function formatJapanTimeApprox(instant: Date): string {
  return `${formatJapanDateTime(instant).replace(/ JST$/, '')}頃`;
}

/** 2026年11月24日(火) 10:00〜15:00頃 (same day) or …10:00〜2026年11月25日(水) 03:00頃; open end: 10:00頃〜. */
export function formatJapanPeriodApprox(start: Date, end: Date | null): string {
  const from = formatJapanDateTime(start).replace(/ JST$/, '');
  if (!end) return `${from}頃〜`;
  const sameDay = japanDateOf(start) === japanDateOf(end);
  const to = formatJapanDateTime(end).replace(/ JST$/, '');
  return `${from}〜${sameDay ? to.slice(-5) : to}頃`;
}

/** Tue 24 Nov 2026 10:00 JST — the English counterpart in notices. */
export function formatJapanDateTimeEn(instant: Date): string {
  const j = new Date(instant.getTime() + JST_OFFSET_MS);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${WEEKDAYS_EN[j.getUTCDay()]} ${j.getUTCDate()} ${MONTHS_EN[j.getUTCMonth()]} ${j.getUTCFullYear()} ${pad(j.getUTCHours())}:${pad(j.getUTCMinutes())} JST`;
}
