import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Bilingual, Locale } from '../core/i18n.js';
import { formatJapanDate, formatJapanDateTime } from '../core/japan-time.js';

export const LANG_COOKIE = 'hokan_lang';

/** The query's `lang` if given, then the cookie, then Japanese (Japanese first). */
export function localeOf(req: FastifyRequest): Locale {
  const q = (req.query as Record<string, unknown> | undefined)?.['lang'];
  if (q === 'en' || q === 'ja') return q;
  const c = req.cookies?.[LANG_COOKIE];
  return c === 'en' ? 'en' : 'ja';
}

/** Pages other than the cached status page remember an explicit switch in a cookie. */
export function rememberLocale(req: FastifyRequest, reply: FastifyReply, secure: boolean): Locale {
  const q = (req.query as Record<string, unknown> | undefined)?.['lang'];
  if ((q === 'en' || q === 'ja') && req.cookies?.[LANG_COOKIE] !== q) {
    reply.setCookie(LANG_COOKIE, q, { path: '/', sameSite: 'lax', httpOnly: true, secure, maxAge: 365 * 86_400 });
  }
  return localeOf(req);
}

export type T = (ja: string, en: string) => string;
export const translator = (locale: Locale): T => (ja, en) => (locale === 'ja' ? ja : en);
export const pickText = (b: Bilingual, locale: Locale): string => b[locale];

const pad = (n: number) => String(n).padStart(2, '0');

/** Japan time, always labelled JST (the service is Japanese; readers abroad see the same clock). */
export function fmtTime(at: Date | string | null | undefined, locale: Locale): string {
  if (at === null || at === undefined) return '—';
  const d = typeof at === 'string' ? new Date(at) : at;
  if (locale === 'ja') return formatJapanDateTime(d);
  const j = new Date(d.getTime() + 9 * 3_600_000);
  return `${j.getUTCFullYear()}-${pad(j.getUTCMonth() + 1)}-${pad(j.getUTCDate())} ${pad(j.getUTCHours())}:${pad(j.getUTCMinutes())} JST`;
}

export function fmtDate(date: string | null | undefined, locale: Locale): string {
  if (!date) return '—';
  return locale === 'ja' ? formatJapanDate(date) : date;
}

export function fmtYen(n: number, locale: Locale): string {
  return locale === 'ja' ? `${n.toLocaleString('ja-JP')}円` : `¥${n.toLocaleString('en-US')}`;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
