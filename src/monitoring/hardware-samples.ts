import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors } from '../core/errors.js';
import { evaluateRule, openPendingIncidents, type Evaluation } from './hardware-alerts.js';
import { ensureSelfHost, getHostRow } from './hardware-hosts.js';
import { collectHostSample, metricValue, type HardwareSample, type SampleMetric } from './hardware-metrics.js';
import { rulesFor } from './hardware-rules.js';

/**
 * R12.3①: samples are stored one row per host and time with the metrics as jsonb; a repeated
 * push of the same sample (an agent retrying after a lost answer) is ignored by the primary key.
 */

/** How far ahead of the server's clock a host's sample time may be. */
export const MAX_CLOCK_SKEW_MS = 2 * 60_000;
const DAY = 86_400_000;

export interface IngestResult {
  accepted: number;
  duplicates: number;
  evaluations: Array<{ ruleId: string; result: Evaluation }>;
  incidentsOpened: string[];
}

/**
 * Stores a host's samples and evaluates its rules on the newest ones, in time order. Refuses the
 * whole push, naming the sample, when one is in the future beyond the skew or older than the
 * retention; nothing is stored then.
 */
export async function ingestSamples(db: Db, clock: Clock, hostId: string, samples: HardwareSample[], retentionDays: number): Promise<IngestResult> {
  const now = clock.now();
  samples.forEach((s, i) => {
    const at = Date.parse(s.at);
    if (at > now.getTime() + MAX_CLOCK_SKEW_MS) throw errors.invalidField(`samples.${i}.at`, '未来の時刻です（ホストの時計を確認してください）。', `is in the future by more than ${MAX_CLOCK_SKEW_MS / 1000} s (check the host's clock)`);
    if (at < now.getTime() - retentionDays * DAY) throw errors.invalidField(`samples.${i}.at`, '保存期間より古い時刻です。', `is older than the ${retentionDays}-day retention`);
  });
  const ordered = [...samples].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const result = await db.transaction().execute(async (trx) => {
    const host = await trx.selectFrom('hardware_hosts').select(['id', 'name', 'last_sample_at', 'retired_at']).where('id', '=', hostId).forUpdate().executeTakeFirst();
    if (!host || host.retired_at) throw errors.notFound('ホスト / host', hostId);
    const inserted = await trx
      .insertInto('hardware_samples')
      .values(ordered.map((s) => ({ host_id: hostId, at: new Date(s.at), received_at: now, metrics: JSON.stringify(s) })))
      .onConflict((oc) => oc.columns(['host_id', 'at']).doNothing())
      .returning('at')
      .execute();
    const newest = new Date(ordered.at(-1)!.at);
    const lastSample = host.last_sample_at && host.last_sample_at.getTime() > newest.getTime() ? host.last_sample_at : newest;
    await trx.updateTable('hardware_hosts').set({ last_seen_at: now, last_sample_at: lastSample }).where('id', '=', hostId).execute();
    // Only samples newer than what was already evaluated move the rules (late arrivals are stored only).
    const fresh = ordered.filter((s) => !host.last_sample_at || Date.parse(s.at) > host.last_sample_at.getTime());
    const evaluations: IngestResult['evaluations'] = [];
    let raisedAny = false;
    for (const rule of await rulesFor(trx, hostId)) {
      const seen: Evaluation[] = [];
      if (rule.metric === 'silence_seconds') {
        seen.push(await evaluateRule(trx, clock, rule, host, 0, now));
      } else {
        for (const s of fresh) seen.push(await evaluateRule(trx, clock, rule, host, metricValue(s, rule.metric as SampleMetric, rule.target), new Date(s.at)));
      }
      // What the push did to the rule: raised or recovered if it happened, else the last state.
      const moved = seen.filter((e) => e === 'raised' || e === 'recovered');
      if (seen.includes('raised')) raisedAny = true;
      evaluations.push({ ruleId: rule.id, result: moved.at(-1) ?? seen.filter((e) => e !== 'no_data').at(-1) ?? 'no_data' });
    }
    return { accepted: inserted.length, duplicates: ordered.length - inserted.length, evaluations, raisedAny };
  });
  const incidentsOpened = result.raisedAny ? await openPendingIncidents(db, clock) : [];
  return { accepted: result.accepted, duplicates: result.duplicates, evaluations: result.evaluations, incidentsOpened };
}

/**
 * Silence rules on a schedule: a host that has not reported for longer than the threshold raises
 * its rule; the episode starts at the last report (or at registration for a host never heard from).
 */
