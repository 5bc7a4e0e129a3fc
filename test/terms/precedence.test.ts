import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { createNotice, publishNotice, type NoticeChannel } from '../../src/terms/notices.js';
import { governingText } from '../../src/terms/precedence.js';
import { importTermsVersion, publishTermsVersion } from '../../src/terms/versions.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

const TERMS = fs.readFileSync(path.resolve(import.meta.dirname, '../fixtures/terms-of-use.ja.txt'), 'utf8');
const H = 3_600_000;
const T0 = Date.parse('2026-01-05T00:00:00Z');
const actor = systemActor('precedence test');

/** A small deterministic PRNG (mulberry32): the same cases on every run and database. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelNotice {
  id: string;
  topic: string;
  channel: NoticeChannel;
  audience: 'all' | string[];
  publishedAt: number;
  effectiveAt: number;
  body: string;
}

const TOPICS = ['article:7', 'article:7.2', 'article:10', 'offsite_cycle'];

/** The rule of Art. 1.3 written out plainly, to compare the implementation with. */
function expected(notices: ModelNotice[], topic: string, customerId: string, t: number): ModelNotice | 'terms' | null {
  const topics = topic === 'article:7.2' ? ['article:7.2', 'article:7'] : [topic];
  const applicable = notices
    .filter((n) => topics.includes(n.topic) && (n.audience === 'all' || n.audience.includes(customerId)) && n.publishedAt <= t && Math.max(n.effectiveAt, n.publishedAt) <= t)
    .sort((a, b) => a.publishedAt - b.publishedAt || a.effectiveAt - b.effectiveAt || a.id.localeCompare(b.id));
  return applicable.at(-1) ?? (t >= T0 ? 'terms' : null);
}

