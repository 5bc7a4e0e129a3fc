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
export const calendarDate = z
  .string()
  .refine(isValidDate, { error: 'must be a calendar date YYYY-MM-DD' })
  .describe('calendar date in Japan, YYYY-MM-DD');
export const note = z.string().trim().min(1, { error: 'must not be empty' }).max(2000);
export const optionalNote = z.string().trim().max(2000).default('');
export const email = z.email({ error: 'must be an e-mail address' }).max(254);
export const loginId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{2,63}$/, { error: '3–64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit' });
export const displayName = z.string().trim().min(1).max(200);
export const instant = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time with a zone, e.g. 2026-12-01T09:00:00+09:00' });

export const errorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.object({ ja: z.string(), en: z.string() }),
    details: z.array(z.object({ path: z.string(), message: z.string() })),
  }),
});

export const SESSION_COOKIE = 'hokan_session';
