import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Locale } from '../core/i18n.js';
import type { AppContext } from '../http/context.js';
import { statusSnapshot, type ComponentStatus, type StatusComponent, type StatusIncident, type StatusSnapshot, type StatusStop } from '../notify/status-snapshot.js';
import { escapeHtml, html, raw, type Html } from './html.js';
import { fmtTime, localeOf, translator, type T } from './i18n.js';
import { page, PAGE_CSP, PAGE_REFERRER_POLICY } from './layout.js';

/** How long a rendered status page is served before it is rendered again (and its max-age). */
export const STATUS_CACHE_SECONDS = 5;

const STATUS_LABEL: Record<ComponentStatus, [string, string]> = {
  operational: ['正常に稼働しています', 'Operational'],
  degraded: ['一部に障害が発生しています', 'Degraded'],
  outage: ['障害が発生しています', 'Outage'],
  maintenance: ['メンテナンス中です', 'Under maintenance'],
};
const OVERALL_LABEL: Record<ComponentStatus, [string, string]> = {
  operational: ['すべてのサービスは正常に稼働しています', 'All services are operating normally'],
  degraded: ['一部のサービスに障害が発生しています', 'Some services are degraded'],
  outage: ['サービスに障害が発生しています', 'A service outage is in progress'],
  maintenance: ['メンテナンスを実施中です', 'Maintenance is in progress'],
};
const SEVERITY: Record<StatusIncident['severity'], [string, string]> = { critical: ['重大', 'Critical'], major: ['重要', 'Major'], minor: ['軽微', 'Minor'] };
const BAR_COLOR = { none: '#0a6b2d', maintenance: '#1f4e99', minor: '#8a5a00', major: '#c2410c', critical: '#b00020' } as const;
const WORST_LABEL = { none: ['問題なし', 'no issues'], maintenance: ['メンテナンス', 'maintenance'], minor: ['軽微な障害', 'minor incident'], major: ['重要な障害', 'major incident'], critical: ['重大な障害', 'critical incident'] } as const;

function availabilityBars(c: StatusComponent, locale: Locale, t: T): Html {
  const n = c.days.length;
  const w = 6;
  const gap = 2;
  const known = c.days.filter((d) => d.availabilityPct !== null);
  const avg = known.length ? Math.round((known.reduce((s, d) => s + d.availabilityPct!, 0) / known.length) * 100) / 100 : null;
  const bad = c.days.filter((d) => d.worst !== 'none');
  const name = c.name[locale];
  const summary = avg === null
    ? t(`${name}: 過去${n}日間のデータはありません`, `${name}: no data for the last ${n} days`)
    : t(`${name}: 過去${n}日間の稼働率 ${avg}%、問題のあった日 ${bad.length}日`, `${name}: ${avg}% available over the last ${n} days; ${bad.length} day(s) with issues`);
  let svg = `<svg class="bars" viewBox="0 0 ${n * (w + gap)} 34" preserveAspectRatio="none" role="img" aria-label="${escapeHtml(summary)}">`;
  c.days.forEach((d, i) => {
    const fill = d.availabilityPct === null ? '#c9ccd1' : BAR_COLOR[d.worst];
    const label = `${d.date}: ${d.availabilityPct === null ? t('データなし', 'no data') : `${d.availabilityPct}%`} · ${t(WORST_LABEL[d.worst][0], WORST_LABEL[d.worst][1])}`;
    svg += `<rect x="${i * (w + gap)}" y="0" width="${w}" height="34" rx="1" fill="${fill}"><title>${escapeHtml(label)}</title></rect>`;
  });
  svg += '</svg>';
  return html`${raw(svg)}
<div class="bars-legend" aria-hidden="true"><span>${t(`${n}日前`, `${n} days ago`)}</span><span>${avg === null ? '' : t(`稼働率 ${avg}%`, `${avg}% uptime`)}</span><span>${t('今日', 'Today')}</span></div>
<details><summary>${t('日ごとの記録（問題のあった日）', 'Days with issues')}</summary>
${bad.length === 0
  ? html`<p>${t(`過去${n}日間、問題はありませんでした。`, `No issues in the last ${n} days.`)}</p>`
  : html`<table><thead><tr><th scope="col">${t('日付', 'Date')}</th><th scope="col">${t('稼働率', 'Availability')}</th><th scope="col">${t('内容', 'What')}</th></tr></thead><tbody>${bad.map((d) => html`<tr><td>${d.date}</td><td>${d.availabilityPct === null ? '—' : `${d.availabilityPct}%`}</td><td>${t(WORST_LABEL[d.worst][0], WORST_LABEL[d.worst][1])}</td></tr>`)}</tbody></table>`}
</details>`;
}