describe.each(databaseKinds)('R1.3 precedence as a property, on the ManualClock, on %s', (kind) => {
  let app: TestApp;
  const customers: string[] = [];
  const notices: ModelNotice[] = [];
  const random = rng(20261124);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

  async function addNotice(at: number, n: Omit<ModelNotice, 'id' | 'publishedAt' | 'body'>, i: number): Promise<ModelNotice> {
    app.clock.set(new Date(at));
    const body = `お知らせ本文 ${i}`;
    const draft = await createNotice(app.ctx.db, app.clock, actor, {
      channel: n.channel,
      guideEdition: n.channel === 'support_guide' ? `第${i}版` : null,
      topic: n.topic,
      titleJa: `お知らせ ${i}`,
      bodyJa: body,
      effectiveAt: new Date(n.effectiveAt),
      ...(n.audience === 'all' ? {} : { customerIds: n.audience }),
    });
    await publishNotice(app.ctx.db, app.clock, actor, draft.id);
    return { ...n, id: draft.id, publishedAt: at, body };
  }

  beforeAll(async () => {
    app = await startTestApp(kind, new Date(T0).toISOString());
    for (const code of ['aoi', 'beni', 'chiyo']) customers.push((await addCustomerWithContract(app, code)).customer.id);
    const v = await importTermsVersion(app.ctx.db, app.clock, actor, { edition: '6.5版', effectiveDate: '2021-08-16', text: TERMS });
    await publishTermsVersion(app.ctx.db, app.clock, actor, v.version.id);
    // 24 notices over ~20 days: random topic, channel, audience; effective before, at or after publication;
    // every fifth published at the same instant as the one before it, to exercise the tie-break.
    let at = T0 + H;
    for (let i = 1; i <= 24; i++) {
      if (i % 5 !== 0) at += Math.floor(random() * 20 * H) + 60_000;
      const audience = random() < 0.4 ? 'all' : customers.filter(() => random() < 0.5);
      notices.push(await addNotice(at, {
        topic: pick(TOPICS),
        channel: pick(['support_site', 'support_guide'] as const),
        audience: audience === 'all' || audience.length === 0 ? 'all' : audience,
        effectiveAt: at + Math.floor((random() - 0.3) * 72 * H),
      }, i));
    }
  }, 120_000);
  afterAll(async () => app?.close());

  it('R1.3 the governing text is the latest notified applicable notice addressed to the customer, else the terms; nothing addressed to others appears', async () => {
    const end = notices.at(-1)!.publishedAt + 5 * 24 * H;
    let byNotice = 0;
    for (let q = 0; q < 120; q++) {
      const topic = pick(TOPICS);
      const customerId = pick(customers);
      const t = T0 - 24 * H + Math.floor(random() * (end - T0 + 24 * H));
      const answer = await governingText(app.ctx.db, { topic, customerId, at: new Date(t) });
      const want = expected(notices, topic, customerId, t);
      const label = `${topic} ${customerId} ${new Date(t).toISOString()}`;
      if (want === null) expect(answer.governing, label).toBeNull();
      else if (want === 'terms') expect(answer.governing, label).toMatchObject({ kind: 'terms', status: 'governs' });
      else {
        byNotice++;
        expect(answer.governing, label).toMatchObject({ kind: 'notice', id: want.id, status: 'governs', text: { ja: want.body } });
      }
      // Only notices addressed to this customer (or to all) ever appear in its chain.
      const visible = new Set(notices.filter((n) => n.audience === 'all' || n.audience.includes(customerId)).map((n) => n.id));
      for (const s of answer.chain) if (s.kind === 'notice') expect(visible.has(s.id), label).toBe(true);
      // One source governs; every applicable one before it is overridden by the next, which its reason names.
      expect(answer.chain.filter((s) => s.status === 'governs').length, label).toBe(answer.governing ? 1 : 0);
      const ordered = answer.chain.filter((s) => s.status !== 'pending');
      ordered.forEach((s, i) => {
        if (i < ordered.length - 1) {
          expect(s.status, label).toBe('overridden');
          if (s.kind === 'notice') expect(s.reason.ja, label).toContain(ordered[i + 1]!.label.ja);
        }
      });
      for (const s of answer.chain.filter((x) => x.status === 'pending')) expect(new Date(s.appliesFrom ?? s.effectiveAt).getTime(), label).toBeGreaterThan(t);
    }
    // The sample is not vacuous: notices governed often, and so did the terms.
    expect(byNotice).toBeGreaterThan(20);
  }, 120_000);

  it('R1.3 the later notice prevails whatever the channel, and a notice to one customer never changes another\'s answer', async () => {
    const [a, b] = customers as [string, string];
    const probes = Array.from({ length: 12 }, () => ({ topic: pick(TOPICS), t: T0 + Math.floor(random() * 30 * 24 * H) }));
    const before = await Promise.all(probes.map((p) => governingText(app.ctx.db, { topic: p.topic, customerId: a, at: new Date(p.t) })));
    const last = notices.at(-1)!.publishedAt;
    const site = await addNotice(last + H, { topic: 'article:10', channel: 'support_site', audience: [a, b], effectiveAt: last + H }, 101);
    const guide = await addNotice(last + 2 * H, { topic: 'article:10', channel: 'support_guide', audience: [a, b], effectiveAt: last + H }, 102);
    const forB = await addNotice(last + 3 * H, { topic: 'article:10', channel: 'support_site', audience: [b], effectiveAt: last + 3 * H }, 103);
    notices.push(site, guide, forB);
    const t = new Date(last + 4 * H);
    expect((await governingText(app.ctx.db, { topic: 'article:10', customerId: a, at: t })).governing).toMatchObject({ id: guide.id, channel: 'support_guide' });
    expect((await governingText(app.ctx.db, { topic: 'article:10', customerId: b, at: t })).governing).toMatchObject({ id: forB.id });
    // Published later but effective earlier still prevails: it was notified later (Art. 1.3).
    const late = await addNotice(last + 5 * H, { topic: 'article:10', channel: 'support_site', audience: [a], effectiveAt: last }, 104);
    notices.push(late);
    expect((await governingText(app.ctx.db, { topic: 'article:10', customerId: a, at: new Date(last + 5 * H) })).governing).toMatchObject({ id: late.id });
    // Answers for A at times before these notices are unchanged.
    const after = await Promise.all(probes.map((p) => governingText(app.ctx.db, { topic: p.topic, customerId: a, at: new Date(p.t) })));
    probes.forEach((p, i) => {
      if (p.t < last + H) expect(after[i]!.governing?.id ?? null).toBe(before[i]!.governing?.id ?? null);
    });
  }, 120_000);

  it('R2.1 a new version governs a customer from the later of its effective date and its notification', async () => {
    const [a] = customers as [string];
    const base = notices.at(-1)!.publishedAt + 24 * H;
    app.clock.set(new Date(base));
    // Published now, effective in 10 days (Japan date).
    const effective = new Date(base + 10 * 24 * H + 9 * H).toISOString().slice(0, 10);
    const v7 = await importTermsVersion(app.ctx.db, app.clock, actor, { edition: '第七版', effectiveDate: effective, text: TERMS.replace('日次で実施', '毎日実施') });
    await publishTermsVersion(app.ctx.db, app.clock, actor, v7.version.id);
    const startOfDay = Date.parse(`${effective}T00:00:00+09:00`);
    const at = async (ms: number) => (await governingText(app.ctx.db, { topic: 'article:4', customerId: a, at: new Date(ms) })).termsVersion?.edition;
    expect(await at(startOfDay - 1)).toBe('6.5版');
    expect(await at(startOfDay)).toBe('第七版');
    // Effective date already past when published: in force from the notification, not before.
    const later = startOfDay + 5 * 24 * H;
    app.clock.set(new Date(later));
    const v8 = await importTermsVersion(app.ctx.db, app.clock, actor, { edition: '第八版', effectiveDate: effective, text: TERMS.replace('日次で実施', '毎日一回実施') });
    expect(await at(later + H)).toBe('第七版');
    await publishTermsVersion(app.ctx.db, app.clock, actor, v8.version.id);
    expect(await at(later - 1)).toBe('第七版');
    expect(await at(later)).toBe('第八版');
    const answer = await governingText(app.ctx.db, { topic: 'article:4', customerId: a, at: new Date(later - 1) });
    expect(answer.chain.find((s) => s.id === v8.version.id)).toBeUndefined();
  });
});
