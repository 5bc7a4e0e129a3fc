import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { listOperators } from '../accounts/users.js';
import { appendAudit, systemActor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { HardwareAlertsTable } from '../core/db/schema.js';
import { formatJapanDateTime } from '../core/japan-time.js';
import { openIncidentIn } from '../incidents/incidents.js';
import { queueEmail, subjectLine } from '../notify/outbox.js';
import type { Metric } from './hardware-metrics.js';
import { compare, type RuleRow } from './hardware-rules.js';

/**
 * R12.3①: rule evaluation and alert episodes. An episode starts when a rule's condition has held
 * for its duration and ends when the condition no longer holds; the unique index on open episodes
 * makes "once per episode" hold across instances. Raising queues one e-mail per operator (dedupe
 * key per episode and operator) in the same transaction; rules of severity critical or major also
 * open an incident, once per episode (claimed before it is opened).
 */

export const METRIC_LABELS: Record<Metric, { ja: string; en: string; unit: string }> = {
  cpu_percent: { ja: 'CPU使用率', en: 'CPU usage', unit: '%' },
  memory_percent: { ja: 'メモリ使用率', en: 'memory usage', unit: '%' },
  disk_percent: { ja: 'ディスク使用率', en: 'disk usage', unit: '%' },
  disk_io_errors: { ja: 'ディスクI/Oエラー数', en: 'disk I/O errors', unit: '' },
  load1: { ja: 'ロードアベレージ(1分)', en: 'load average (1 min)', unit: '' },
  load5: { ja: 'ロードアベレージ(5分)', en: 'load average (5 min)', unit: '' },
  load15: { ja: 'ロードアベレージ(15分)', en: 'load average (15 min)', unit: '' },
  temperature_c: { ja: '温度', en: 'temperature', unit: '°C' },
  silence_seconds: { ja: '無応答時間', en: 'silence', unit: 's' },
};

type AlertRow = Selectable<HardwareAlertsTable>;

export interface AlertView {
  id: string;
  ruleId: string;
  hostId: string;
  severity: string;
  metric: string;
  value: number;
  startedAt: string;
  raisedAt: string;
  recoveredAt: string | null;
  closedReason: string | null;
  incidentId: string | null;
}

export const alertView = (r: AlertRow): AlertView => ({
  id: r.id,
  ruleId: r.rule_id,
  hostId: r.host_id,
  severity: r.severity,
  metric: r.metric,
  value: r.value,
  startedAt: r.started_at.toISOString(),
  raisedAt: r.raised_at.toISOString(),
  recoveredAt: r.recovered_at?.toISOString() ?? null,
  closedReason: r.closed_reason,
  incidentId: r.incident_id,
});

export type Evaluation = 'raised' | 'recovered' | 'breaching' | 'ok' | 'no_data';

const INCIDENT_SEVERITIES = new Set(['critical', 'major']);
const MONITOR = systemActor('hardware monitor (R12.3①)');

function describe(rule: RuleRow, hostName: string, value: number) {
  const m = METRIC_LABELS[rule.metric as Metric];
  const target = rule.target ? ` [${rule.target}]` : '';
  return {
    ja: `${hostName}: ${m.ja}${target} ${value}${m.unit}（条件 ${rule.comparison} ${rule.threshold}${m.unit}${rule.duration_seconds ? `、${rule.duration_seconds}秒継続` : ''}）`,
    en: `${hostName}: ${m.en}${target} ${value}${m.unit} (rule ${rule.comparison} ${rule.threshold}${m.unit}${rule.duration_seconds ? ` for ${rule.duration_seconds} s` : ''})`,
  };
}

async function mailOperators(trx: DbOrTx, clock: Clock, key: string, subject: string, text: string): Promise<void> {
  const operators = (await listOperators(trx)).filter((u) => !u.disabled && u.roles.some((r) => r === 'admin' || r === 'operator'));
  for (const op of operators) {
    // queueEmail refuses a bad address before touching the database: skip it, tell the others.
    await queueEmail(trx, clock, { dedupeKey: `${key}:${op.id}`, to: op.email, subject: subjectLine(subject), text }).catch(() => null);
  }
}

/**
 * Evaluates one rule for one host at `at` with the metric's `value` (null: the sample does not
 * carry it, nothing changes). `startedAt` is when a new breach began if not `at` (silence: the
 * last report). Runs in the caller's transaction.
 */
export async function evaluateRule(trx: Tx, clock: Clock, rule: RuleRow, host: { id: string; name: string }, value: number | null, at: Date, startedAt: Date = at): Promise<Evaluation> {
  if (value === null) return 'no_data';
  await trx.insertInto('hardware_rule_states').values({ rule_id: rule.id, host_id: host.id, breach_since: null }).onConflict((oc) => oc.columns(['rule_id', 'host_id']).doNothing()).execute();
  const state = await trx.selectFrom('hardware_rule_states').select('breach_since').where('rule_id', '=', rule.id).where('host_id', '=', host.id).forUpdate().executeTakeFirstOrThrow();
  const open = await trx.selectFrom('hardware_alerts').selectAll().where('rule_id', '=', rule.id).where('host_id', '=', host.id).where('recovered_at', 'is', null).executeTakeFirst();
  const now = clock.now();
  const text = describe(rule, host.name, value);
  if (compare(value, rule.comparison, rule.threshold)) {
    const since = state.breach_since ?? startedAt;
    if (!state.breach_since) await trx.updateTable('hardware_rule_states').set({ breach_since: since }).where('rule_id', '=', rule.id).where('host_id', '=', host.id).execute();
    if (open) return 'breaching';
    if (at.getTime() - since.getTime() < rule.duration_seconds * 1000) return 'breaching';
    const alert = await trx
      .insertInto('hardware_alerts')
      .values({ id: randomUUID(), rule_id: rule.id, host_id: host.id, severity: rule.severity, metric: rule.metric, value, started_at: since, raised_at: now, recovered_at: null, closed_reason: null, incident_id: null, incident_claimed_at: null })
      .onConflict((oc) => oc.columns(['rule_id', 'host_id']).where('recovered_at', 'is', null).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!alert) return 'breaching';
    await appendAudit(trx, clock, { actor: MONITOR, action: 'hardware.alert_raised', subjectType: 'hardware_alert', subjectId: alert.id, details: { ruleId: rule.id, rule: rule.name, hostId: host.id, host: host.name, metric: rule.metric, value, severity: rule.severity } });
    const tag = rule.severity === 'critical' || rule.severity === 'major' ? '【重要】' : '【警告】';
    await mailOperators(
      trx,
      clock,
      `hw-alert:${alert.id}:raised`,
      `${tag}ハードウェア監視: ${rule.name}（${host.name}） / Hardware alert: ${rule.name} on ${host.name}`,
      [
        `ハードウェア監視ルール「${rule.name}」の条件を満たしました（重要度: ${rule.severity}）。`,
        text.ja,
        `開始: ${formatJapanDateTime(since)}　検知: ${formatJapanDateTime(now)}`,
        INCIDENT_SEVERITIES.has(rule.severity) ? '重要度が critical/major のため障害として登録します。' : '',
        '',
        `Hardware rule "${rule.name}" is breached (severity ${rule.severity}).`,
        text.en,
        `Since ${since.toISOString()}, detected ${now.toISOString()}. Alert id ${alert.id}.`,
        INCIDENT_SEVERITIES.has(rule.severity) ? 'An incident is opened for it (severity critical/major).' : '',
      ].join('\n'),
    );
    return 'raised';
  }
  if (state.breach_since) await trx.updateTable('hardware_rule_states').set({ breach_since: null }).where('rule_id', '=', rule.id).where('host_id', '=', host.id).execute();
  if (!open) return 'ok';
  await trx.updateTable('hardware_alerts').set({ recovered_at: now, closed_reason: 'recovered' }).where('id', '=', open.id).where('recovered_at', 'is', null).execute();
  await appendAudit(trx, clock, { actor: MONITOR, action: 'hardware.alert_recovered', subjectType: 'hardware_alert', subjectId: open.id, details: { ruleId: rule.id, hostId: host.id, value } });
  await mailOperators(
    trx,
    clock,
    `hw-alert:${open.id}:recovered`,
    `【復旧】ハードウェア監視: ${rule.name}（${host.name}） / Hardware alert recovered: ${rule.name} on ${host.name}`,
    [
      `ハードウェア監視ルール「${rule.name}」の条件は解消しました。`,
      text.ja,
      `発生: ${formatJapanDateTime(open.started_at)}　解消: ${formatJapanDateTime(now)}`,
      open.incident_id ? `関連する障害（${open.incident_id}）の復旧記録は担当者が行ってください。` : '',
      '',
      `Hardware rule "${rule.name}" no longer holds: ${text.en}.`,
      `Started ${open.started_at.toISOString()}, recovered ${now.toISOString()}.`,
      open.incident_id ? `Record the recovery of incident ${open.incident_id} once the service is confirmed.` : '',
    ].join('\n'),
  );
  return 'recovered';
}

const CLAIM_LEASE_MS = 5 * 60_000;

/**
 * Opens an incident for every critical/major episode that has none yet. Each episode is claimed
 * first (a conditional update), so two instances never open two incidents for one episode; a
 * claim whose instance died is taken again after the lease.
 */
export async function openPendingIncidents(db: Db, clock: Clock): Promise<string[]> {
  const now = clock.now();
  const pending = await db
    .selectFrom('hardware_alerts')
    .innerJoin('hardware_hosts', 'hardware_hosts.id', 'hardware_alerts.host_id')
    .innerJoin('hardware_rules', 'hardware_rules.id', 'hardware_alerts.rule_id')
    .select(['hardware_alerts.id', 'hardware_alerts.severity', 'hardware_alerts.value', 'hardware_alerts.started_at', 'hardware_alerts.raised_at', 'hardware_hosts.name as host_name', 'hardware_rules.name as rule_name', 'hardware_rules.metric'])
    .where('hardware_alerts.severity', 'in', ['critical', 'major'])
    .where('hardware_alerts.incident_id', 'is', null)
    .where((eb) => eb.or([eb('hardware_alerts.incident_claimed_at', 'is', null), eb('hardware_alerts.incident_claimed_at', '<', new Date(now.getTime() - CLAIM_LEASE_MS))]))
    .orderBy('hardware_alerts.raised_at')
    .limit(100)
    .execute();
  const opened: string[] = [];
  let failure: unknown;
  for (const a of pending) {
    const claimed = await db
      .updateTable('hardware_alerts')
      .set({ incident_claimed_at: now })
      .where('id', '=', a.id)
      .where('incident_id', 'is', null)
      .where((eb) => eb.or([eb('incident_claimed_at', 'is', null), eb('incident_claimed_at', '<', new Date(now.getTime() - CLAIM_LEASE_MS))]))
      .returning('id')
      .executeTakeFirst();
    if (!claimed) continue;
    const m = METRIC_LABELS[a.metric as Metric];
    const occurredAt = a.started_at.getTime() <= a.raised_at.getTime() ? a.started_at : a.raised_at;
    try {
      // Opened and linked in one commit: a crash between the two would leave the alert unlinked,
      // and the next run, once the claim's lease ran out, would open the same outage again.
      const incident = await db.transaction().execute(async (trx) => {
        const inc = await openIncidentIn(trx, clock, MONITOR, {
          title: `ハードウェア監視: ${a.host_name} ${m.ja}（${a.rule_name}） / Hardware: ${a.host_name} ${m.en}`.slice(0, 200),
          severity: a.severity as 'critical' | 'major',
          occurredAt,
          detectedAt: a.raised_at.getTime() <= now.getTime() ? a.raised_at : now,
        });
        await trx.updateTable('hardware_alerts').set({ incident_id: inc.id }).where('id', '=', a.id).execute();
        return inc;
      });
      opened.push(incident.id);
    } catch (err) {
      // One alert that cannot be opened must not hold back the others; it is tried again once its
      // claim runs out, and the run still fails so the job's log shows it.
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
  return opened;
}

export async function listAlerts(db: DbOrTx, opts: { open?: boolean; hostId?: string; limit?: number } = {}): Promise<AlertView[]> {
  let q = db.selectFrom('hardware_alerts').selectAll().orderBy('raised_at', 'desc').limit(opts.limit ?? 200);
  if (opts.open) q = q.where('recovered_at', 'is', null);
  if (opts.hostId) q = q.where('host_id', '=', opts.hostId);
  return (await q.execute()).map(alertView);
}