function incidentBlock(i: StatusIncident, s: StatusSnapshot, locale: Locale, t: T, headingLevel: 'h3' | 'h4'): Html {
  const names = i.components.map((k) => s.components.find((c) => c.key === k)?.name[locale] ?? k).join('・');
  const title = html`${i.title} <span class="muted">(${t(SEVERITY[i.severity][0], SEVERITY[i.severity][1])})</span>`;
  return html`<article class="panel" id="incident-${i.id}">
${headingLevel === 'h3' ? html`<h3>${title}</h3>` : html`<h4>${title}</h4>`}
<dl class="facts">
<dt>${t('対象', 'Affects')}</dt><dd>${names}</dd>
<dt>${t('発生', 'Began')}</dt><dd>${fmtTime(i.occurredAt, locale)}</dd>
<dt>${t('復旧', 'Recovered')}</dt><dd>${i.recoveredAt ? fmtTime(i.recoveredAt, locale) : t('対応中', 'Not yet — we are working on it')}</dd>
</dl>
${i.posts.length
  ? html`<ol class="posts">${i.posts.map((p) => html`<li><p><span class="post-label">${p.label[locale]}</span> · <time datetime="${p.postedAt}">${fmtTime(p.postedAt, locale)}</time></p><p><strong>${p.subject[locale]}</strong></p><p>${p.body[locale]}</p></li>`)}</ol>`
  : ''}
</article>`;
}

function stopBlock(st: StatusStop, s: StatusSnapshot, locale: Locale, t: T): Html {
  const names = st.components.map((k) => s.components.find((c) => c.key === k)?.name[locale] ?? k).join('・');
  return html`<li><strong>${st.kind === 'planned' ? t('計画停止', 'Planned stop') : t('緊急停止', 'Emergency stop')}</strong>: ${st.reason[locale]}<br>
${fmtTime(st.startsAt, locale)} – ${st.endsAt ? fmtTime(st.endsAt, locale) : t('終了未定', 'until further notice')} · ${names}</li>`;
}

export function renderStatusPage(s: StatusSnapshot, locale: Locale): Html {
  const t = translator(locale);
  const body = html`
<div class="banner b-${s.overall}" role="status">${t(OVERALL_LABEL[s.overall][0], OVERALL_LABEL[s.overall][1])}</div>
<p class="muted">${t('最終更新', 'Last updated')}: <time datetime="${s.generatedAt}">${fmtTime(s.generatedAt, locale)}</time></p>

${s.activeIncidents.length ? html`<section aria-labelledby="h-active"><h2 id="h-active">${t('発生中の障害', 'Active incidents')}</h2>${s.activeIncidents.map((i) => incidentBlock(i, s, locale, t, 'h3'))}</section>` : ''}
${s.activeStops.length ? html`<section aria-labelledby="h-stops-now"><h2 id="h-stops-now">${t('停止中', 'Stopped now')}</h2><ul>${s.activeStops.map((st) => stopBlock(st, s, locale, t))}</ul></section>` : ''}

<section aria-labelledby="h-components"><h2 id="h-components">${t('サービスの状態', 'Service status')}</h2>
${s.components.map((c) => html`<div class="component"><div class="component-head"><h3>${c.name[locale]}</h3><span class="status s-${c.status}">${t(STATUS_LABEL[c.status][0], STATUS_LABEL[c.status][1])}</span></div>${availabilityBars(c, locale, t)}</div>`)}
</section>

<section aria-labelledby="h-upcoming"><h2 id="h-upcoming">${t('予定されている計画停止', 'Upcoming planned stops')}</h2>
${s.upcomingStops.length ? html`<ul>${s.upcomingStops.map((st) => stopBlock(st, s, locale, t))}</ul>` : html`<p>${t('予定されている計画停止はありません。', 'No planned stops are scheduled.')}</p>`}
</section>

<section aria-labelledby="h-history"><h2 id="h-history">${t('過去の障害（90日間）', 'Past incidents (90 days)')}</h2>
${s.history.length ? s.history.map((i) => incidentBlock(i, s, locale, t, 'h3')) : html`<p>${t('過去90日間に障害はありませんでした。', 'No incidents in the last 90 days.')}</p>`}
</section>

<section aria-labelledby="h-follow"><h2 id="h-follow">${t('お知らせを受け取る', 'Get notified')}</h2>
<p><a href="/status/feed.atom" type="application/atom+xml">${t('Atomフィード', 'Atom feed')}</a></p>
<form class="stack" method="post" action="/status/subscribe">
<div><label for="sub-email">${t('メールアドレス', 'E-mail address')}</label>
<input id="sub-email" name="email" type="email" autocomplete="email" required maxlength="254" aria-describedby="sub-hint">
<p class="hint" id="sub-hint">${t('確認のメールをお送りします。リンクを開くと登録が完了します。', 'We will send a confirmation e-mail; the subscription starts when you open its link.')}</p></div>
<input type="hidden" name="lang" value="${locale}">
<div><button type="submit">${t('メールで受け取る', 'Subscribe by e-mail')}</button></div>
</form>
</section>`;
  return page({
    locale,
    title: t('サービスの稼働状況', 'Service status'),
    site: t('ステータス', 'Status'),
    home: '/status',
    path: '/status',
    head: html`<link rel="alternate" type="application/atom+xml" href="/status/feed.atom" title="${t('障害・メンテナンス情報', 'Incidents and maintenance')}">`,
    body,
  });
}

