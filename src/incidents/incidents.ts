import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { IncidentsTable } from '../core/db/schema.js';
import { errors, HokanError } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { EMERGENCY_CAUSES, type EmergencyCause } from './stops.js';

type IncidentRow = Selectable<IncidentsTable>;

const HOUR = 3_600_000;
/** R8.3: detection within 1 hour of occurrence; service resumed within 24 hours of occurrence. */
export const DETECTION_TARGET_MS = HOUR;
export const RESTORATION_TARGET_MS = 24 * HOUR;
/** Operators are alerted before the 24-hour target is breached. */
export const RESTORATION_ALERTS_MS = [12 * HOUR, 20 * HOUR];
/** R20.1: liability only for unusability of 24 hours or more from when the provider learned of it. */
export const LIABILITY_THRESHOLD_MS = 24 * HOUR;

/** R20.2 ①–⑦: never the provider's fault. */
export const LIABILITY_EXCLUSIONS = {
  planned_maintenance: bi('① 計画的なメンテナンス', '① planned maintenance'),
  force_majeure: bi('② 天災・感染症・戦争・暴動等', '② natural disaster, epidemic, war, riot'),
  authority_order: bi('③ 官公庁の命令', '③ orders of authorities'),
  client_environment: bi('④ お客様の利用環境の不具合', "④ defects of the customer's client environment"),
  customer_network: bi('⑤ お客様の回線', "⑤ the customer's network line"),
  customer_prohibited_act: bi('⑥ お客様の禁止行為', "⑥ the customer's prohibited acts"),
  third_party_attack: bi('⑦ 第三者による攻撃・不正行為', '⑦ attacks or wrongdoing by third parties'),
} as const satisfies Record<string, Bilingual>;
export type LiabilityExclusion = keyof typeof LIABILITY_EXCLUSIONS;
export const LIABILITY_EXCLUSION_CODES = Object.keys(LIABILITY_EXCLUSIONS) as [LiabilityExclusion, ...LiabilityExclusion[]];

export const MILESTONES = ['first_notice', 'recovered', 'recovery_notice', 'report'] as const;
export type Milestone = (typeof MILESTONES)[number];

type TargetState = 'met' | 'breached' | 'running';

export interface SlaStatus {
  detection: { targetMinutes: number; minutes: number; state: 'met' | 'breached' };
  restoration: { targetHours: number; hours: number; state: TargetState; alertsDue: number[] };
}

/** R8.3: how an incident stands against both targets at `now`. */
export function slaStatus(i: Pick<IncidentRow, 'occurred_at' | 'detected_at' | 'recovered_at'>, now: Date): SlaStatus {
  const detectMs = i.detected_at.getTime() - i.occurred_at.getTime();
  const end = i.recovered_at ?? now;
  const restoreMs = end.getTime() - i.occurred_at.getTime();
  const restoration: TargetState = i.recovered_at ? (restoreMs <= RESTORATION_TARGET_MS ? 'met' : 'breached') : restoreMs > RESTORATION_TARGET_MS ? 'breached' : 'running';
  return {
    detection: { targetMinutes: 60, minutes: Math.round(detectMs / 60_000), state: detectMs <= DETECTION_TARGET_MS ? 'met' : 'breached' },
    restoration: {
      targetHours: 24,
      hours: Math.round((restoreMs / HOUR) * 100) / 100,
      state: restoration,
      // The warnings an operator must have had by now while the service is still down.
      alertsDue: i.recovered_at ? [] : RESTORATION_ALERTS_MS.filter((a) => restoreMs >= a).map((a) => a / HOUR),
    },
  };
}

export interface LiabilityFinding {
  liable: boolean | 'pending';
  reasons: Bilingual[];
}

/**
 * R20.1–R20.3: liable only if the service was entirely unusable through the provider's fault for
 * 24 hours or more counted from when the provider learned of it (detection), and no exclusion of
 * R20.2 applies. Every condition is given as a reason, met or not.
 */
