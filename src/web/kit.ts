import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Principal } from '../core/auth/principal.js';
import { HokanError } from '../core/errors.js';
import type { Locale } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { SESSION_COOKIE } from '../http/route-kit.js';
import { html, type Html, type Interpolation } from './html.js';

// ---------------------------------------------------------------------------------------------
// CSRF (decision 0022): a synchronizer token bound to the session — HMAC-SHA256 of the session
// token under a key derived from the master key, so every instance computes the same token and
// nothing is stored. Before sign-in the token is bound to a random pre-session cookie instead
// (login CSRF). SameSite=Lax and the Origin check of src/http/server.ts stay as further layers.
// ---------------------------------------------------------------------------------------------

export const PRE_SESSION_COOKIE = 'hokan_pre';
export const CSRF_FIELD = '_csrf';

export class CsrfKey {
  readonly #key: Buffer;
  constructor(masterKey: Uint8Array) {
    this.#key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'hokan-web-csrf-v1', 32));
  }
  token(binding: string): string {
    return createHmac('sha256', this.#key).update(binding).digest('base64url');
  }
  verify(binding: string, given: unknown): boolean {
    if (typeof given !== 'string' || given.length === 0) return false;
    const want = Buffer.from(this.token(binding));
    const got = Buffer.from(given);
    return got.length === want.length && timingSafeEqual(got, want);
  }
}

/** The value a form's token is bound to: the session, or (signed out) the pre-session cookie, set here if missing. */
export function csrfBinding(req: FastifyRequest, reply: FastifyReply, secure: boolean): string {
  const session = req.cookies[SESSION_COOKIE];
  if (session && req.principal) return `session:${session}`;
  let pre = req.cookies[PRE_SESSION_COOKIE];
  if (!pre || !/^[A-Za-z0-9_-]{43}$/.test(pre)) {
    pre = randomBytes(32).toString('base64url');
    req.cookies[PRE_SESSION_COOKIE] = pre;
    reply.setCookie(PRE_SESSION_COOKIE, pre, { path: '/', httpOnly: true, sameSite: 'lax', secure });
  }
  return `pre:${pre}`;
}

export class CsrfError extends Error {}

export function checkCsrf(key: CsrfKey, req: FastifyRequest, form: FormData): void {
  const session = req.cookies[SESSION_COOKIE];
  const binding = session && req.principal ? `session:${session}` : `pre:${req.cookies[PRE_SESSION_COOKIE] ?? ''}`;
  if (!key.verify(binding, form[CSRF_FIELD])) throw new CsrfError('csrf');
}

// ---------------------------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------------------------

export type FormData = Record<string, string | string[]>;

/** application/x-www-form-urlencoded → fields; a repeated name becomes an array. */
export function parseForm(body: string): FormData {
  const out: FormData = {};
  for (const [k, v] of new URLSearchParams(body)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

export const str = (f: FormData, name: string): string | undefined => {
  const v = f[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.trim() === '' ? undefined : s;
};
export const list = (f: FormData, name: string): string[] => {
  const v = f[name];
  return v === undefined ? [] : (Array.isArray(v) ? v : [v]).filter((x) => x.trim() !== '');
};
export const checked = (f: FormData, name: string): boolean => str(f, name) !== undefined;
/** A datetime-local value is Japan time: 2026-12-01T09:00 → 2026-12-01T09:00:00+09:00. */
export const jstInstant = (v: string | undefined): string | undefined => (v === undefined ? undefined : /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(v) ? `${v}:00+09:00` : v);
/** An ISO instant as a datetime-local value in Japan time. */
export const toJstLocal = (d: Date): string => new Date(d.getTime() + 9 * 3_600_000).toISOString().slice(0, 16);

export interface FormState {
  form: string;
  values: FormData;
  errors: Record<string, string>;
  message?: string;
}

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  format?: string;
  origin?: string;
}

/** The API's zod messages are English; the pages say the same thing in Japanese too. */
function issueText(i: ZodIssueLike, locale: Locale): string {
  if (locale === 'en') return i.message;
  switch (i.code) {
    case 'too_small':
      return i.origin === 'string' && Number(i.minimum) <= 1 ? '入力してください。' : i.origin === 'array' ? `${String(i.minimum)}件以上選んでください。` : i.origin === 'string' ? `${String(i.minimum)}文字以上で入力してください。` : `${String(i.minimum)}以上にしてください。`;
    case 'too_big':
      return i.origin === 'string' ? `${String(i.maximum)}文字以内で入力してください。` : `${String(i.maximum)}以下にしてください。`;
    case 'invalid_type':
      return '入力してください。';
    case 'invalid_value':
    case 'invalid_union':
      return '選択肢から選んでください。';
    case 'invalid_format':
      return i.format === 'email' ? 'メールアドレスの形式で入力してください。' : i.format === 'datetime' ? '日時を入力してください（日本時間）。' : i.format === 'uuid' ? '一覧から選んでください。' : `形式が正しくありません（${i.message}）。`;
    default:
      return `入力内容を確認してください（${i.message}）。`;
  }
}

export type Parsed<S extends z.ZodType> = { ok: true; data: z.output<S> } | { ok: false; errors: Record<string, string> };

export function validate<S extends z.ZodType>(schema: S, input: unknown, locale: Locale): Parsed<S> {
  const r = schema.safeParse(input);
  if (r.success) return { ok: true, data: r.data };
  const errors: Record<string, string> = {};
  for (const issue of r.error.issues as unknown as ZodIssueLike[]) {
    const key = issue.path.length ? String(issue.path[0]) : '_';
    errors[key] ??= issueText(issue, locale);
  }
  return { ok: false, errors };
}

/** A domain refusal as a form state: messages next to the fields it names, the whole message on top. */
/**
 * A refusal's message for a page. The API's messages start with the field's path
 * ("confirmCustomerId: …") for programs; on a page the message stands next to the labelled field,
 * so the path is left out.
 */
export function pageMessage(err: HokanError, locale: Locale): string {
  const m = err.messages[locale];
  const pathPrefix = err.details.map((d) => `${d.path}: `).find((p) => m.startsWith(p));
  return pathPrefix ? m.slice(pathPrefix.length) : m;
}

export function refusalState(form: string, values: FormData, err: HokanError, locale: Locale): FormState {
  const message = pageMessage(err, locale);
  const errors: Record<string, string> = {};
  for (const d of err.details) {
    const key = d.path.split('.')[0] ?? '_';
    if (key) errors[key] ??= err.details.length === 1 ? message : d.message;
  }
  return { form, values, errors, message };
}

// ---------------------------------------------------------------------------------------------
// Field markup: every input has a label; errors are tied to it with aria-describedby.
// ---------------------------------------------------------------------------------------------

export interface FieldSpec {
  name: string;
  label: string;
  type?: 'text' | 'email' | 'password' | 'date' | 'datetime-local' | 'number' | 'textarea' | 'select' | 'checkbox' | 'select-multiple';
  value?: string | undefined;
  options?: Array<{ value: string; label: string }>;
  hint?: string;
  required?: boolean;
  autocomplete?: string;
  inputmode?: string;
}

export function field(formId: string, spec: FieldSpec, state: FormState | undefined): Html {
  const id = `${formId}-${spec.name}`;
  const mine = state?.form === formId ? state : undefined;
  const err = mine?.errors[spec.name];
  const prev = mine?.values[spec.name];
  const value = prev !== undefined ? (Array.isArray(prev) ? prev : [prev]) : spec.value !== undefined ? [spec.value] : [];
  const describedBy = [spec.hint ? `${id}-hint` : '', err ? `${id}-error` : ''].filter(Boolean).join(' ');
  const aria = html`${describedBy ? html` aria-describedby="${describedBy}"` : ''}${err ? html` aria-invalid="true"` : ''}${spec.required ? html` required` : ''}`;
  let control: Html;
  switch (spec.type) {
    case 'textarea':
      control = html`<textarea id="${id}" name="${spec.name}" rows="3"${aria}>${value[0] ?? ''}</textarea>`;
      break;
    case 'select':
    case 'select-multiple':
      control = html`<select id="${id}" name="${spec.name}"${spec.type === 'select-multiple' ? html` multiple size="4"` : ''}${aria}>${(spec.options ?? []).map((o) => html`<option value="${o.value}"${value.includes(o.value) ? html` selected` : ''}>${o.label}</option>`)}</select>`;
      break;
    case 'checkbox':
      return html`<div><input type="checkbox" id="${id}" name="${spec.name}" value="on"${value.includes('on') ? html` checked` : ''}${aria}> <label for="${id}" class="inline-label">${spec.label}</label>
${spec.hint ? html`<p class="hint" id="${id}-hint">${spec.hint}</p>` : ''}${err ? html`<p class="field-error" id="${id}-error">${err}</p>` : ''}</div>`;
    default:
      control = html`<input id="${id}" name="${spec.name}" type="${spec.type ?? 'text'}" value="${value[0] ?? ''}"${spec.autocomplete ? html` autocomplete="${spec.autocomplete}"` : ''}${spec.inputmode ? html` inputmode="${spec.inputmode}"` : ''}${aria}>`;
  }
  return html`<div><label for="${id}">${spec.label}</label>${spec.hint ? html`<p class="hint" id="${id}-hint">${spec.hint}</p>` : ''}
${control}${err ? html`<p class="field-error" id="${id}-error">${err}</p>` : ''}</div>`;
}

export function form(opts: { id: string; action: string; csrf: string; submit: string; state: FormState | undefined; danger?: boolean; fields: Interpolation; locale: Locale }): Html {
  const mine = opts.state?.form === opts.id ? opts.state : undefined;
  const other = mine ? Object.entries(mine.errors).filter(([k]) => k === '_' || k === 'body') : [];
  return html`<form class="stack" id="${opts.id}" method="post" action="${opts.action}" novalidate>
${mine?.message || other.length ? html`<div class="alert" role="alert">${mine?.message ?? ''}${other.map(([, v]) => html` ${v}`)}</div>` : mine ? html`<div class="alert" role="alert">${opts.locale === 'ja' ? '入力内容を確認してください。' : 'Please check the fields marked below.'}</div>` : ''}
<input type="hidden" name="${CSRF_FIELD}" value="${opts.csrf}">
${opts.fields}
<div><button type="submit"${opts.danger ? html` class="danger"` : ''}>${opts.submit}</button></div>
</form>`;
}

/** POST → redirect → GET, with a short success note in the query. */
export function seeOther(reply: FastifyReply, url: string): FastifyReply {
  return reply.code(303).header('location', url).send();
}

export interface WebDeps {
  ctx: AppContext;
  csrf: CsrfKey;
  /** Drops the cached status page after a change that shows on it. */
  statusChanged: () => void;
}

export type Human = Extract<Principal, { kind: 'operator' | 'customer_user' }>;

/** Thrown by a page that needs someone signed in (of the right kind): the error handler redirects. */
export class RedirectTo extends Error {
  constructor(readonly url: string) {
    super(`redirect to ${url}`);
  }
}

export type Face = 'portal' | 'console';

/** The signed-in person for a face: customers use the portal, the provider's staff the console. */
export function requireHuman(req: FastifyRequest, face: Face): Human {
  const p = req.principal;
  const want = face === 'portal' ? 'customer_user' : 'operator';
  if (!p || p.kind !== want) {
    const back = req.method === 'GET' ? req.url : `/${face}`;
    throw new RedirectTo(`/${face}/sign-in?next=${encodeURIComponent(back)}`);
  }
  return p as Human;
}