interface Rendered {
  body: Buffer;
  etag: string;
  at: number;
}

/**
 * The status page is rendered at most once per language every few seconds and served from memory
 * as a Buffer, so a rush of readers during an incident costs no database work. Concurrent misses
 * share one render. `invalidate()` drops the copy at once (called after incident and stop changes
 * made through this instance; other instances catch up within the TTL).
 */
export class StatusPageCache {
  readonly #entries = new Map<Locale, Rendered>();
  readonly #pending = new Map<Locale, Promise<Rendered>>();
  #generation = 0;

  constructor(
    private readonly render: (locale: Locale) => Promise<Buffer>,
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async get(locale: Locale): Promise<Rendered> {
    const hit = this.#entries.get(locale);
    if (hit && this.now() - hit.at < this.ttlMs) return hit;
    const pending = this.#pending.get(locale);
    if (pending) return pending;
    const generation = this.#generation;
    const p = this.render(locale)
      .then((body) => {
        const r = { body, etag: `"${createHash('sha1').update(body).digest('base64url')}"`, at: this.now() };
        if (generation === this.#generation) this.#entries.set(locale, r);
        return r;
      })
      .finally(() => this.#pending.delete(locale));
    this.#pending.set(locale, p);
    return p;
  }

  invalidate(): void {
    this.#generation++;
    this.#entries.clear();
  }
}

export function createStatusPageCache(ctx: AppContext): StatusPageCache {
  // The cache's age is measured on the injectable clock too, so tests move time instead of sleeping.
  return new StatusPageCache(async (locale) => Buffer.from(renderStatusPage(await statusSnapshot(ctx.db, ctx.clock), locale).value, 'utf8'), STATUS_CACHE_SECONDS * 1000, () => ctx.clock.now().getTime());
}

export function registerStatusPage(app: FastifyInstance, cache: StatusPageCache): void {
  app.get('/status', { schema: { hide: true } }, async (req: FastifyRequest, reply: FastifyReply) => {
    const locale = localeOf(req);
    const r = await cache.get(locale);
    reply
      .header('etag', r.etag)
      .header('cache-control', `public, max-age=${STATUS_CACHE_SECONDS}`)
      .header('content-security-policy', PAGE_CSP)
      .header('referrer-policy', PAGE_REFERRER_POLICY)
      .header('content-language', locale);
    // Without ?lang the language comes from the cookie, so shared caches must keep them apart.
    if ((req.query as Record<string, unknown>)['lang'] === undefined) reply.header('vary', 'Cookie');
    if (req.headers['if-none-match'] === r.etag) return reply.code(304).send();
    return reply.type('text/html; charset=utf-8').send(r.body);
  });
}
