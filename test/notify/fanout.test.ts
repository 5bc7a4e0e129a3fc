import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { createCustomer } from '../../src/contracts/customers.js';
import { systemActor } from '../../src/core/audit/audit-log.js';
import { ManualClock } from '../../src/core/clock.js';
import { openDatabase, type DatabaseHandle } from '../../src/core/db/database.js';
import { openIncident } from '../../src/incidents/incidents.js';
import { postIncidentNotice } from '../../src/notify/notices.js';
import { createMailTransport, deliverDueEmails } from '../../src/notify/outbox.js';
import { databaseKinds, openTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { TestSmtpListener } from '../helpers/smtp.js';

const actor = systemActor('test');
const CONTACTS = 400;

describe.each(databaseKinds)('notice fan-out on %s', (kind) => {
  let smtp: TestSmtpListener;
  let db: TestDatabase;
  let second: DatabaseHandle | undefined;
  beforeAll(async () => {
    smtp = new TestSmtpListener();
    await smtp.start();
  });
  afterAll(async () => smtp?.stop());
  afterEach(async () => {
    await second?.close();
    second = undefined;
    await db?.close();
  });

  it('R8.1 one notice to hundreds of contacts is queued in one transaction, and two delivery workers never send a message twice', async () => {
    db = await openTestDatabase(kind);
    const clock = new ManualClock('2026-11-24T01:30:00Z');
    const customer = await createCustomer(db.db, clock, actor, { code: 'fan', name: 'ファン株式会社', contactEmail: 'desk@fan.example.jp' });
    const rows = Array.from({ length: CONTACTS }, (_, i) => ({ id: randomUUID(), customer_id: customer.id, email: `c${i}@fan.example.jp`, name: '', lang: i % 3 === 0 ? ('en' as const) : ('ja' as const), created_at: clock.now(), created_by: 'test' }));
    await db.db.insertInto('notice_contacts').values(rows).execute();
    const incident = await openIncident(db.db, clock, actor, { title: '大規模障害', severity: 'critical', occurredAt: new Date('2026-11-24T01:00:00Z'), customerIds: [customer.id] });
    const posted = await postIncidentNotice(db.db, clock, actor, incident.id, { stage: 'first', fields: {} }, { providerName: 'P', publicUrl: 'https://status.example.jp' });
    expect(posted).toMatchObject({ recipients: CONTACTS + 1, emails: CONTACTS + 1 });

    // A second instance: its own connection pool on PostgreSQL; on PGlite (one session) the same handle.
    second = kind === 'postgres' ? await openDatabase({ kind: 'postgres', url: db.url! }) : undefined;
    const t1 = createMailTransport(smtp.url, 'a <a@hokan.example.jp>', { maxConnections: 3 });
    const t2 = createMailTransport(smtp.url, 'b <b@hokan.example.jp>', { maxConnections: 3 });
    const [r1, r2] = await Promise.all([deliverDueEmails(db.db, clock, t1, { batch: 25 }), deliverDueEmails((second ?? db).db, clock, t2, { batch: 25 })]);
    t1.close();
    t2.close();
    expect(r1.sent + r2.sent).toBe(CONTACTS + 1);
    if (kind === 'postgres') expect(Math.min(r1.sent, r2.sent)).toBeGreaterThan(0);
    const to = smtp.received.map((m) => m.to[0]!);
    expect(to).toHaveLength(CONTACTS + 1);
    expect(new Set(to).size).toBe(CONTACTS + 1);
    expect(new Set(smtp.received.map((m) => m.messageId)).size).toBe(CONTACTS + 1);
    const en = smtp.received.find((m) => m.to[0] === 'c0@fan.example.jp')!;
    expect(en.subject).toBe('[Important] Incident notice (1st report)');
    const states = await db.db.selectFrom('outbound_emails').select(['state', 'attempts']).execute();
    expect(states.every((s) => s.state === 'sent' && s.attempts === 1)).toBe(true);
  });
});
