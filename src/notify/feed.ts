import type { DbOrTx } from '../core/db/database.js';
import { formatJapanDateTime } from '../core/japan-time.js';
import { listPublicPosts } from './notices.js';

/** XML text and attribute escaping; characters XML 1.0 forbids are dropped. */
export function escapeXml(s: string): string {
  return s
    .replace(/[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/**
 * The status posts as an Atom 1.0 feed (RFC 4287), newest first: title in Japanese and English,
 * content as plain text (Japanese, then English) with Japan times, `updated` in ISO 8601.
 */
export async function statusAtomFeed(db: DbOrTx, ctx: { publicUrl: string; providerName: string; now: Date }): Promise<string> {
  const posts = await listPublicPosts(db, 50);
  const self = `${ctx.publicUrl}/status/feed.atom`;
  const updated = posts[0]?.postedAt ?? new Date(0).toISOString();
  const entries = posts.map((p) => {
    const kind = p.incidentId ? `incident/${p.incidentId}` : `stop/${p.stopId}`;
    const content = [`掲載: ${formatJapanDateTime(new Date(p.postedAt))}`, '', p.body.ja, '', '――――――', '', `Posted: ${p.postedAt}`, '', p.body.en].join('\n');
    return [
      '  <entry>',
      `    <id>urn:uuid:${p.id}</id>`,
      `    <title>${escapeXml(`${p.subject.ja} / ${p.subject.en}`)}</title>`,
      `    <updated>${p.postedAt}</updated>`,
      `    <published>${p.postedAt}</published>`,
      `    <link rel="alternate" type="text/html" href="${escapeXml(`${ctx.publicUrl}/status#${p.id}`)}"/>`,
      `    <category term="${escapeXml(p.stage)}" label="${escapeXml(`${p.label.ja} / ${p.label.en}`)}"/>`,
      `    <summary>${escapeXml(`${p.label.ja} / ${p.label.en} (${kind})`)}</summary>`,
      `    <content type="text" xml:lang="ja">${escapeXml(content)}</content>`,
      '  </entry>',
    ].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ja">',
    `  <id>${escapeXml(self)}</id>`,
    `  <title>${escapeXml(`${ctx.providerName} 障害・メンテナンス情報 / Status`)}</title>`,
    `  <updated>${updated}</updated>`,
    `  <author><name>${escapeXml(ctx.providerName)}</name></author>`,
    `  <link rel="self" type="application/atom+xml" href="${escapeXml(self)}"/>`,
    `  <link rel="alternate" type="text/html" href="${escapeXml(`${ctx.publicUrl}/status`)}"/>`,
    ...entries,
    '</feed>',
    '',
  ].join('\n');
}
