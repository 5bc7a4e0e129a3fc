import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueEmail } from '../../src/notify/outbox.js';
import { databaseKinds } from '../helpers/databases.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { TestSmtpListener } from '../helpers/smtp.js';

describe.each(databaseKinds)('R8.2 SMTP unavailable for 10 minutes of clock time, on %s', (kind) => {
  const smtp = new TestSmtpListener();
  let app: TestApp;
  beforeAll(async () => {
    await smtp.start();
    app = await startTestApp(kind, '2026-11-24T01:00:00Z', { HOKAN_SMTP_URL: smtp.url });
  });
  afterAll(async () => {
    await app?.close();
    await smtp.stop();
  });

  it('every notice queued during the outage is delivered afterwards, once, by the scheduled job', async () => {
    await smtp.stop();
    const N = 40;
    for (let i = 0; i < N; i++) await queueEmail(app.ctx.db, app.clock, { dedupeKey: `outage:${i}`, to: `c${i}@example.jp`, subject: `障害のお知らせ ${i}`, text: `本文 ${i}` });
    // Ten minutes of polls every 30 s of clock time: the notify.deliver job runs each tick and finds SMTP down.
    for (let t = 0; t < 20; t++) {
      await app.ctx.queue.poll();
      app.clock.advance(30_000);
    }
    expect(smtp.received).toHaveLength(0);
    const during = await app.ctx.db.selectFrom('outbound_emails').select(['state', 'attempts', 'last_error']).execute();
    expect(during.every((r) => r.state === 'queued' && r.attempts >= 3 && /ECONNREFUSED|connect/i.test(r.last_error ?? ''))).toBe(true);

    await smtp.start();
    // The back-off after ten minutes of failures is at most 16 min: keep ticking until it has passed.
    for (let t = 0; t < 40 && smtp.received.length < N; t++) {
      await app.ctx.queue.poll();
      app.clock.advance(30_000);
    }
    // A few more ticks: nothing is sent twice.
    for (let t = 0; t < 6; t++) {
      await app.ctx.queue.poll();
      app.clock.advance(30_000);
    }
    const counts = new Map<string, number>();
    for (const m of smtp.received) for (const to of m.to) counts.set(to, (counts.get(to) ?? 0) + 1);
    expect(counts.size).toBe(N);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const after = await app.ctx.db.selectFrom('outbound_emails').select(['state']).execute();
    expect(after.every((r) => r.state === 'sent')).toBe(true);
  });
});