export async function evaluateSilence(db: Db, clock: Clock): Promise<number> {
  const now = clock.now();
  const hosts = await db.selectFrom('hardware_hosts').select(['id', 'name', 'last_seen_at', 'created_at']).where('retired_at', 'is', null).execute();
  let raised = 0;
  for (const host of hosts) {
    const rules = (await rulesFor(db, host.id)).filter((r) => r.metric === 'silence_seconds');
    if (rules.length === 0) continue;
    const lastSeen = host.last_seen_at ?? host.created_at;
    const silence = Math.max(0, Math.round((now.getTime() - lastSeen.getTime()) / 1000));
    await db.transaction().execute(async (trx) => {
      for (const rule of rules) {
        // The host has been silent since its last report; the rule counts from when its threshold passed.
        const crossed = new Date(lastSeen.getTime() + rule.threshold * 1000);
        const r = await evaluateRule(trx, clock, rule, host, silence, now, crossed.getTime() <= now.getTime() ? crossed : now);
        if (r === 'raised') raised++;
      }
    });
  }
  return raised;
}

/** The scheduled pass: silence, and incidents of episodes whose opening was interrupted. */
export async function evaluateHardware(db: Db, clock: Clock): Promise<{ raised: number; incidentsOpened: string[] }> {
  const raised = await evaluateSilence(db, clock);
  return { raised, incidentsOpened: await openPendingIncidents(db, clock) };
}

/** Samples the host this process runs on and ingests it like an agent's push. */
export async function sampleSelf(db: Db, clock: Clock, retentionDays: number): Promise<IngestResult> {
  const host = await ensureSelfHost(db, clock);
  const sample = await collectHostSample(clock.now());
  return ingestSamples(db, clock, host.id, [sample], retentionDays);
}

/** Deletes samples older than the retention; returns how many. */
export async function pruneSamples(db: DbOrTx, clock: Clock, retentionDays: number): Promise<number> {
  const cutoff = new Date(clock.now().getTime() - retentionDays * DAY);
  const res = await db.deleteFrom('hardware_samples').where('at', '<', cutoff).executeTakeFirst();
  return Number(res.numDeletedRows);
}

export const MAX_QUERY_RANGE_MS = 31 * DAY;
export const MAX_POINTS = 1000;
const MAX_ROWS = 100_000;

export interface SeriesPoint {
  at: string;
  /** Mean over the bucket (one sample when not downsampled). */
  value: number;
  max: number;
  samples: number;
}

/**
 * One metric of a host over [from, to) for charts, at most MAX_POINTS points: when there are more
 * samples, they are averaged in equal time buckets (the bucket's maximum kept too, so a spike shows).
 */
export async function querySeries(db: DbOrTx, hostId: string, metric: SampleMetric, from: Date, to: Date, target: string | null = null): Promise<{ points: SeriesPoint[]; bucketSeconds: number | null; truncated: boolean }> {
  if (to.getTime() <= from.getTime()) throw errors.invalidField('to', '終了は開始より後にしてください。', 'must be after from');
  if (to.getTime() - from.getTime() > MAX_QUERY_RANGE_MS) throw errors.invalidField('to', '期間は31日以内にしてください。', 'the range must be at most 31 days');
  await getHostRow(db, hostId);
  const rows = await db
    .selectFrom('hardware_samples')
    .select(['at', 'metrics'])
    .where('host_id', '=', hostId)
    .where('at', '>=', from)
    .where('at', '<', to)
    .orderBy('at')
    .limit(MAX_ROWS + 1)
    .execute();
  const truncated = rows.length > MAX_ROWS;
  const values: Array<{ at: Date; v: number }> = [];
  for (const r of rows.slice(0, MAX_ROWS)) {
    const m = typeof r.metrics === 'string' ? (JSON.parse(r.metrics) as HardwareSample) : (r.metrics as HardwareSample);
    const v = metricValue(m, metric, target);
    if (v !== null) values.push({ at: r.at, v });
  }
  if (values.length <= MAX_POINTS) return { points: values.map((x) => ({ at: x.at.toISOString(), value: x.v, max: x.v, samples: 1 })), bucketSeconds: null, truncated };
  const bucketMs = Math.ceil((to.getTime() - from.getTime()) / MAX_POINTS / 1000) * 1000;
  const buckets = new Map<number, { sum: number; max: number; n: number }>();
  for (const x of values) {
    const k = from.getTime() + Math.floor((x.at.getTime() - from.getTime()) / bucketMs) * bucketMs;
    const b = buckets.get(k) ?? { sum: 0, max: -Infinity, n: 0 };
    b.sum += x.v;
    b.max = Math.max(b.max, x.v);
    b.n++;
    buckets.set(k, b);
  }
  const points = [...buckets.entries()].map(([k, b]) => ({ at: new Date(k).toISOString(), value: Math.round((b.sum / b.n) * 100) / 100, max: b.max, samples: b.n }));
  return { points, bucketSeconds: bucketMs / 1000, truncated };
}

/** The newest sample of a host, or null. */
export async function latestSample(db: DbOrTx, hostId: string): Promise<HardwareSample | null> {
  const row = await db.selectFrom('hardware_samples').select('metrics').where('host_id', '=', hostId).orderBy('at', 'desc').limit(1).executeTakeFirst();
  if (!row) return null;
  return typeof row.metrics === 'string' ? (JSON.parse(row.metrics) as HardwareSample) : (row.metrics as HardwareSample);
}
