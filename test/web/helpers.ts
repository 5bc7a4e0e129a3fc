import type { LightMyRequestResponse } from 'fastify';
import type { TestApp } from '../helpers/app.js';
import { TEST_PASSWORD } from '../helpers/app.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** The cookies a response sets, as a Cookie header merged over `prev`. */
export function mergeCookies(prev: string, res: LightMyRequestResponse): string {
  const jar = new Map(prev.split('; ').filter(Boolean).map((c) => c.split('=', 2) as [string, string]));
  for (const c of res.cookies) {
    if (c.value === '' || (c.expires && c.expires.getTime() < Date.now() - 86_400_000 * 365 * 10)) jar.delete(c.name);
    else jar.set(c.name, c.value);
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

export const csrfOf = (body: string): string => {
  const m = /name="_csrf" value="([^"]+)"/.exec(body);
  if (!m) throw new Error('no CSRF token on the page');
  return m[1]!;
};

/** Signs in through the web form (pre-session CSRF token included) and returns the cookie header. */
export async function webSignIn(app: TestApp, face: 'portal' | 'console', loginId: string, password = TEST_PASSWORD): Promise<string> {
  const page = await app.request({ method: 'GET', url: `/${face}/sign-in` });
  let cookie = mergeCookies('', page);
  const res = await app.request({ method: 'POST', url: `/${face}/sign-in`, headers: { ...FORM, cookie }, payload: new URLSearchParams({ _csrf: csrfOf(page.body), loginId, password }).toString() });
  if (res.statusCode !== 303) throw new Error(`web sign-in of ${loginId} failed: ${res.statusCode} ${res.body.slice(0, 300)}`);
  cookie = mergeCookies(cookie, res);
  return cookie;
}

/** GETs a page, then posts one of its forms with the page's CSRF token. */
export async function postForm(app: TestApp, cookie: string, pageUrl: string, action: string, fields: Record<string, string | string[]>): Promise<LightMyRequestResponse> {
  const page = await app.request({ method: 'GET', url: pageUrl, headers: { cookie } });
  const body = new URLSearchParams({ _csrf: csrfOf(page.body) });
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
  return app.request({ method: 'POST', url: action, headers: { ...FORM, cookie }, payload: body.toString() });
}
