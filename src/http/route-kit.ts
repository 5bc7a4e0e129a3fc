import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Principal } from '../core/auth/principal.js';
import { errors } from '../core/errors.js';
import { isValidDate } from '../core/japan-time.js';

export type Router = ReturnType<FastifyInstance['withTypeProvider']> & FastifyInstance;
export const router = (app: FastifyInstance) => app.withTypeProvider<ZodTypeProvider>();

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** Set when the request came with the session cookie (CSRF rules apply). */
    viaSessionCookie: boolean;
  }
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw errors.unauthenticated();
  return req.principal;
}

export function humanPrincipal(req: FastifyRequest): Extract<Principal, { kind: 'operator' | 'customer_user' }> {
  const p = principalOf(req);
  if (p.kind === 'api_token') throw errors.forbidden('API tokens cannot do this; sign in as a person', 'APIトークンでは実行できません。担当者としてサインインしてください');
  return p;
}

export const uuid = z.uuid({ error: 'must be a UUID' });

/**
 * The years a date or instant of the API may carry. PostgreSQL has no year 0 ('0000-01-01' is an
 * error there, so it surfaced as a 500), and before 1900 Japan time is not even JST (Asia/Tokyo
 * is local mean time, +09:18:59, until 1888), so the Japan-day arithmetic would be wrong anyway.
 * No contract, incident or notice of this service lies outside these years.
 */
export const MIN_YEAR = 1900;
export const MAX_YEAR = 9999;
const YEAR_RANGE = `the year must be between ${MIN_YEAR} and ${MAX_YEAR}`;
/** The year as written (the first four digits), which is what the caller can see and fix. */
const yearInRange = (value: string) => {
  const year = Number(value.slice(0, 4));
  return year >= MIN_YEAR && year <= MAX_YEAR;
};

export const calendarDate = z
  .string()
  // abort: a malformed date is told so once, not also that its "year" is out of range.
  .refine(isValidDate, { error: 'must be a calendar date YYYY-MM-DD', abort: true })
  .refine(yearInRange, { error: YEAR_RANGE })
  .describe(`calendar date in Japan, YYYY-MM-DD, years ${MIN_YEAR}–${MAX_YEAR}`);
export const note = z.string().trim().min(1, { error: 'must not be empty' }).max(2000);
export const optionalNote = z.string().trim().max(2000).default('');
export const email = z.email({ error: 'must be an e-mail address' }).max(254);
export const loginId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{2,63}$/, { error: '3–64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit' });
export const displayName = z.string().trim().min(1).max(200);
export const instant = z.iso
  .datetime({ offset: true, error: 'must be an ISO 8601 date-time with a zone, e.g. 2026-12-01T09:00:00+09:00', abort: true })
  .refine(yearInRange, { error: YEAR_RANGE });

export const errorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.object({ ja: z.string(), en: z.string() }),
    details: z.array(z.object({ path: z.string(), message: z.string() })),
  }),
});

export const SESSION_COOKIE = 'hokan_session';