export function liability(i: Pick<IncidentRow, 'detected_at' | 'recovered_at' | 'entirely_unusable' | 'provider_fault' | 'exclusion'>, now: Date): LiabilityFinding {
  const reasons: Bilingual[] = [];
  const downMs = (i.recovered_at ?? now).getTime() - i.detected_at.getTime();
  const hours = Math.round((downMs / HOUR) * 10) / 10;
  let liable: boolean | 'pending' = true;
  if (!i.entirely_unusable) {
    liable = false;
    reasons.push(bi('サービスが全く利用できない状態ではありませんでした（第20条第1項）。', 'The service was not entirely unusable (Art. 20.1).'));
  }
  if (!i.provider_fault) {
    liable = false;
    reasons.push(bi('弊社の責に帰すべき事由によるものではありません（第20条第1項）。', "Not caused by the provider's fault (Art. 20.1)."));
  }
  if (i.exclusion) {
    liable = false;
    const label = LIABILITY_EXCLUSIONS[i.exclusion as LiabilityExclusion];
    reasons.push(bi(`免責事由に該当します: ${label.ja}（第20条第2項）。`, `An exclusion applies: ${label.en} (Art. 20.2).`));
  }
  if (downMs < LIABILITY_THRESHOLD_MS) {
    if (!i.recovered_at && liable !== false) liable = 'pending';
    else liable = false;
    reasons.push(bi(`弊社が知った時点から${hours}時間${i.recovered_at ? 'で復旧しました' : '経過（継続中）'}。24時間未満です（第20条第1項）。`, `${hours} h from when the provider learned of it${i.recovered_at ? ' until recovery' : ' so far (ongoing)'}: under 24 h (Art. 20.1).`));
  } else {
    reasons.push(bi(`弊社が知った時点から${hours}時間利用できない状態が続きました（24時間以上）。`, `Unusable for ${hours} h from when the provider learned of it (24 h or more).`));
  }
  return { liable, reasons };
}

export interface IncidentView {
  id: string;
  title: string;
  severity: IncidentRow['severity'];
  cause: EmergencyCause | null;
  causeLabel: Bilingual | null;
  /** R8.4: causes ⑤ and ⑥ are handled case by case. */
  caseByCase: boolean;
  openedBy: string;
  times: { occurred: string; detected: string; firstNotice: string | null; recovered: string | null; recoveryNotice: string | null; report: string | null };
  customerIds: string[] | 'all';
  sla: SlaStatus;
  liability: LiabilityFinding;
}

function view(r: IncidentRow, customerIds: string[] | 'all', now: Date): IncidentView {
  const cause = r.cause as EmergencyCause | null;
  return {
    id: r.id,
    title: r.title,
    severity: r.severity,
    cause,
    causeLabel: cause ? EMERGENCY_CAUSES[cause] : null,
    caseByCase: cause === 'disaster' || cause === 'other',
    openedBy: r.opened_by,
    times: {
      occurred: r.occurred_at.toISOString(),
      detected: r.detected_at.toISOString(),
      firstNotice: r.first_notice_at?.toISOString() ?? null,
      recovered: r.recovered_at?.toISOString() ?? null,
      recoveryNotice: r.recovery_notice_at?.toISOString() ?? null,
      report: r.report_at?.toISOString() ?? null,
    },
    customerIds,
    sla: slaStatus(r, now),
    liability: liability(r, now),
  };
}

async function customersOf(db: DbOrTx, r: IncidentRow): Promise<string[] | 'all'> {
  if (r.all_customers) return 'all';
  return (await db.selectFrom('incident_customers').select('customer_id').where('incident_id', '=', r.id).execute()).map((x) => x.customer_id);
}

export interface NewIncident {
  title: string;
  severity: IncidentRow['severity'];
  cause?: EmergencyCause | null;
  occurredAt: Date;
  /** When the provider learned of it; an operator opening it now learns now. */
  detectedAt?: Date;
  customerIds?: string[];
  entirelyUnusable?: boolean;
}

export async function openIncident(db: Db, clock: Clock, actor: Actor, input: NewIncident): Promise<IncidentView> {
  return db.transaction().execute((trx) => openIncidentIn(trx, clock, actor, input));
}

/**
 * `openIncident` inside the caller's transaction: what opened it (a monitor, an alert, a round)
 * links it in the same commit, so a crash between the two can neither lose the incident's link
 * nor, on a retry, open the same outage twice.
 */
