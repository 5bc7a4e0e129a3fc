import type { FastifyReply } from 'fastify';
import type { Locale } from '../core/i18n.js';
import { CSS_PATH } from './assets.js';
import { html, type Html, type Interpolation } from './html.js';

/**
 * Same-origin form posts must carry their Origin (the CSRF layer of src/http/server.ts checks it);
 * with the API's `no-referrer`, Chromium sends `Origin: null`. Nothing leaks to other sites.
 */
export const PAGE_REFERRER_POLICY = 'same-origin';

/** Pages load only our stylesheet; no script at all, forms post to ourselves. */
export const PAGE_CSP = "default-src 'none'; style-src 'self'; font-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface NavItem {
  href: string;
  label: string;
  current?: boolean;
}

export interface PageInput {
  locale: Locale;
  title: string;
  /** The site name in the header: ステータス, お客様ポータル, 運用コンソール. */
  site: string;
  home: string;
  nav?: NavItem[];
  /** URL of this page without `lang`, for the language switch. */
  path: string;
  /** Extra bits for <head>, e.g. a meta refresh while a job runs. */
  head?: Html;
  user?: Html;
  body: Interpolation;
}

function withLang(path: string, lang: Locale): string {
  const [p, q = ''] = path.split('?', 2) as [string, string?];
  const params = new URLSearchParams(q);
  params.set('lang', lang);
  return `${p}?${params.toString()}`;
}

export function page(input: PageInput): Html {
  const { locale } = input;
  const other: Locale = locale === 'ja' ? 'en' : 'ja';
  return html`<!doctype html>
<html lang="${locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${input.title} — ${input.site}</title>
<link rel="stylesheet" href="${CSS_PATH}">
${input.head}
</head>
<body>
<a class="skip" href="#main">${locale === 'ja' ? '本文へ移動' : 'Skip to content'}</a>
<header class="site">
<a class="brand" href="${input.home}">hokan · ${input.site}</a>
${input.nav?.length
  ? html`<nav class="main" aria-label="${locale === 'ja' ? 'メニュー' : 'Menu'}"><ul>${input.nav.map((n) => html`<li><a href="${n.href}"${n.current ? html` aria-current="page"` : ''}>${n.label}</a></li>`)}</ul></nav>`
  : ''}
<div class="lang">${input.user} <a href="${withLang(input.path, other)}" lang="${other}" hreflang="${other}">${other === 'en' ? 'English' : '日本語'}</a></div>
</header>
<main id="main">
<h1>${input.title}</h1>
${input.body}
</main>
<footer class="site">${locale === 'ja' ? '時刻はすべて日本時間（JST）です。' : 'All times are Japan Standard Time (JST).'}</footer>
</body>
</html>`;
}

export function sendPage(reply: FastifyReply, body: Html, status = 200): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', PAGE_CSP)
    .header('referrer-policy', PAGE_REFERRER_POLICY)
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(body.value);
}
