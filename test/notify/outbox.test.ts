import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { JobQueue } from '../../src/core/jobs/job-queue.js';
import { registerNotifyJobs } from '../../src/notify/jobs.js';
import { createMailTransport, deliverDueEmails, MAX_ATTEMPTS, queueEmail, retryDelayMs, subjectLine } from '../../src/notify/outbox.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { TestSmtpListener } from '../helpers/smtp.js';

const SUBJECT = '【重要】IDの不正利用の疑いについて / Suspected misuse of your credentials';
const FROM = 'hokan <noreply@hokan.example.jp>';

describe('subjectLine', () => {
  it('turns line breaks and other control characters in names into spaces, so the subject is one header line', () => {
    expect(subjectLine('【警告】ディスク\r\nBcc: x@example.com\t満杯')).toBe('【警告】ディスク Bcc: x@example.com 満杯');
    expect(subjectLine('平常')).toBe('平常');
  });
});

describe.each(databaseKinds)('the e-mail outbox on %s', (kind) => {
  let db: TestDatabase;
  let clock: ManualClock;
  let smtp: TestSmtpListener;

  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
  });
  afterAll(async () => smtp?.stop());
  beforeEach(async () => {
    db = await openTestDatabase(kind);
    clock = new ManualClock('2026-11-24T01:00:00Z');
    smtp.received.length = 0;
  });
  afterEach(async () => db?.close());

  const rows = () => db.db.selectFrom('outbound_emails').selectAll().orderBy('to_address').execute();

  it('queues, delivers once with the right subject and body, and sends nothing more on a second run', async () => {
    const transport = createMailTransport(smtp.url, FROM);
    const id = await db.db.transaction().execute((trx) =>
      queueEmail(trx, clock, { dedupeKey: 'k1', to: 'admin@customer.example.jp', subject: SUBJECT, text: '不正利用の疑いを検知しました。\nWe detected a suspected misuse.' }),
    );
    expect(id).toEqual(expect.any(String));
    expect((await rows())[0]).toMatchObject({ state: 'queued', attempts: 0, sent_at: null });

    expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 1, retried: 0, failed: 0 });
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0]!;
    expect(mail.to).toEqual(['admin@customer.example.jp']);
    expect(mail.subject).toBe(SUBJECT);
    expect(mail.text).toContain('不正利用の疑いを検知しました。');
    expect(mail.text).toContain('We detected a suspected misuse.');
    expect(mail.headers.get('from')).toContain('noreply@hokan.example.jp');
    const [row] = await rows();
    expect(row).toMatchObject({ state: 'sent', attempts: 1, last_error: null, message_id: mail.messageId });
    expect(row!.sent_at).toEqual(clock.now());

    clock.advance(3_600_000);
    expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 0, retried: 0, failed: 0 });
    expect(smtp.received).toHaveLength(1);
  });

  it('R8.1 a run whose relay stalls past half its lease sends nothing more of its claim, so a run that takes the rows over sends each once', async () => {
    const smtpTransport = createMailTransport(smtp.url, FROM);
    for (let i = 1; i <= 4; i++) await queueEmail(db.db, clock, { dedupeKey: `stall-${i}`, to: `u${i}@customer.example.jp`, subject: `s${i}`, text: 't' });
    // The relay stalls on the first message of run A until released (a slow or tarpitting relay).
    let release = () => {};
    const stalled = new Promise<void>((resolve) => (release = resolve));
    let stallFirst = true;
    const stalling: typeof smtpTransport = Object.assign(Object.create(smtpTransport) as typeof smtpTransport, {
      sendMail: async (mail: Parameters<typeof smtpTransport.sendMail>[0]) => {
        if (stallFirst) {
          stallFirst = false;
          await stalled;
        }
        return smtpTransport.sendMail(mail);
      },
    });
    const runA = deliverDueEmails(db.db, clock, stalling, { concurrency: 1 });
    while (stallFirst) await new Promise((r) => setImmediate(r));
    // The lease (5 minutes) runs out while A waits: run B takes all four over and sends them.
    clock.advance(5 * 60_000 + 1_000);
    expect(await deliverDueEmails(db.db, clock, smtpTransport)).toEqual({ sent: 4, retried: 0, failed: 0 });
    release();
    // A's message in flight cannot be called back; the three it had not started are not sent by A,
    // and A counts nothing as sent (B settled them all).
    expect(await runA).toEqual({ sent: 0, retried: 0, failed: 0 });
    // Four e-mails of the same time are claimed in no set order: whichever A had in flight is the one sent twice.
    const sent = smtp.received.map((m) => m.to[0]!);
    expect(sent).toHaveLength(5);
    expect(new Set(sent)).toEqual(new Set(['u1@customer.example.jp', 'u2@customer.example.jp', 'u3@customer.example.jp', 'u4@customer.example.jp']));
    expect((await rows()).every((r) => r.state === 'sent')).toBe(true);
  });

  it('ignores a second e-mail with the same dedupe key, even with other content', async () => {
    expect(await queueEmail(db.db, clock, { dedupeKey: 'same', to: 'a@example.jp', subject: 's', text: 't' })).not.toBeNull();
    expect(await queueEmail(db.db, clock, { dedupeKey: 'same', to: 'b@example.jp', subject: 'other', text: 'other' })).toBeNull();
    expect(await rows()).toHaveLength(1);
    await deliverDueEmails(db.db, clock, createMailTransport(smtp.url, FROM));
    expect(await queueEmail(db.db, clock, { dedupeKey: 'same', to: 'a@example.jp', subject: 's', text: 't' })).toBeNull();
    expect(smtp.received.map((m) => m.to)).toEqual([['a@example.jp']]);
  });

  it('refuses an invalid address with an error naming it', async () => {
    for (const bad of ['not-an-address', 'two@@example.jp', 'a@example.jp, b@example.jp', 'x@example.jp\r\nBcc: y@example.jp', '']) {
      await expect(queueEmail(db.db, clock, { dedupeKey: `bad:${bad}`, to: bad, subject: 's', text: 't' })).rejects.toThrow(`"${bad}" is not a valid e-mail address`);
    }
    expect(await rows()).toHaveLength(0);
  });

  it('keeps e-mails queued while SMTP is down and sends each once after the backoff, when it is back', async () => {
    const transport = createMailTransport(smtp.url, FROM);
    for (const n of [1, 2, 3]) await queueEmail(db.db, clock, { dedupeKey: `down:${n}`, to: `u${n}@example.jp`, subject: `${SUBJECT} #${n}`, text: `body ${n}` });
    await smtp.stop();
    try {
      expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 0, retried: 3, failed: 0 });
      for (const row of await rows()) {
        expect(row).toMatchObject({ state: 'queued', attempts: 1, sent_at: null });
        expect(row.last_error).toMatch(/ECONNREFUSED|connect/i);
        expect(row.next_attempt_at.getTime()).toBe(clock.now().getTime() + 60_000);
      }
      // Before the backoff has passed nothing is tried again.
      clock.advance(30_000);
      expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 0, retried: 0, failed: 0 });
      clock.advance(31_000);
      expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 0, retried: 3, failed: 0 });
      for (const row of await rows()) expect(row.next_attempt_at.getTime()).toBe(clock.now().getTime() + 120_000);
    } finally {
      await smtp.start();
    }
    clock.advance(60_000);
    expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 0, retried: 0, failed: 0 });
    clock.advance(61_000);
    expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 3, retried: 0, failed: 0 });
    expect(await deliverDueEmails(db.db, clock, transport)).toEqual({ sent: 0, retried: 0, failed: 0 });
    expect(smtp.received.map((m) => m.subject).sort()).toEqual([1, 2, 3].map((n) => `${SUBJECT} #${n}`));
    expect((await rows()).map((r) => [r.state, r.attempts])).toEqual([['sent', 3], ['sent', 3], ['sent', 3]]);
  });

  it('backs off 1, 2, 4 … minutes capped at an hour, and gives up after 20 attempts', async () => {
    expect([1, 2, 3, 4, 6, 7, 8, 20].map(retryDelayMs)).toEqual([60_000, 120_000, 240_000, 480_000, 1_920_000, 3_600_000, 3_600_000, 3_600_000]);
    await queueEmail(db.db, clock, { dedupeKey: 'never', to: 'u@example.jp', subject: 's', text: 't' });
    const refusing = { sendMail: async () => Promise.reject(new Error('451 try later')) };
    for (let i = 1; i < MAX_ATTEMPTS; i++) {
      expect(await deliverDueEmails(db.db, clock, refusing)).toEqual({ sent: 0, retried: 1, failed: 0 });
      clock.advance(retryDelayMs(i));
    }
    expect(await deliverDueEmails(db.db, clock, refusing)).toEqual({ sent: 0, retried: 0, failed: 1 });
    expect((await rows())[0]).toMatchObject({ state: 'failed', attempts: MAX_ATTEMPTS, last_error: '451 try later' });
    clock.advance(86_400_000);
    expect(await deliverDueEmails(db.db, clock, createMailTransport(smtp.url, FROM))).toEqual({ sent: 0, retried: 0, failed: 0 });
    expect(smtp.received).toHaveLength(0);
  });

  it('the notify.deliver job sends the outbox every 30 s by the clock; without SMTP the e-mails stay queued', async () => {
    const queue = new JobQueue({ db: db.db, clock, instanceId: 'a' });
    registerNotifyJobs(queue, () => createMailTransport(smtp.url, FROM));
    expect(queue.schedules.find((s) => s.queue === 'notify.deliver')).toMatchObject({ everyMs: 30_000 });
    await queueEmail(db.db, clock, { dedupeKey: 'job', to: 'u@example.jp', subject: SUBJECT, text: 't' });
    await queue.poll();
    expect(smtp.received.map((m) => m.subject)).toEqual([SUBJECT]);

    const idle = new JobQueue({ db: db.db, clock, instanceId: 'b' });
    registerNotifyJobs(idle, () => null);
    await queueEmail(db.db, clock, { dedupeKey: 'job2', to: 'v@example.jp', subject: SUBJECT, text: 't' });
    clock.advance(30_000);
    await idle.poll();
    expect((await rows()).find((r) => r.dedupe_key === 'job2')).toMatchObject({ state: 'queued', attempts: 0 });
  });

  it.skipIf(kind !== 'postgres')('two instances delivering at once send each e-mail once', async () => {
    const slow = new TestSmtpListener(15);
    await slow.start();
    let second: DatabaseHandle | undefined;
    try {
      second = await openDatabase({ kind: 'postgres', url: db.url! });
      for (let n = 0; n < 30; n++) await queueEmail(db.db, clock, { dedupeKey: `c:${n}`, to: `u${n}@example.jp`, subject: `s${n}`, text: 't' });
      const [a, b] = await Promise.all([
        deliverDueEmails(db.db, clock, createMailTransport(slow.url, FROM), { batch: 3 }),
        deliverDueEmails(second.db, clock, createMailTransport(slow.url, FROM), { batch: 3 }),
      ]);
      expect(a.sent + b.sent).toBe(30);
      expect(a.sent).toBeGreaterThan(0);
      expect(b.sent).toBeGreaterThan(0);
      const subjects = slow.received.map((m) => m.subject);
      expect(subjects).toHaveLength(30);
      expect(new Set(subjects).size).toBe(30);
      expect((await rows()).every((r) => r.state === 'sent' && r.attempts === 1)).toBe(true);
    } finally {
      await second?.close();
      await slow.stop();
    }
  });
});
