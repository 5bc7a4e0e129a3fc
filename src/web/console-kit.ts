import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireOperatorRole, type OperatorRole } from '../core/auth/principal.js';
import { errors, HokanError } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import type { Html } from './html.js';
import { checkCsrf, pageMessage, requireHuman, seeOther, validate, type FormData, type FormState, type Human, type WebDeps } from './kit.js';
import { nav } from './console.js';
import { pageContext, shell, type PageContext } from './shell.js';

export type Operator = Extract<Human, { kind: 'operator' }>;
export type PageFn = (req: FastifyRequest, reply: FastifyReply, p: Operator, state?: FormState, status?: number) => Promise<FastifyReply>;

export interface ActionOpts<S extends z.ZodType> {
  /** The form's id, so a refusal lands next to that form's fields. */
  form: (req: FastifyRequest) => string;
  roles: OperatorRole[];
  schema: S;
  input: (f: FormData) => unknown;
  /** The domain function (it writes and audits); may map its refusal to form fields by returning a state. */
  run: (data: z.output<S>, p: Operator, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  page: PageFn;
  redirect: (req: FastifyRequest, result: unknown) => string;
  /** The change shows on the public status page. */
  status?: boolean;
  /** Renames an error's field (e.g. the bilingual `cause` → its Japanese box `causeJa`). */
  fieldOf?: (key: string) => string;
  /** Maps a domain refusal's field paths (e.g. results.2.note) to the form's field names. */
  mapErrors?: (state: FormState, err: HokanError, f: FormData, locale: Locale) => FormState;
  /** A larger body than Fastify's default (a terms document pasted into a form). */
  bodyLimit?: number;
  /** Instead of redirecting, show a page (a secret shown once must not go into a URL). */
  render?: (req: FastifyRequest, reply: FastifyReply, p: Operator, result: unknown) => Promise<FastifyReply>;
}

/**
 * The console's page plumbing for the pages added beside console.ts (monitoring, notices, terms,
 * reports, backups): the
 * signed-in operator, the page context, the shell with the console's menu, and one form POST —
 * CSRF, role, the API's zod schema, the domain function, POST → redirect → GET (decision 0022).
 */
export function consoleKit(app: FastifyInstance, deps: WebDeps) {
  const operator = (req: FastifyRequest, ...roles: OperatorRole[]): Operator => {
    const p = requireHuman(req, 'console') as Operator;
    if (roles.length) requireOperatorRole(p, ...roles);
    return p;
  };
  const pcOf = (req: FastifyRequest, reply: FastifyReply, p: Operator) => pageContext(deps, req, reply, p);
  const page = (reply: FastifyReply, pc: PageContext, title: string, path: string, body: Html, status = 200, head?: Html) => shell(reply, pc, { face: 'console', nav: nav(pc), title, path, body, status, ...(head ? { head } : {}) });
  const param = uuidParam;
  function action<S extends z.ZodType>(path: string, opts: ActionOpts<S>): void {
    app.post(path, { schema: { hide: true }, ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}) }, async (req, reply) => {
      const p = operator(req);
      const f = (req.body ?? {}) as FormData;
      checkCsrf(deps.csrf, req, f);
      requireOperatorRole(p, ...opts.roles);
      const locale = pcOf(req, reply, p).locale;
      const formId = opts.form(req);
      const parsed = validate(opts.schema, opts.input(f), locale);
      const rename = (errs: Record<string, string>) => (opts.fieldOf ? Object.fromEntries(Object.entries(errs).map(([k, v]) => [opts.fieldOf!(k), v])) : errs);
      if (!parsed.ok) return opts.page(req, reply, p, { form: formId, values: f, errors: rename(parsed.errors) }, 400);
      let result: unknown;
      try {
        result = await opts.run(parsed.data, p, req, reply);
      } catch (err) {
        if (err instanceof HokanError && err.httpStatus < 500 && err.code !== 'not_found') {
          const errorsOf: Record<string, string> = {};
          for (const d of err.details) errorsOf[d.path.split('.')[0] || '_'] ??= fieldMessage(err, d, locale);
          const state: FormState = { form: formId, values: f, errors: rename(errorsOf), message: pageMessage(err, locale) };
          return opts.page(req, reply, p, opts.mapErrors ? opts.mapErrors(state, err, f, locale) : state, err.httpStatus);
        }
        throw err;
      }
      if (opts.status) deps.statusChanged();
      if (opts.render) return opts.render(req, reply, p, result);
      return seeOther(reply, opts.redirect(req, result));
    });
  }
  return { operator, pcOf, page, param, action };
}

/** A route's id parameter; anything but a UUID is "not found", like an unknown id. */
export const uuidParam = (req: FastifyRequest, name: string): string => {
  const v = (req.params as Record<string, string>)[name] ?? '';
  if (!z.uuid().safeParse(v).success) throw errors.notFound('ID', v);
  return v;
};

/** The message for one refused field: the bilingual message (without its "path: " prefix) when it is the only one, else the detail. */
export function fieldMessage(err: HokanError, d: { path: string; message: string }, locale: Locale): string {
  return err.details.length === 1 ? pageMessage(err, locale) : d.message;
}

/** A form number: empty → undefined (the schema's default applies), otherwise Number (NaN is refused by the schema). */
export const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v.trim()));
