/**
 * Notify benchmark (issue 4): one incident notice to N contacts (default 10,000) through a real
 * SMTP listener running in a child process, measured from posting the notice (the transaction that
 * stores the post, the milestone, the proof rows and the outbox e-mails) to the last message
 * accepted by the listener. Baseline in the same run: raw nodemailer pooled sends of the same
 * messages (same connections, same concurrency) without hokan.
 *
 *   npm run bench -- notify
 *   BENCH_CONTACTS=2000 npm run bench -- notify        (quick)
 *
 * Environment: BENCH_CONTACTS, BENCH_SMTP_CONNECTIONS (default 5), BENCH_DATABASE_URL (PostgreSQL
 * server to create a fresh database on; default PGlite in a data directory), BENCH_TMPDIR.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { createCustomer } from '../src/contracts/customers.js';
import { systemActor } from '../src/core/audit/audit-log.js';
import { systemClock } from '../src/core/clock.js';
import { openIncident } from '../src/incidents/incidents.js';
import { postIncidentNotice } from '../src/notify/notices.js';
import { createMailTransport, deliverDueEmails } from '../src/notify/outbox.js';
import { openBenchDatabase } from './lib/database.js';
import { fixed, renderTable, round, verdict, writeResults } from './lib/report.js';
import { makeTempDir, removeTree } from './lib/tmp.js';

const TARGET_S = 60;
const actor = systemActor('benchmark');

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`${name} must be a whole number ≥ ${min}, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('usage: npm run bench -- notify\n  env: BENCH_CONTACTS BENCH_SMTP_CONNECTIONS BENCH_DATABASE_URL BENCH_TMPDIR\n');
  process.exit(0);
}
if (args.length > 0) {
  process.stderr.write(`notify: unknown argument(s) ${args.join(' ')}\n`);
  process.exit(2);
}
const contacts = envInt('BENCH_CONTACTS', 10_000, 1);
const connections = envInt('BENCH_SMTP_CONNECTIONS', 5, 1);
const FROM = 'hokan <noreply@bench.example.jp>';

class Sink {
  readonly #child: ChildProcess;
  readonly port: Promise<number>;
  #waiter: ((at: number) => void) | undefined;
  constructor() {
    this.#child = fork(fileURLToPath(new URL('./lib/smtp-sink.mjs', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.port = new Promise((resolve) => {
      this.#child.on('message', (m: { ready?: number; done?: number; lastAt?: number }) => {
        if (m.ready) resolve(m.ready);
        if (m.done !== undefined && m.lastAt !== undefined) this.#waiter?.(m.lastAt);
      });
    });
  }
  /** Resolves with the wall-clock time (ms) the n-th message was accepted. */
  expect(n: number): Promise<number> {
    return new Promise((resolve) => {
      this.#waiter = resolve;
      this.#child.send({ expect: n });
    });
  }
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve());
      this.#child.send({ stop: true });
    });
  }
}

