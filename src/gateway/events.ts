import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';

export type GatewayEventKind = 'abroad_refused' | 'ids' | 'misuse' | 'admission_rejected';

export interface GatewayEvent {
  kind: GatewayEventKind;
  class: string;
  ruleId?: string | null;
  action: string;
  sourceIp?: string | null;
  country?: string | null;
  customerId?: string | null;
  credentialId?: string | null;
  method?: string | null;
  path?: string | null;
  sample?: string | null;
  details?: Record<string, unknown>;
}

const MAX_BUFFER = 10_000;
const FLUSH_EVERY_MS = 1000;
const BATCH = 500;

/**
 * Every refusal and finding is recorded (R4.1, R12.2), but an attack must not turn into a write
 * per request: events are buffered and written in batches once a second. Under a flood the buffer
 * is bounded; what overflows is counted, and the count itself is recorded.
 */
export class GatewayEventRecorder {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  #buffer: Array<GatewayEvent & { at: Date }> = [];
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(db: Db, clock: Clock, logger?: Logger) {
    this.#db = db;
    this.#clock = clock;
    this.#logger = logger;
  }

  record(event: GatewayEvent): void {
    if (this.#buffer.length >= MAX_BUFFER) {
      this.#dropped++;
      return;
    }
    this.#buffer.push({ ...event, at: this.#clock.now() });
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), FLUSH_EVERY_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  /** Writes what is buffered; tests call it directly instead of waiting. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write()).catch((err: unknown) => {
      this.#logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'gateway events could not be written');
    });
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#dropped > 0) {
      this.#buffer.push({ kind: 'admission_rejected', class: 'event_overflow', action: 'dropped', details: { dropped: this.#dropped }, at: this.#clock.now() });
      this.#dropped = 0;
    }
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, BATCH);
      await this.#db
        .insertInto('gateway_events')
        .values(
          batch.map((e) => ({
            at: e.at,
            kind: e.kind,
            class: e.class,
            rule_id: e.ruleId ?? null,
            action: e.action,
            source_ip: e.sourceIp ?? null,
            country: e.country ?? null,
            customer_id: e.customerId ?? null,
            credential_id: e.credentialId ?? null,
            method: e.method ?? null,
            path: e.path ? e.path.slice(0, 500) : null,
            sample: e.sample ? e.sample.slice(0, 500) : null,
            details: JSON.stringify(e.details ?? {}),
          })),
        )
        .execute();
    }
  }
}

export interface GatewayStatistics {
  from: string;
  to: string;
  byKindAndClass: Array<{ kind: string; class: string; action: string; count: number }>;
  byDay: Array<{ day: string; kind: string; count: number }>;
  byCustomer: Array<{ customerId: string | null; kind: string; count: number }>;
  topSources: Array<{ sourceIp: string | null; country: string | null; count: number }>;
}

/** R12.2: the IDS and refusal records, aggregated by class, Japan day and customer. */
export async function gatewayStatistics(db: Db, range: { from: Date; to: Date; customerId?: string }): Promise<GatewayStatistics> {
  const base = () => {
    let q = db.selectFrom('gateway_events').where('at', '>=', range.from).where('at', '<', range.to);
    if (range.customerId) q = q.where('customer_id', '=', range.customerId);
    return q;
  };
  const byKindAndClass = await base()
    .select(['kind', 'class', 'action', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy(['kind', 'class', 'action'])
    .orderBy('kind')
    .orderBy('class')
    .execute();
  const day = sql<string>`to_char(at at time zone 'Asia/Tokyo', 'YYYY-MM-DD')`;
  const byDay = await base()
    .select([day.as('day'), 'kind', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy([day, 'kind'])
    .orderBy(day)
    .execute();
  const byCustomer = await base()
    .select(['customer_id', 'kind', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy(['customer_id', 'kind'])
    .execute();
  const topSources = await base()
    .select(['source_ip', 'country', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy(['source_ip', 'country'])
    .orderBy(sql`count(*)`, 'desc')
    .limit(20)
    .execute();
  return {
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    byKindAndClass: byKindAndClass.map((r) => ({ kind: r.kind, class: r.class, action: r.action, count: Number(r.n) })),
    byDay: byDay.map((r) => ({ day: r.day, kind: r.kind, count: Number(r.n) })),
    byCustomer: byCustomer.map((r) => ({ customerId: r.customer_id, kind: r.kind, count: Number(r.n) })),
    topSources: topSources.map((r) => ({ sourceIp: r.source_ip, country: r.country, count: Number(r.n) })),
  };
}
