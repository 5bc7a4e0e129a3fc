import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { latestGoodBackup } from '../backup/catalog.js';
import { offsiteStatus } from '../backup/offsite.js';
import type { BackupSettings } from '../backup/settings.js';
import { listContracts } from '../contracts/contracts.js';
import { systemActor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../core/db/database.js';
import { isHokanError } from '../core/errors.js';
import { getIncident, openIncidentIn, recordMilestone } from '../incidents/incidents.js';
import { checkPeriodS, monitorCustomers, targetOfRow, type MonitorRow, type MonitorTarget } from './monitors.js';
import { probeDns, probeHttp, probeTcp, probeTls, type ProbeResult } from './service-probes.js';

/**
 * R12.3②, R8.3: runs the due checks of every monitor, once per scheduled slot across any number of
 * instances, and turns a confirmed failure into an incident (occurred = the first failing check).
 *
 * - Claiming: one UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED) moves each due monitor's
 *   next_check_at one period on and returns the slot it was due at. The claim is the lease: another
 *   instance does not see the monitor again until its next slot, and two instances never take the
 *   same slot. The period is added to the slot, not to the clock, so checks do not drift.
 * - Running: probes of a batch run concurrently under one bound for the whole instance.
 * - Writing: a batch's results are one multi-row INSERT into monitor_results (a narrow row per
 *   check: time, ok, latency, error — what the charts draw) and one UPDATE … FROM (VALUES …) of
 *   the monitors' state; the state write is guarded so a concurrent operator edit wins.
 * - Damping: down after `retries + 1` failures in a row (retried after retry_interval_s), up again
 *   after `recover_after` good checks in a row.
 */
export interface MonitorSchedulerOptions {
  db: Db;
  clock: Clock;
  instanceId: string;
  logger?: Logger;
  /** Needed by the backup-freshness and remote-copy-lag monitors; without it they report a failure. */
  backup?: BackupSettings | null;
  /** Probes in flight at once in this instance. */
  concurrency?: number;
  /** Monitors claimed per statement. */
  batchSize?: number;
  /** A check that starts later than this after its slot counts as late in `stats`. */
  lateThresholdMs?: number;
  /** Called after a monitor opened an incident (e.g. to post the automatic first notice); errors are logged, not thrown. */
  onIncidentOpened?: (incidentId: string, monitorId: string) => void | Promise<void>;
}

export interface CheckRunSummary {
  checked: number;
  failed: number;
  opened: string[];
  recovered: string[];
}

export interface SchedulerStats {
  checks: number;
  late: number;
  maxLateMs: number;
  incidentsOpened: number;
  recoveries: number;
}

type ClaimedMonitor = MonitorRow & { due_at: Date };

interface CheckResult {
  monitor: ClaimedMonitor;
  at: Date;
  probe: ProbeResult;
}

export interface MonitorState {
  state: MonitorRow['state'];
  fail_streak: number;
  ok_streak: number;
  streak_started_at: Date | null;
}

/** The state machine with retries and flap damping; pure, so the rules are tested on their own. */
export function nextMonitorState(
  m: MonitorState & Pick<MonitorRow, 'retries' | 'recover_after'>,
  ok: boolean,
  at: Date,
): MonitorState & { wentDownSince: Date | null; recoveredAt: Date | null } {
  if (ok) {
    const ok_streak = m.ok_streak + 1;
    const streak_started_at = ok_streak === 1 ? at : m.streak_started_at;
    if (m.state === 'down') {
      if (ok_streak >= m.recover_after) return { state: 'up', fail_streak: 0, ok_streak, streak_started_at, wentDownSince: null, recoveredAt: streak_started_at };
      return { state: 'down', fail_streak: 0, ok_streak, streak_started_at, wentDownSince: null, recoveredAt: null };
    }
    return { state: 'up', fail_streak: 0, ok_streak, streak_started_at, wentDownSince: null, recoveredAt: null };
  }
  const fail_streak = m.fail_streak + 1;
  const streak_started_at = fail_streak === 1 ? at : m.streak_started_at;
  if (m.state !== 'down' && fail_streak >= m.retries + 1) return { state: 'down', fail_streak, ok_streak: 0, streak_started_at, wentDownSince: streak_started_at, recoveredAt: null };
  return { state: m.state, fail_streak, ok_streak: 0, streak_started_at, wentDownSince: null, recoveredAt: null };
}

/** A counting semaphore: at most `limit` holders at once. */
class Limiter {
  #active = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
    try {
      return await fn();
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }
}

const HOUR_MS = 3_600_000;

export class MonitorScheduler {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #instanceId: string;
  readonly #logger: Logger | undefined;
  readonly #backup: BackupSettings | null;
  readonly #batchSize: number;
  readonly #lateThresholdMs: number;
  readonly #limiter: Limiter;
  readonly #onIncidentOpened: MonitorSchedulerOptions['onIncidentOpened'];
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly stats: SchedulerStats = { checks: 0, late: 0, maxLateMs: 0, incidentsOpened: 0, recoveries: 0 };
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = true;

  constructor(opts: MonitorSchedulerOptions) {
    this.#db = opts.db;
    this.#clock = opts.clock;
    this.#instanceId = opts.instanceId;
    this.#logger = opts.logger;
    this.#backup = opts.backup ?? null;
    this.#batchSize = opts.batchSize ?? 500;
    this.#lateThresholdMs = opts.lateThresholdMs ?? 1000;
    this.#limiter = new Limiter(opts.concurrency ?? 256);
    this.#onIncidentOpened = opts.onIncidentOpened;
  }

  /** Claims the monitors due at `now` (one batch) and moves them to their next slot. */
  async #claim(now: Date): Promise<ClaimedMonitor[]> {
    const res = await sql<ClaimedMonitor>`
      update monitors m
         set next_check_at = case
               when d.due_at + make_interval(secs => d.period) > ${now}::timestamptz then d.due_at + make_interval(secs => d.period)
               else ${now}::timestamptz + make_interval(secs => d.period)
             end
        from (select id, next_check_at as due_at,
                     case when kind = 'heartbeat' then least(interval_s, 60) else interval_s end as period
                from monitors
               where enabled and next_check_at <= ${now}::timestamptz
               order by next_check_at
               limit ${this.#batchSize}
                 for update skip locked) d
       where m.id = d.id
      returning m.*, d.due_at`.execute(this.#db);
    return res.rows.map((r) => ({ ...r, due_at: new Date(r.due_at) }));
  }

  async #probe(m: ClaimedMonitor, target: MonitorTarget, at: Date): Promise<ProbeResult> {
    switch (target.kind) {
      case 'http':
        return probeHttp(target, m.timeout_ms);
      case 'tcp':
        return probeTcp(target, m.timeout_ms);
      case 'dns':
        return probeDns(target, m.timeout_ms);
      case 'tls':
        return probeTls(target, m.timeout_ms, at);
      case 'heartbeat': {
        // A missed beat: nothing arrived within the period and its grace.
        const last = m.last_beat_at ?? m.created_at;
        const deadline = last.getTime() + (m.interval_s + target.graceSeconds) * 1000;
        return at.getTime() <= deadline ? { ok: true, latencyMs: null, error: null } : { ok: false, latencyMs: null, error: `no heartbeat since ${last.toISOString()} (due every ${m.interval_s} s + ${target.graceSeconds} s grace)` };
      }
      case 'database':
        return this.#withTimeout(m.timeout_ms, async () => {
          await sql`select 1`.execute(this.#db);
        });
      case 'backup_freshness':
        return this.#withTimeout(m.timeout_ms, async () => {
          if (!this.#backup?.primary) throw new Error('backups are not configured (HOKAN_BACKUP_URL)');
          const customers = await this.#scope(m);
          const stale: string[] = [];
          for (const id of customers) {
            const b = await latestGoodBackup(this.#db, id);
            if (!b || at.getTime() - b.started_at.getTime() > target.maxAgeHours * HOUR_MS) stale.push(id);
          }
          if (stale.length) throw new Error(`${stale.length} customer(s) without a good backup in the last ${target.maxAgeHours} h: ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ' …' : ''}`);
        });
      case 'offsite_lag':
        return this.#withTimeout(m.timeout_ms, async () => {
          if (!this.#backup?.offsite) throw new Error('remote copies are not configured (HOKAN_OFFSITE_URL)');
          const scope = m.all_customers ? null : new Set(await this.#scope(m));
          const late = (await offsiteStatus(this.#db, this.#clock, this.#backup)).filter(
            (s) => (!scope || scope.has(s.customerId)) && (s.overdue || (target.maxLagHours !== null && s.lagHours !== null && s.lagHours > target.maxLagHours)),
          );
          if (late.length) throw new Error(`remote copy behind for ${late.length} customer(s): ${late.slice(0, 5).map((s) => `${s.customerId} (${s.lagHours ?? '?'} h)`).join(', ')}`);
        });
    }
  }

  /** The customers a backup monitor looks at: its chosen ones, or every customer with an active contract. */
  async #scope(m: MonitorRow): Promise<string[]> {
    const chosen = await monitorCustomers(this.#db, m.id);
    if (chosen !== 'all') return chosen;
    return [...new Set((await listContracts(this.#db, { status: 'active' })).map((c) => c.customer_id))];
  }

  async #withTimeout(timeoutMs: number, fn: () => Promise<void>): Promise<ProbeResult> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([fn(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)))]);
      return { ok: true, latencyMs: Math.round(performance.now() - t0), error: null };
    } catch (err) {
      return { ok: false, latencyMs: Math.round(performance.now() - t0), error: (err instanceof Error ? err.message : String(err)).slice(0, 500) };
    } finally {
      clearTimeout(timer);
    }
  }

  async #check(m: ClaimedMonitor): Promise<CheckResult> {
    return this.#limiter.run(async () => {
      const at = this.#clock.now();
      const lateMs = at.getTime() - m.due_at.getTime();
      this.stats.checks++;
      if (lateMs > this.#lateThresholdMs) this.stats.late++;
      if (lateMs > this.stats.maxLateMs) this.stats.maxLateMs = lateMs;
      let probe: ProbeResult;
      try {
        probe = await this.#probe(m, targetOfRow(m), at);
      } catch (err) {
        probe = { ok: false, latencyMs: null, error: (err instanceof Error ? err.message : String(err)).slice(0, 500) };
      }
      return { monitor: m, at, probe };
    });
  }

  /** Writes a batch's results and states in two statements, then acts on the state changes. */
  async #persist(results: CheckResult[], summary: CheckRunSummary): Promise<void> {
    if (results.length === 0) return;
    await this.#db
      .insertInto('monitor_results')
      .values(results.map((r) => ({ monitor_id: r.monitor.id, checked_at: r.at, ok: r.probe.ok, latency_ms: r.probe.latencyMs, error: r.probe.error })))
      .onConflict((oc) => oc.columns(['monitor_id', 'checked_at']).doNothing())
      .execute();
    const next = results.map((r) => {
      const s = nextMonitorState(r.monitor, r.probe.ok, r.at);
      // A failure short of "down" is checked again sooner, so retries do not wait a full period.
      const retryAt = !r.probe.ok && s.state !== 'down' ? new Date(r.at.getTime() + r.monitor.retry_interval_s * 1000) : null;
      return { r, s, retryAt };
    });
    const rows = sql.join(
      next.map(({ r, s, retryAt }) =>
        sql`(${r.monitor.id}::uuid, ${s.state}::text, ${s.fail_streak}::integer, ${s.ok_streak}::integer, ${s.streak_started_at}::timestamptz, ${r.at}::timestamptz, ${r.probe.ok}::boolean, ${r.probe.latencyMs}::integer, ${r.probe.error}::text, ${retryAt}::timestamptz, ${r.monitor.last_check_at}::timestamptz, ${r.monitor.updated_at}::timestamptz)`,
      ),
    );
    const written = await sql<{ id: string }>`
      update monitors m
         set state = v.state, fail_streak = v.fail_streak, ok_streak = v.ok_streak, streak_started_at = v.streak_started_at,
             last_check_at = v.at, last_ok = v.ok, last_latency_ms = v.latency_ms, last_error = v.error,
             next_check_at = least(m.next_check_at, coalesce(v.retry_at, m.next_check_at))
        from (values ${rows}) as v(id, state, fail_streak, ok_streak, streak_started_at, at, ok, latency_ms, error, retry_at, prev_check_at, prev_updated_at)
       where m.id = v.id and m.last_check_at is not distinct from v.prev_check_at and m.updated_at = v.prev_updated_at
      returning m.id`.execute(this.#db);
    const applied = new Set(written.rows.map((w) => w.id));
    summary.checked += results.length;
    summary.failed += results.filter((r) => !r.probe.ok).length;
    for (const { r, s } of next) {
      if (!applied.has(r.monitor.id)) continue;
      try {
        if (s.wentDownSince) await this.#wentDown(r, s.wentDownSince, summary);
        else if (s.recoveredAt) await this.#recovered(r.monitor, s.recoveredAt, summary);
        // Still down, and the incident could not be opened when it went down (the database
        // failed then): opened now, so no outage goes without its incident and its clocks.
        else if (s.state === 'down' && s.fail_streak > 0 && s.streak_started_at && !r.monitor.open_incident_id) await this.#wentDown(r, s.streak_started_at, summary);
      } catch (err) {
        this.#logger?.error({ monitor: r.monitor.id, err: err instanceof Error ? err.message : String(err) }, 'monitor state change could not be recorded');
      }
    }
  }

  /** R8.3: opens the incident, occurred = first failing check, unless this monitor's previous one is still unresolved. */
  async #wentDown(r: CheckResult, since: Date, summary: CheckRunSummary): Promise<void> {
    const m = r.monitor;
    if (m.open_incident_id) {
      const prior = await getIncident(this.#db, this.#clock, m.open_incident_id).catch(() => null);
      if (prior && prior.times.recovered === null) return;
    }
    const customers = await monitorCustomers(this.#db, m.id);
    const incident = await this.#db.transaction().execute(async (trx) => {
      const opened = await openIncidentIn(trx, this.#clock, systemActor(`monitor:${m.name}`.slice(0, 200)), {
        title: `監視「${m.name}」が障害を検知（${m.component}） / Monitor "${m.name}" detected a failure (${m.component})`.slice(0, 200),
        severity: m.severity,
        occurredAt: since,
        detectedAt: this.#clock.now(),
        ...(customers === 'all' ? {} : { customerIds: customers }),
      });
      await trx.updateTable('monitors').set({ open_incident_id: opened.id }).where('id', '=', m.id).execute();
      return opened;
    });
    this.stats.incidentsOpened++;
    summary.opened.push(incident.id);
    this.#logger?.warn({ monitor: m.id, incident: incident.id, occurredAt: since.toISOString(), error: r.probe.error }, 'monitor down: incident opened');
    if (this.#onIncidentOpened) {
      try {
        await this.#onIncidentOpened(incident.id, m.id);
      } catch (err) {
        this.#logger?.error({ incident: incident.id, err: err instanceof Error ? err.message : String(err) }, 'onIncidentOpened failed');
      }
    }
  }

  /** R8.3: the service is back; the incident's recovery time is the first good check of the streak. */
  async #recovered(m: MonitorRow, at: Date, summary: CheckRunSummary): Promise<void> {
    if (!m.open_incident_id) return;
    try {
      await recordMilestone(this.#db, this.#clock, systemActor(`monitor:${m.name}`.slice(0, 200)), m.open_incident_id, 'recovered', at);
      this.stats.recoveries++;
      summary.recovered.push(m.open_incident_id);
    } catch (err) {
      // An operator may have recorded the recovery already; anything else is worth a log line.
      if (!isHokanError(err) || (err.code !== 'conflict' && err.code !== 'not_found')) throw err;
    }
    await this.#db.updateTable('monitors').set({ open_incident_id: null }).where('id', '=', m.id).where('open_incident_id', '=', m.open_incident_id).execute();
  }

  async #runBatch(batch: ClaimedMonitor[], summary: CheckRunSummary): Promise<void> {
    const results = await Promise.all(batch.map((m) => this.#check(m)));
    await this.#persist(results, summary);
  }

  /**
   * Claims and runs every check due at `now` (the clock's by default), waiting for all of them
   * and their writes; what tests call, and what each tick of the timer loop does without waiting.
   */
  async runDueChecks(now: Date = this.#clock.now()): Promise<CheckRunSummary> {
    const summary: CheckRunSummary = { checked: 0, failed: 0, opened: [], recovered: [] };
    const pending: Promise<void>[] = [];
    for (;;) {
      const batch = await this.#claim(now);
      if (batch.length === 0) break;
      pending.push(this.#runBatch(batch, summary));
      if (batch.length < this.#batchSize) break;
    }
    await Promise.all(pending);
    return summary;
  }

  /** One tick of the loop: claims what is due and lets the checks run on while the next tick comes. */
  async #tick(): Promise<void> {
    for (;;) {
      const batch = await this.#claim(this.#clock.now());
      if (batch.length === 0) return;
      const summary: CheckRunSummary = { checked: 0, failed: 0, opened: [], recovered: [] };
      const p = this.#runBatch(batch, summary).catch((err: unknown) => this.#logger?.error({ err: err instanceof Error ? err.message : String(err), instance: this.#instanceId }, 'monitor batch failed'));
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
      if (batch.length < this.#batchSize) return;
    }
  }

  /** The real timer loop of a running instance. */
  start(pollMs: number): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    const loop = () => {
      if (this.#stopped) return;
      this.#ticking = this.#tick()
        .catch((err: unknown) => this.#logger?.error({ err: err instanceof Error ? err.message : String(err) }, 'monitor tick failed'))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(loop, pollMs);
        });
    };
    loop();
  }

  /** Stops claiming and waits for the checks in hand and their writes. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#ticking;
    await Promise.all([...this.#inFlight]);
  }
}