export async function openIncidentIn(trx: Tx, clock: Clock, actor: Actor, input: NewIncident): Promise<IncidentView> {
  const now = clock.now();
  const detectedAt = input.detectedAt ?? now;
  if (input.occurredAt.getTime() > now.getTime()) throw errors.invalidField('occurredAt', '発生時刻が未来です。', 'must not be in the future');
  if (detectedAt.getTime() < input.occurredAt.getTime()) throw errors.invalidField('detectedAt', '検知時刻が発生時刻より前です。', 'must not be before occurredAt');
  if (detectedAt.getTime() > now.getTime()) throw errors.invalidField('detectedAt', '検知時刻が未来です。', 'must not be in the future');
  const ids = [...new Set(input.customerIds ?? [])];
  if (ids.length) {
    const found = await trx.selectFrom('customers').select('id').where('id', 'in', ids).execute();
    const missing = ids.filter((id) => !found.some((f) => f.id === id));
    if (missing.length) throw errors.invalidField('customerIds', `不明なお客様: ${missing.join(', ')}`, `unknown customers: ${missing.join(', ')}`);
  }
  const row = await trx
    .insertInto('incidents')
    .values({
      id: randomUUID(),
      title: input.title,
      severity: input.severity,
      cause: input.cause ?? null,
      opened_by: actor.label,
      occurred_at: input.occurredAt,
      detected_at: detectedAt,
      entirely_unusable: input.entirelyUnusable ?? false,
      provider_fault: true,
      exclusion: null,
      all_customers: ids.length === 0,
      created_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  if (ids.length) await trx.insertInto('incident_customers').values(ids.map((customer_id) => ({ incident_id: row.id, customer_id }))).execute();
  await appendAudit(trx, clock, { actor, action: 'incident.opened', subjectType: 'incident', subjectId: row.id, details: { title: row.title, severity: row.severity, cause: row.cause, occurredAt: row.occurred_at.toISOString(), detectedAt: row.detected_at.toISOString() } });
  return view(row, ids.length ? ids : 'all', now);
}

const MILESTONE_COLUMN = { first_notice: 'first_notice_at', recovered: 'recovered_at', recovery_notice: 'recovery_notice_at', report: 'report_at' } as const;

/**
 * R8.1, R8.3: records a milestone. Order is enforced: nothing before the occurrence, the first notice
 * after detection, the recovery notice and the report after recovery; each is recorded once.
 */
export async function recordMilestone(db: DbOrTx, clock: Clock, actor: Actor, incidentId: string, milestone: Milestone, at?: Date): Promise<IncidentView> {
  const now = clock.now();
  const when = at ?? now;
  if (when.getTime() > now.getTime()) throw errors.invalidField('at', '未来の時刻は記録できません。', 'must not be in the future');
  // Inside a caller's transaction (a notice posted with its milestone, R8.1) or in its own.
  const inTx = <T>(fn: (trx: Tx) => Promise<T>): Promise<T> => (db.isTransaction ? fn(db as Tx) : db.transaction().execute(fn));
  return inTx(async (trx) => {
    const row = await trx.selectFrom('incidents').selectAll().where('id', '=', incidentId).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('障害 / incident', incidentId);
    const column = MILESTONE_COLUMN[milestone];
    if (row[column]) throw errors.conflict('この時刻は既に記録されています。', `${milestone} is already recorded for this incident.`);
    const after = milestone === 'first_notice' ? row.detected_at : milestone === 'recovered' ? row.occurred_at : row.recovered_at;
    if (!after) throw new HokanError('invalid_transition', bi('復旧前には記録できません。', `${milestone} can only be recorded after recovery.`));
    if (when.getTime() < after.getTime()) throw errors.invalidField('at', '前の段階より前の時刻です。', `must not be before ${after.toISOString()}`);
    const updated = await trx.updateTable('incidents').set({ [column]: when }).where('id', '=', incidentId).returningAll().executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: `incident.${milestone}`, subjectType: 'incident', subjectId: incidentId, details: { at: when.toISOString() } });
    return view(updated, await customersOf(trx, updated), now);
  });
}

/** R20: what decides liability, set by the provider's admins with the reason audit-logged. */
export async function assessIncident(
  db: Db,
  clock: Clock,
  actor: Actor,
  incidentId: string,
  input: { entirelyUnusable: boolean; providerFault: boolean; exclusion: LiabilityExclusion | null; note: string },
): Promise<IncidentView> {
  return db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('incidents')
      .set({ entirely_unusable: input.entirelyUnusable, provider_fault: input.providerFault, exclusion: input.exclusion })
      .where('id', '=', incidentId)
      .returningAll()
      .executeTakeFirst();
    if (!updated) throw errors.notFound('障害 / incident', incidentId);
    await appendAudit(trx, clock, { actor, action: 'incident.assessed', subjectType: 'incident', subjectId: incidentId, reason: input.note, details: { entirelyUnusable: input.entirelyUnusable, providerFault: input.providerFault, exclusion: input.exclusion } });
    return view(updated, await customersOf(trx, updated), clock.now());
  });
}

export async function getIncident(db: DbOrTx, clock: Clock, id: string): Promise<IncidentView> {
  const row = await db.selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('障害 / incident', id);
  return view(row, await customersOf(db, row), clock.now());
}

/** Incidents, newest first; for a customer, those that touched it (all-customer ones included). */
export async function listIncidents(db: DbOrTx, clock: Clock, customerId?: string): Promise<IncidentView[]> {
  const rows = await db.selectFrom('incidents').selectAll().orderBy('occurred_at', 'desc').limit(500).execute();
  const out: IncidentView[] = [];
  for (const r of rows) {
    const ids = await customersOf(db, r);
    if (customerId && ids !== 'all' && !ids.includes(customerId)) continue;
    out.push(view(r, customerId && ids !== 'all' ? [customerId] : ids, clock.now()));
  }
  return out;
}
