import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

/**
 * Japanese text must render on a device without Japanese fonts too (a bare Linux desktop, the CI
 * browser): Noto Sans JP, already shipped for the certificate PDF, is the last fallback. Devices
 * with Hiragino, Yu Gothic or Noto CJK never download it (the browser fetches a web font only
 * when an earlier family lacks a glyph).
 */
const FONT_VERSION = '0.4.3';
const FONTS: Record<string, string> = {
  [`/assets/fonts/noto-sans-jp-${FONT_VERSION}-400.ttf`]: '@expo-google-fonts/noto-sans-jp/400Regular/NotoSansJP_400Regular.ttf',
  [`/assets/fonts/noto-sans-jp-${FONT_VERSION}-700.ttf`]: '@expo-google-fonts/noto-sans-jp/700Bold/NotoSansJP_700Bold.ttf',
};
const requireHere = createRequire(import.meta.url);
const fontCache = new Map<string, Buffer>();

/**
 * The one stylesheet. Colours keep a contrast of at least 4.5:1 against their background (WCAG
 * AA); focus is always visible; the layout is a single column on a phone.
 */
const CSS = `
@font-face{font-family:"hokan-jp";src:url(/assets/fonts/noto-sans-jp-${FONT_VERSION}-400.ttf) format("truetype");font-weight:400;font-display:swap}
@font-face{font-family:"hokan-jp";src:url(/assets/fonts/noto-sans-jp-${FONT_VERSION}-700.ttf) format("truetype");font-weight:700;font-display:swap}
:root{--fg:#1a1a1a;--muted:#4a4a4a;--bg:#ffffff;--panel:#f4f5f7;--line:#c9ccd1;--link:#0b57d0;--ok:#0a6b2d;--warn:#8a5a00;--bad:#b00020;--mnt:#1f4e99;--focus:#ffbf47}
*{box-sizing:border-box}
html{font-size:100%;-webkit-text-size-adjust:100%}
body{margin:0;color:var(--fg);background:var(--bg);font-family:"Hiragino Sans","Hiragino Kaku Gothic ProN","Yu Gothic","Meiryo","Noto Sans CJK JP","Noto Sans JP",system-ui,"hokan-jp",sans-serif;line-height:1.7}
a{color:var(--link)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid var(--focus);outline-offset:2px;box-shadow:0 0 0 5px var(--fg)}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--bg);padding:4px 8px;z-index:9}
header.site{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;justify-content:space-between;padding:.75rem 1rem;border-bottom:1px solid var(--line);background:var(--panel)}
header.site .brand{font-weight:700;font-size:1.15rem;color:var(--fg);text-decoration:none}
nav.main ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
nav.main a[aria-current=page]{font-weight:700;text-decoration:none;color:var(--fg)}
.lang{font-size:.95rem}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.25rem;margin:1.75rem 0 .5rem}h3{font-size:1.05rem;margin:1.25rem 0 .25rem}
.muted{color:var(--muted)}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:1rem;margin:.75rem 0}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.95rem}
th,td{border-bottom:1px solid var(--line);padding:.4rem .5rem;text-align:left;vertical-align:top}
th{background:var(--panel)}
.table-wrap{overflow-x:auto}
form.stack{display:grid;gap:.75rem;max-width:36rem}
form.inline{display:inline}
label{font-weight:600;display:block}
input,select,textarea{font:inherit;color:var(--fg);background:var(--bg);border:1px solid #6b6f76;border-radius:4px;padding:.45rem .55rem;width:100%;max-width:36rem}
input[type=checkbox],input[type=radio]{width:auto;min-width:1.25rem;min-height:1.25rem}
label.inline-label{display:inline}
button,.button{font:inherit;display:inline-block;background:#0b57d0;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;cursor:pointer;text-decoration:none;min-height:44px}
button.secondary{background:#e6e8eb;color:var(--fg);border:1px solid #6b6f76}
button.danger{background:var(--bad)}
.field-error{color:var(--bad);font-weight:600;margin:.2rem 0 0}
.alert{border-left:6px solid var(--bad);background:#fdecee;padding:.75rem 1rem;margin:1rem 0}
.notice{border-left:6px solid var(--ok);background:#e7f4ea;padding:.75rem 1rem;margin:1rem 0}
.hint{color:var(--muted);font-size:.9rem;margin:.1rem 0}
.status{font-weight:700}
.s-operational{color:var(--ok)}.s-degraded{color:var(--warn)}.s-outage{color:var(--bad)}.s-maintenance{color:var(--mnt)}
.banner{padding:1rem;border-radius:6px;margin:1rem 0;font-size:1.15rem;font-weight:700;color:#fff}
.b-operational{background:var(--ok)}.b-degraded{background:var(--warn)}.b-outage{background:var(--bad)}.b-maintenance{background:var(--mnt)}
.component{border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem;margin:.75rem 0}
.component-head{display:flex;justify-content:space-between;gap:1rem;flex-wrap:wrap}
svg.bars{width:100%;height:34px;display:block;margin:.4rem 0}
svg.chart{width:100%;max-width:48rem;height:auto;display:block}
.bars-legend{display:flex;justify-content:space-between;font-size:.85rem;color:var(--muted)}
ol.posts{list-style:none;padding:0;margin:.5rem 0}
ol.posts li{border-left:4px solid var(--line);padding:.25rem .75rem;margin:.5rem 0}
.post-label{font-weight:700}
.progress{width:100%;max-width:36rem;height:1.5rem}
ins.d{background:#d8f0de;color:#0a3d1a;text-decoration:underline}del.d{background:#fbe0e3;color:#6b0013;text-decoration:line-through}.diff-line{white-space:pre-wrap;margin:.1rem 0;font-size:.95rem}.tag{display:inline-block;border:1px solid var(--line);border-radius:3px;padding:0 .4rem;font-size:.85rem;font-weight:600;margin-left:.5rem}.tag-added{background:#d8f0de}.tag-removed{background:#fbe0e3}.tag-changed{background:#fff1cc}.terms p{margin:.25rem 0}.terms ul{margin:.25rem 0 .5rem}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
dl.facts{display:grid;grid-template-columns:minmax(8rem,max-content) 1fr;gap:.25rem 1rem;margin:.5rem 0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
details.action{border:1px solid var(--line);border-radius:6px;padding:.5rem .75rem;margin:.5rem 0}
details.action summary{cursor:pointer;font-weight:600}
footer.site{border-top:1px solid var(--line);margin-top:2rem;padding:1rem;color:var(--muted);font-size:.9rem;text-align:center}
@media (max-width:40rem){dl.facts{grid-template-columns:1fr}main{padding:.75rem}h1{font-size:1.35rem}}
`.trim();

