import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { HardwareRulesTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import type { Metric } from './hardware-metrics.js';

/**
 * R12.3①: operator-defined threshold rules — a metric, a comparison, a threshold and how long the
 * condition must hold (e.g. disk usage > 90 % for 5 min, temperature > 80 °C, silent for 3 min).
 * A rule watches one host or, without a host, every host.
 */
export const COMPARISONS = ['>', '>=', '<', '<='] as const;
export type Comparison = (typeof COMPARISONS)[number];
export const RULE_SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
export type RuleSeverity = (typeof RULE_SEVERITIES)[number];

export type RuleRow = Selectable<HardwareRulesTable>;

export interface RuleInput {
  name: string;
  hostId: string | null;
  metric: Metric;
  target: string | null;
  comparison: Comparison;
  threshold: number;
  durationSeconds: number;
  severity: RuleSeverity;
  enabled: boolean;
}

export interface RuleView extends RuleInput {
  id: string;
  createdAt: string;
  updatedAt: string;
}

export const ruleView = (r: RuleRow): RuleView => ({
  id: r.id,
  name: r.name,
  hostId: r.host_id,
  metric: r.metric as Metric,
  target: r.target,
  comparison: r.comparison,
  threshold: r.threshold,
  durationSeconds: r.duration_seconds,
  severity: r.severity,
  enabled: r.enabled,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export function compare(value: number, comparison: Comparison, threshold: number): boolean {
  switch (comparison) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
  }
}

async function checkInput(db: DbOrTx, input: RuleInput): Promise<void> {
  if (input.hostId) {
    const host = await db.selectFrom('hardware_hosts').select('id').where('id', '=', input.hostId).where('retired_at', 'is', null).executeTakeFirst();
    if (!host) throw errors.invalidField('hostId', '不明なホストです。', 'unknown host');
  }
  if (input.target !== null && input.metric !== 'disk_percent' && input.metric !== 'disk_io_errors') {
    throw errors.invalidField('target', 'target はディスクの指標にのみ指定できます。', 'only disk metrics take a target (mount or device)');
  }
  if (input.metric.endsWith('_percent') && (input.threshold < 0 || input.threshold > 100)) {
    throw errors.invalidField('threshold', '割合は0〜100で指定してください。', 'a percentage must be between 0 and 100');
  }
  if (input.metric === 'silence_seconds' && (input.comparison === '<' || input.comparison === '<=' || input.threshold < 10)) {
    throw errors.invalidField('threshold', '無応答の監視は「>」「>=」で10秒以上を指定してください。', 'silence is watched with > or >= and at least 10 seconds');
  }
}

export async function createRule(db: Db, clock: Clock, actor: Actor, input: RuleInput): Promise<RuleView> {
  return db.transaction().execute(async (trx) => {
    await checkInput(trx, input);
    const now = clock.now();
    const row = await trx
      .insertInto('hardware_rules')
      .values({
        id: randomUUID(),
        name: input.name,
        host_id: input.hostId,
        metric: input.metric,
        target: input.target,
        comparison: input.comparison,
        threshold: input.threshold,
        duration_seconds: input.durationSeconds,
        severity: input.severity,
        enabled: input.enabled,
        created_at: now,
        updated_at: now,
        deleted_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'hardware.rule_created', subjectType: 'hardware_rule', subjectId: row.id, details: { ...input } });
    return ruleView(row);
  });
}

/** Closes a rule's open episodes and forgets its pending breaches (after a change or deletion). */
async function resetRule(trx: DbOrTx, ruleId: string, now: Date, reason: string): Promise<void> {
  await trx.updateTable('hardware_alerts').set({ recovered_at: now, closed_reason: reason }).where('rule_id', '=', ruleId).where('recovered_at', 'is', null).execute();
  await trx.deleteFrom('hardware_rule_states').where('rule_id', '=', ruleId).execute();
}

/** Replaces a rule's definition; its open episodes are closed (the condition they were raised on is gone). */
export async function updateRule(db: Db, clock: Clock, actor: Actor, ruleId: string, input: RuleInput): Promise<RuleView> {
  return db.transaction().execute(async (trx) => {
    await checkInput(trx, input);
    const now = clock.now();
    const before = await trx.selectFrom('hardware_rules').selectAll().where('id', '=', ruleId).where('deleted_at', 'is', null).forUpdate().executeTakeFirst();
    if (!before) throw errors.notFound('監視ルール / rule', ruleId);
    const row = await trx
      .updateTable('hardware_rules')
      .set({
        name: input.name,
        host_id: input.hostId,
        metric: input.metric,
        target: input.target,
        comparison: input.comparison,
        threshold: input.threshold,
        duration_seconds: input.durationSeconds,
        severity: input.severity,
        enabled: input.enabled,
        updated_at: now,
      })
      .where('id', '=', ruleId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await resetRule(trx, ruleId, now, 'rule_changed');
    await appendAudit(trx, clock, { actor, action: 'hardware.rule_updated', subjectType: 'hardware_rule', subjectId: ruleId, details: { before: ruleView(before), after: { ...input } } });
    return ruleView(row);
  });
}

export async function deleteRule(db: Db, clock: Clock, actor: Actor, ruleId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const now = clock.now();
    const row = await trx.updateTable('hardware_rules').set({ deleted_at: now, enabled: false }).where('id', '=', ruleId).where('deleted_at', 'is', null).returningAll().executeTakeFirst();
    if (!row) throw errors.notFound('監視ルール / rule', ruleId);
    await resetRule(trx, ruleId, now, 'rule_deleted');
    await appendAudit(trx, clock, { actor, action: 'hardware.rule_deleted', subjectType: 'hardware_rule', subjectId: ruleId, details: { name: row.name } });
  });
}

export async function listRules(db: DbOrTx): Promise<RuleView[]> {
  return (await db.selectFrom('hardware_rules').selectAll().where('deleted_at', 'is', null).orderBy('created_at').execute()).map(ruleView);
}

/** Enabled rules that watch a host (its own and the all-host ones). */
export async function rulesFor(db: DbOrTx, hostId: string): Promise<RuleRow[]> {
  return db
    .selectFrom('hardware_rules')
    .selectAll()
    .where('deleted_at', 'is', null)
    .where('enabled', '=', true)
    .where((eb) => eb.or([eb('host_id', 'is', null), eb('host_id', '=', hostId)]))
    .orderBy('created_at')
    .execute();
}