const tmp = makeTempDir('hokan-bench-notify');
const sink = new Sink();
const port = await sink.port;
const smtpUrl = `smtp://127.0.0.1:${port}`;
const database = await openBenchDatabase(tmp, process.env.BENCH_DATABASE_URL || undefined);
try {
  const db = database.db;
  const clock = systemClock;
  const customer = await createCustomer(db, clock, actor, { code: 'bench', name: 'ベンチマーク株式会社', contactEmail: 'desk@bench.example.jp' });
  // Set-up (not measured): N-1 registered contacts plus the customer's contact e-mail = N recipients.
  const rows = Array.from({ length: contacts - 1 }, (_, i) => ({ id: randomUUID(), customer_id: customer.id, email: `contact${i}@bench.example.jp`, name: '', lang: i % 4 === 0 ? ('en' as const) : ('ja' as const), created_at: clock.now(), created_by: 'bench' }));
  for (let i = 0; i < rows.length; i += 1000) await db.insertInto('notice_contacts').values(rows.slice(i, i + 1000)).execute();
  const incident = await openIncident(db, clock, actor, { title: 'データAPIに接続しにくい状態', severity: 'major', occurredAt: new Date(clock.now().getTime() - 10 * 60_000), customerIds: [customer.id] });

  // hokan: post (one transaction), then the delivery job's work until the listener has them all.
  const hokanDone = sink.expect(contacts);
  const t0 = Date.now();
  const posted = await postIncidentNotice(db, clock, actor, incident.id, { stage: 'first', fields: {} }, { providerName: 'ベンチマーク事業者', publicUrl: 'https://status.example.jp' });
  const queuedAt = Date.now();
  const transport = createMailTransport(smtpUrl, FROM, { maxConnections: connections });
  const result = await deliverDueEmails(db, clock, transport, { batch: 200, concurrency: connections * 4 });
  const lastAccepted = await hokanDone;
  transport.close();
  if (posted.emails !== contacts || result.sent !== contacts) throw new Error(`expected ${contacts} e-mails, queued ${posted.emails}, sent ${result.sent} (${JSON.stringify(result)})`);
  const seconds = (lastAccepted - t0) / 1000;
  const queueSeconds = (queuedAt - t0) / 1000;

  // Baseline: the same messages, raw nodemailer pooled sends, same connections and concurrency.
  const messages = await db
    .selectFrom('outbound_emails as e')
    .leftJoin('outbound_email_bodies as b', 'b.id', 'e.body_id')
    .select(['e.to_address', 'e.subject', (eb) => eb.fn.coalesce('b.text_body', 'e.text_body').as('text_body')])
    .where('e.dedupe_key', 'like', `notice:${posted.post.id}:%`)
    .execute();
  const raw = nodemailer.createTransport({ url: smtpUrl, pool: true, maxConnections: connections, maxMessages: 1000 } as SMTPTransport.Options, { from: FROM });
  const baseDone = sink.expect(messages.length);
  const b0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: connections * 4 }, async () => {
      while (next < messages.length) {
        const m = messages[next++]!;
        await raw.sendMail({ to: m.to_address, subject: m.subject, text: m.text_body });
      }
    }),
  );
  const baseLast = await baseDone;
  raw.close();
  const baselineSeconds = (baseLast - b0) / 1000;

  const perS = contacts / seconds;
  const ratio = seconds / baselineSeconds;
  const ok = seconds <= TARGET_S;
  process.stdout.write(
    renderTable(
      `notify benchmark — one notice to ${contacts} contacts, ${connections} SMTP connections, ${database.label}`,
      [
        { metric: 'contacts', value: String(contacts) },
        { metric: 'post + queue (s)', value: fixed(queueSeconds, 2) },
        { metric: 'post → last accepted (s)', value: fixed(seconds, 2), target: `≤ ${TARGET_S}`, verdict: verdict(ok) },
        { metric: 'messages per second', value: fixed(perS, 0) },
        { metric: 'baseline: raw nodemailer (s)', value: fixed(baselineSeconds, 2) },
        { metric: 'ratio hokan / baseline', value: fixed(ratio, 2) },
      ],
      ['The SMTP listener runs in a child process; hokan includes the posting transaction (post, milestone, proof rows, outbox rows) and the claim/settle of every row.'],
    ),
  );
  const file = writeResults('notify', {
    database: database.label,
    smtp_connections: connections,
    contacts,
    seconds: round(seconds, 2),
    per_s: round(perS, 1),
    queue_seconds: round(queueSeconds, 2),
    baseline_seconds: round(baselineSeconds, 2),
    baseline_per_s: round(messages.length / baselineSeconds, 1),
    ratio_to_baseline: round(ratio, 2),
    target_seconds: TARGET_S,
    pass: ok,
  });
  process.stdout.write(`results: ${file}\n`);
} finally {
  await database.close();
  await sink.stop();
  removeTree(tmp);
}