export const CSS_BUFFER = Buffer.from(CSS, 'utf8');
const HASH = createHash('sha256').update(CSS_BUFFER).digest('hex').slice(0, 12);
/** Hashed name: a new stylesheet is a new URL, so the old one may be cached for a year. */
export const CSS_PATH = `/assets/hokan.${HASH}.css`;
export const CSS_ETAG = `"${HASH}"`;

export function registerAssetRoutes(app: FastifyInstance): void {
  const send = (ifNoneMatch: string | undefined, reply: import('fastify').FastifyReply, immutable: boolean) => {
    reply.header('etag', CSS_ETAG).header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'public, max-age=300');
    if (ifNoneMatch === CSS_ETAG) return reply.code(304).send();
    return reply.type('text/css; charset=utf-8').send(CSS_BUFFER);
  };
  app.get(CSS_PATH, { schema: { hide: true } }, async (req, reply) => send(req.headers['if-none-match'], reply, true));
  // The stable name (used by the status benchmark as its static baseline) revalidates by ETag.
  app.get('/assets/hokan.css', { schema: { hide: true } }, async (req, reply) => send(req.headers['if-none-match'], reply, false));
  for (const [path, file] of Object.entries(FONTS)) {
    app.get(path, { schema: { hide: true } }, async (_req, reply) => {
      let buf = fontCache.get(path);
      if (!buf) {
        buf = readFileSync(requireHere.resolve(file));
        fontCache.set(path, buf);
      }
      return reply.header('cache-control', 'public, max-age=31536000, immutable').type('font/ttf').send(buf);
    });
  }
}
