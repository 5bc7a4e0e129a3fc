import { randomUUID } from 'node:crypto';
import type { Selectable, Updateable } from 'kysely';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { PersonalDataBreachCustomersTable, PersonalDataBreachesTable } from '../core/db/schema.js';
import { errors, HokanError } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { addDays, endOfJapanDay, japanDateOf } from '../core/japan-time.js';
import { getIncident } from './incidents.js';

/*
 * The personal-data breach clock (Decision 0020). An incident may involve a leak, loss or damage
 * (漏えい・滅失・毀損) of personal data the provider holds for its customers. Under APPI Art. 26(1)
 * the provider, as processor (受託者), is relieved of reporting to the PPC itself when it informs the
 * controller (the customer), who then owes the PPC a preliminary report (速報, 施行規則 第8条第1項:
 * 速やかに — in practice 3–5 days) and a final report (確報, 第8条第2項: 30 days, 60 days for a
 * case under 第7条第3号, unauthorised access with 不正の目的). So the provider tells each affected
 * customer within the controller's own deadlines, counted from when the provider learned of it —
 * the earliest the controller could have known — which leaves the controller its whole time.
 */

type BreachRow = Selectable<PersonalDataBreachesTable>;
type BreachCustomerRow = Selectable<PersonalDataBreachCustomersTable>;

/** 漏えい・滅失・毀損. */
export const BREACH_KINDS = {
  leak: bi('漏えい', 'leak'),
  loss: bi('滅失', 'loss'),
  damage: bi('毀損', 'damage'),
} as const satisfies Record<string, Bilingual>;
export type BreachKind = keyof typeof BREACH_KINDS;
export const BREACH_KIND_CODES = Object.keys(BREACH_KINDS) as [BreachKind, ...BreachKind[]];

export const BREACH_STATUSES = ['suspected', 'confirmed', 'ruled_out'] as const;
export type BreachStatus = (typeof BREACH_STATUSES)[number];

export const NOTICE_STAGES = ['preliminary', 'final'] as const;
export type NoticeStage = (typeof NOTICE_STAGES)[number];

/** 第7条第4号: more than 1,000 people. */
export const PEOPLE_THRESHOLD = 1000;
/** Japan calendar days, the day of learning being day 1 (土日祝日を含む). */
export const PRELIMINARY_TARGET_DAYS = 3;
export const PRELIMINARY_LATEST_DAYS = 5;
export const FINAL_DAYS = 30;
export const FINAL_DAYS_UNAUTHORISED = 60;
/** Operators are reminded this long before each deadline, once per deadline. */
export const REMINDER_LEAD_MS = { preliminary: 24 * 3_600_000, final: 7 * 86_400_000 } as const;

/** The end of the Japan calendar day that is day `n` when the day of `learnedAt` is day 1. */
export function dayEnd(learnedAt: Date, n: number): Date {
  return endOfJapanDay(addDays(japanDateOf(learnedAt), n - 1));
}

export interface BreachDeadlines {
  preliminary: { targetAt: Date; latestAt: Date; rule: Bilingual };
  final: { dueAt: Date; days: number; rule: Bilingual };
}

/** 施行規則 第8条: when each report to the customer is due, and which rule gives the date. */
export function breachDeadlines(learnedAt: Date, unauthorisedPurpose: boolean): BreachDeadlines {
  const days = unauthorisedPurpose ? FINAL_DAYS_UNAUTHORISED : FINAL_DAYS;
  return {
    preliminary: {
      targetAt: dayEnd(learnedAt, PRELIMINARY_TARGET_DAYS),
      latestAt: dayEnd(learnedAt, PRELIMINARY_LATEST_DAYS),
      rule: bi(
        `速報（施行規則第8条第1項「速やかに」）: 弊社が知った日を1日目として${PRELIMINARY_TARGET_DAYS}日目中を目標、遅くとも${PRELIMINARY_LATEST_DAYS}日目中。`,
        `Preliminary report (Enforcement Rules Art. 8(1), "promptly"): by the end of day ${PRELIMINARY_TARGET_DAYS}, at the latest day ${PRELIMINARY_LATEST_DAYS}, counting the day the provider learned of it as day 1 (Japan calendar).`,
      ),
    },
    final: {
      dueAt: dayEnd(learnedAt, days),
      days,
      rule: unauthorisedPurpose
        ? bi(
            `確報（施行規則第8条第2項）: 不正の目的をもって行われたおそれがある事態（第7条第3号）のため${days}日以内（知った日を1日目とする）。`,
            `Final report (Art. 8(2)): within ${days} days because the case may involve unauthorised purpose (Art. 7(iii)); the day of learning is day 1.`,
          )
        : bi(`確報（施行規則第8条第2項）: ${days}日以内（知った日を1日目とする）。`, `Final report (Art. 8(2)): within ${days} days; the day of learning is day 1.`),
    },
  };
}

export interface Reportability {
  items: Array<{ item: string; label: Bilingual; applies: boolean | 'unknown' }>;
  advancedMeasures: boolean;
  /** Whether the case looks reportable to the PPC under 第7条 — for the controller's judgement. */
  reportable: 'yes' | 'no' | 'undetermined';
  reason: Bilingual;
}

/** 施行規則 第7条 第1号〜第4号, with the exclusion for advanced measures such as strong encryption. */
export function reportability(c: { sensitive: boolean; financialRisk: boolean; peopleCount: number | null; advancedMeasures: boolean }, unauthorisedPurpose: boolean): Reportability {
  const items: Reportability['items'] = [
    { item: '7-1', label: bi('第7条第1号 要配慮個人情報', 'Art. 7(i) special-care-required personal information'), applies: c.sensitive },
    { item: '7-2', label: bi('第7条第2号 財産的被害が生じるおそれ', 'Art. 7(ii) risk of financial damage'), applies: c.financialRisk },
    { item: '7-3', label: bi('第7条第3号 不正の目的をもって行われたおそれ', 'Art. 7(iii) possibly done with unauthorised purpose'), applies: unauthorisedPurpose },
    { item: '7-4', label: bi(`第7条第4号 本人の数が${PEOPLE_THRESHOLD.toLocaleString('ja-JP')}人を超える`, `Art. 7(iv) more than ${PEOPLE_THRESHOLD} people`), applies: c.peopleCount === null ? 'unknown' : c.peopleCount > PEOPLE_THRESHOLD },
  ];
  if (c.advancedMeasures) {
    return { items, advancedMeasures: true, reportable: 'no', reason: bi('高度な暗号化その他の必要な措置が講じられているため第7条の対象外とみられます（判断はお客様）。', 'Advanced measures such as strong encryption were in place, so Art. 7 appears not to apply (the controller decides).') };
  }
  if (items.some((i) => i.applies === true)) {
    const which = items.filter((i) => i.applies === true);
    return { items, advancedMeasures: false, reportable: 'yes', reason: bi(`${which.map((i) => i.label.ja).join('、')}に該当します。`, `Meets ${which.map((i) => i.label.en).join('; ')}.`) };
  }
  if (items.some((i) => i.applies === 'unknown')) {
    return { items, advancedMeasures: false, reportable: 'undetermined', reason: bi('本人の数が未確定のため判断できません。', 'Cannot be decided while the number of people is unknown.') };
  }
  return { items, advancedMeasures: false, reportable: 'no', reason: bi('第7条各号のいずれにも該当しないとみられます。', 'None of the items of Art. 7 appears to apply.') };
}

export type StageState = 'done' | 'open' | 'due_soon' | 'overdue';

function stageState(sentAt: Date | null, dueAt: Date, lead: number, now: Date): StageState {
  if (sentAt) return 'done';
  if (now.getTime() > dueAt.getTime()) return 'overdue';
  return now.getTime() >= dueAt.getTime() - lead ? 'due_soon' : 'open';
}

export interface TimelineEntry {
  at: string;
  event: string;
}

export interface BreachCustomerView {
  customerId: string;
  learnedAt: string;
  dataItems: string[];
  people: { count: number | null; estimated: boolean };
  sensitive: boolean;
  financialRisk: boolean;
  advancedMeasures: boolean;
  protectionNote: string;
  reportability: Reportability;
  deadlines: { preliminary: { targetAt: string; latestAt: string; rule: Bilingual; state: StageState }; final: { dueAt: string; days: number; rule: Bilingual; state: StageState } };
  notices: { preliminary: { at: string; by: string } | null; final: { at: string; by: string } | null };
  /** What the report still needs. */
  missing: string[];
}

export interface BreachView {
  id: string;
  incidentId: string;
  kinds: Array<{ code: BreachKind; label: Bilingual }>;
  status: BreachStatus;
  learnedAt: string;
  beganAt: string | null;
  unauthorisedPurpose: boolean;
  cause: string;
  secondaryDamage: string;
  countermeasures: string;
  contact: string;
  timeline: TimelineEntry[];
  customers: BreachCustomerView[];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

function customerView(b: BreachRow, c: BreachCustomerRow, now: Date): BreachCustomerView {
  const d = breachDeadlines(c.learned_at, b.unauthorised_purpose);
  const missing: string[] = [];
  if (c.data_items.length === 0) missing.push('dataItems');
  if (c.people_count === null) missing.push('peopleCount');
  if (!b.cause) missing.push('cause');
  if (!b.countermeasures) missing.push('countermeasures');
  if (!b.contact) missing.push('contact');
  if (!b.secondary_damage) missing.push('secondaryDamage');
  if ((b.timeline as TimelineEntry[]).length === 0) missing.push('timeline');
  return {
    customerId: c.customer_id,
    learnedAt: c.learned_at.toISOString(),
    dataItems: c.data_items,
    people: { count: c.people_count, estimated: c.people_estimated },
    sensitive: c.sensitive,
    financialRisk: c.financial_risk,
    advancedMeasures: c.advanced_measures,
    protectionNote: c.protection_note,
    reportability: reportability({ sensitive: c.sensitive, financialRisk: c.financial_risk, peopleCount: c.people_count, advancedMeasures: c.advanced_measures }, b.unauthorised_purpose),
    deadlines: {
      preliminary: { targetAt: d.preliminary.targetAt.toISOString(), latestAt: d.preliminary.latestAt.toISOString(), rule: d.preliminary.rule, state: stageState(c.preliminary_at, d.preliminary.targetAt, REMINDER_LEAD_MS.preliminary, now) },
      final: { dueAt: d.final.dueAt.toISOString(), days: d.final.days, rule: d.final.rule, state: stageState(c.final_at, d.final.dueAt, REMINDER_LEAD_MS.final, now) },
    },
    notices: {
      preliminary: c.preliminary_at ? { at: c.preliminary_at.toISOString(), by: c.preliminary_by ?? '' } : null,
      final: c.final_at ? { at: c.final_at.toISOString(), by: c.final_by ?? '' } : null,
    },
    missing,
  };
}

function view(b: BreachRow, customers: BreachCustomerRow[], now: Date): BreachView {
  return {
    id: b.id,
    incidentId: b.incident_id,
    kinds: (b.kinds as BreachKind[]).map((code) => ({ code, label: BREACH_KINDS[code] })),
    status: b.status,
    learnedAt: b.learned_at.toISOString(),
    beganAt: b.began_at?.toISOString() ?? null,
    unauthorisedPurpose: b.unauthorised_purpose,
    cause: b.cause,
    secondaryDamage: b.secondary_damage,
    countermeasures: b.countermeasures,
    contact: b.contact,
    timeline: b.timeline as TimelineEntry[],
    customers: customers.map((c) => customerView(b, c, now)),
    createdBy: b.created_by,
    createdAt: b.created_at.toISOString(),
    updatedAt: b.updated_at.toISOString(),
  };
}

// --- input -----------------------------------------------------------------------------------

export interface BreachCustomerInput {
  customerId: string;
  /** When the provider learned this customer's data was involved; defaults to the breach's time. */
  learnedAt?: Date;
  dataItems?: string[];
  peopleCount?: number | null;
  peopleEstimated?: boolean;
  sensitive?: boolean;
  financialRisk?: boolean;
  advancedMeasures?: boolean;
  protectionNote?: string;
}

export interface BreachDetails {
  kinds?: BreachKind[];
  status?: BreachStatus;
  beganAt?: Date | null;
  unauthorisedPurpose?: boolean;
  cause?: string;
  secondaryDamage?: string;
  countermeasures?: string;
  contact?: string;
  timeline?: Array<{ at: Date; event: string }>;
}

export interface NewBreach extends BreachDetails {
  kinds: BreachKind[];
  status: Exclude<BreachStatus, 'ruled_out'>;
  /** When the provider learned of it; defaults to the incident's detection time. */
  learnedAt?: Date;
  unauthorisedPurpose: boolean;
  customers: BreachCustomerInput[];
}

const future = (path: string) => errors.invalidField(path, '未来の時刻は指定できません。', 'must not be in the future');

function checkDetails(d: BreachDetails, learnedAt: Date, now: Date): void {
  if (d.kinds && new Set(d.kinds).size !== d.kinds.length) throw errors.invalidField('kinds', '種類が重複しています。', 'must not repeat a kind');
  if (d.beganAt && d.beganAt.getTime() > learnedAt.getTime()) throw errors.invalidField('beganAt', '発生時刻は弊社が知った時刻より前にしてください。', 'must not be after learnedAt');
  d.timeline?.forEach((t, i) => {
    if (t.at.getTime() > now.getTime()) throw future(`timeline.${i}.at`);
  });
}

async function checkCustomers(trx: Tx, clock: Clock, incidentId: string, learnedAt: Date, list: BreachCustomerInput[], now: Date): Promise<void> {
  const incident = await getIncident(trx, clock, incidentId);
  const ids = list.map((c) => c.customerId);
  if (new Set(ids).size !== ids.length) throw errors.invalidField('customers', '同じお客様が重複しています。', 'must not name a customer twice');
  const found = new Set((ids.length ? await trx.selectFrom('customers').select('id').where('id', 'in', ids).execute() : []).map((r) => r.id));
  list.forEach((c, i) => {
    if (!found.has(c.customerId)) throw errors.invalidField(`customers.${i}.customerId`, `不明なお客様です: ${c.customerId}`, `unknown customer ${c.customerId}`);
    if (incident.customerIds !== 'all' && !incident.customerIds.includes(c.customerId)) {
      throw errors.invalidField(`customers.${i}.customerId`, 'この障害の影響を受けたお客様ではありません。', 'is not among the customers affected by the incident');
    }
    if (c.learnedAt) {
      if (c.learnedAt.getTime() < learnedAt.getTime()) throw errors.invalidField(`customers.${i}.learnedAt`, '漏えい等を知った時刻より前です。', "must not be before the breach's learnedAt");
      if (c.learnedAt.getTime() > now.getTime()) throw future(`customers.${i}.learnedAt`);
    }
  });
}

const timelineJson = (t: Array<{ at: Date; event: string }>) => JSON.stringify([...t].sort((a, b) => a.at.getTime() - b.at.getTime()).map((x) => ({ at: x.at.toISOString(), event: x.event })));

function customerValues(c: BreachCustomerInput): Partial<Omit<BreachCustomerRow, 'breach_id' | 'customer_id'>> {
  return {
    ...(c.learnedAt ? { learned_at: c.learnedAt } : {}),
    ...(c.dataItems !== undefined ? { data_items: c.dataItems } : {}),
    ...(c.peopleCount !== undefined ? { people_count: c.peopleCount } : {}),
    ...(c.peopleEstimated !== undefined ? { people_estimated: c.peopleEstimated } : {}),
    ...(c.sensitive !== undefined ? { sensitive: c.sensitive } : {}),
    ...(c.financialRisk !== undefined ? { financial_risk: c.financialRisk } : {}),
    ...(c.advancedMeasures !== undefined ? { advanced_measures: c.advancedMeasures } : {}),
    ...(c.protectionNote !== undefined ? { protection_note: c.protectionNote } : {}),
  };
}

async function upsertCustomers(trx: Tx, breachId: string, learnedAt: Date, list: BreachCustomerInput[]): Promise<void> {
  for (const c of list) {
    const values = customerValues(c);
    const existing = await trx.selectFrom('personal_data_breach_customers').select('customer_id').where('breach_id', '=', breachId).where('customer_id', '=', c.customerId).forUpdate().executeTakeFirst();
    if (existing) {
      if (Object.keys(values).length) await trx.updateTable('personal_data_breach_customers').set(values).where('breach_id', '=', breachId).where('customer_id', '=', c.customerId).execute();
    } else {
      await trx
        .insertInto('personal_data_breach_customers')
        .values({
          breach_id: breachId,
          customer_id: c.customerId,
          learned_at: c.learnedAt ?? learnedAt,
          data_items: c.dataItems ?? [],
          people_count: c.peopleCount ?? null,
          people_estimated: c.peopleEstimated ?? false,
          sensitive: c.sensitive ?? false,
          financial_risk: c.financialRisk ?? false,
          advanced_measures: c.advancedMeasures ?? false,
          protection_note: c.protectionNote ?? '',
          preliminary_at: null,
          preliminary_by: null,
          final_at: null,
          final_by: null,
        })
        .execute();
    }
  }
}

async function load(db: DbOrTx, id: string, lock = false): Promise<{ b: BreachRow; customers: BreachCustomerRow[] }> {
  let q = db.selectFrom('personal_data_breaches').selectAll().where('id', '=', id);
  if (lock) q = q.forUpdate();
  const b = await q.executeTakeFirst();
  if (!b) throw errors.notFound('個人データ漏えい等 / personal-data breach', id);
  const customers = await db.selectFrom('personal_data_breach_customers').selectAll().where('breach_id', '=', id).orderBy('customer_id').execute();
  return { b, customers };
}

/** The audit row names the customer only when exactly one is affected. */
const auditCustomer = (ids: string[]) => (ids.length === 1 ? ids[0]! : null);

/** Marks an incident as a possible leak, loss or damage of personal data; the clocks start. */
export async function markBreach(db: Db, clock: Clock, actor: Actor, incidentId: string, input: NewBreach): Promise<BreachView> {
  const now = clock.now();
  if (input.customers.length === 0) throw errors.invalidField('customers', '影響を受けたお客様を1件以上指定してください。', 'name at least one affected customer');
  if (input.learnedAt && input.learnedAt.getTime() > now.getTime()) throw future('learnedAt');
  return db.transaction().execute(async (trx) => {
    const incident = await getIncident(trx, clock, incidentId);
    const learnedAt = input.learnedAt ?? new Date(incident.times.detected);
    if (learnedAt.getTime() < new Date(incident.times.occurred).getTime()) throw errors.invalidField('learnedAt', '障害の発生時刻より前です。', "must not be before the incident's occurrence");
    checkDetails(input, learnedAt, now);
    await checkCustomers(trx, clock, incidentId, learnedAt, input.customers, now);
    const taken = await trx.selectFrom('personal_data_breaches').select('id').where('incident_id', '=', incidentId).executeTakeFirst();
    if (taken) throw new HokanError('duplicate', bi(`この障害は既に個人データ漏えい等として記録されています（${taken.id}）。`, `This incident is already marked as a personal-data breach (${taken.id}).`));
    const id = randomUUID();
    await trx
      .insertInto('personal_data_breaches')
      .values({
        id,
        incident_id: incidentId,
        kinds: input.kinds,
        status: input.status,
        learned_at: learnedAt,
        began_at: input.beganAt ?? null,
        unauthorised_purpose: input.unauthorisedPurpose,
        cause: input.cause ?? '',
        secondary_damage: input.secondaryDamage ?? '',
        countermeasures: input.countermeasures ?? '',
        contact: input.contact ?? '',
        timeline: timelineJson(input.timeline ?? []),
        created_by: actor.label,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await upsertCustomers(trx, id, learnedAt, input.customers);
    const ids = input.customers.map((c) => c.customerId);
    await appendAudit(trx, clock, { actor, action: 'breach.marked', subjectType: 'personal_data_breach', subjectId: id, customerId: auditCustomer(ids), details: { incidentId, kinds: input.kinds, status: input.status, learnedAt: learnedAt.toISOString(), unauthorisedPurpose: input.unauthorisedPurpose, customerIds: ids } });
    const { b, customers } = await load(trx, id);
    return view(b, customers, now);
  });
}

/** Operators fill in what the report needs; customers may be added as they are found. */
export async function updateBreach(db: Db, clock: Clock, actor: Actor, breachId: string, input: BreachDetails & { customers?: BreachCustomerInput[] }): Promise<BreachView> {
  const now = clock.now();
  return db.transaction().execute(async (trx) => {
    const { b, customers } = await load(trx, breachId, true);
    checkDetails(input, b.learned_at, now);
    if (input.customers) {
      await checkCustomers(trx, clock, b.incident_id, b.learned_at, input.customers, now);
      input.customers.forEach((c, i) => {
        const old = customers.find((x) => x.customer_id === c.customerId);
        if (old?.preliminary_at && c.learnedAt && c.learnedAt.getTime() > old.preliminary_at.getTime()) {
          throw errors.invalidField(`customers.${i}.learnedAt`, '既に記録された速報の送付時刻より後です。', 'must not be after the preliminary notice already recorded');
        }
      });
    }
    const set: Updateable<PersonalDataBreachesTable> = {
      ...(input.kinds ? { kinds: input.kinds } : {}),
      ...(input.status ? { status: input.status } : {}),
      ...(input.beganAt !== undefined ? { began_at: input.beganAt } : {}),
      ...(input.unauthorisedPurpose !== undefined ? { unauthorised_purpose: input.unauthorisedPurpose } : {}),
      ...(input.cause !== undefined ? { cause: input.cause } : {}),
      ...(input.secondaryDamage !== undefined ? { secondary_damage: input.secondaryDamage } : {}),
      ...(input.countermeasures !== undefined ? { countermeasures: input.countermeasures } : {}),
      ...(input.contact !== undefined ? { contact: input.contact } : {}),
    };
    await trx
      .updateTable('personal_data_breaches')
      .set({ ...set, ...(input.timeline ? { timeline: timelineJson(input.timeline) } : {}), updated_at: now })
      .where('id', '=', breachId)
      .execute();
    if (input.customers) await upsertCustomers(trx, breachId, b.learned_at, input.customers);
    const fields = [...Object.keys(set), ...(input.timeline ? ['timeline'] : []), ...(input.customers ? ['customers'] : [])];
    await appendAudit(trx, clock, { actor, action: 'breach.updated', subjectType: 'personal_data_breach', subjectId: breachId, customerId: auditCustomer(customers.map((c) => c.customer_id)), details: { fields, status: input.status ?? b.status, customerIds: input.customers?.map((c) => c.customerId) ?? [] } });
    const after = await load(trx, breachId);
    return view(after.b, after.customers, now);
  });
}

/** Records that the preliminary or final notice was given to one customer: by whom, when. */
export async function recordBreachNotice(db: Db, clock: Clock, actor: Actor, breachId: string, input: { customerId: string; stage: NoticeStage; at?: Date }): Promise<BreachView> {
  const now = clock.now();
  const at = input.at ?? now;
  if (at.getTime() > now.getTime()) throw future('at');
  return db.transaction().execute(async (trx) => {
    const { b } = await load(trx, breachId, true);
    const c = await trx.selectFrom('personal_data_breach_customers').selectAll().where('breach_id', '=', breachId).where('customer_id', '=', input.customerId).forUpdate().executeTakeFirst();
    if (!c) throw errors.invalidField('customerId', 'この漏えい等の対象のお客様ではありません。', 'is not a customer affected by this breach');
    if (at.getTime() < c.learned_at.getTime()) throw errors.invalidField('at', '弊社が知った時刻より前です。', `must not be before ${c.learned_at.toISOString()} (when the provider learned of it)`);
    if (input.stage === 'preliminary') {
      if (c.preliminary_at) throw errors.conflict('速報は既に記録されています。', 'The preliminary notice is already recorded for this customer.');
      await trx.updateTable('personal_data_breach_customers').set({ preliminary_at: at, preliminary_by: actor.label }).where('breach_id', '=', breachId).where('customer_id', '=', input.customerId).execute();
    } else {
      if (!c.preliminary_at) throw new HokanError('invalid_transition', bi('確報は速報の後にのみ記録できます。', 'The final notice can only be recorded after the preliminary notice.'), [{ path: 'stage', message: 'preliminary notice first' }]);
      if (c.final_at) throw errors.conflict('確報は既に記録されています。', 'The final notice is already recorded for this customer.');
      if (at.getTime() < c.preliminary_at.getTime()) throw errors.invalidField('at', '速報より前の時刻です。', 'must not be before the preliminary notice');
      await trx.updateTable('personal_data_breach_customers').set({ final_at: at, final_by: actor.label }).where('breach_id', '=', breachId).where('customer_id', '=', input.customerId).execute();
    }
    await trx.updateTable('personal_data_breaches').set({ updated_at: now }).where('id', '=', breachId).execute();
    await appendAudit(trx, clock, { actor, action: `breach.${input.stage}_notice`, subjectType: 'personal_data_breach', subjectId: breachId, customerId: input.customerId, details: { at: at.toISOString() } });
    const after = await load(trx, b.id);
    return view(after.b, after.customers, now);
  });
}

/** One breach; for a customer only its own part, and not found unless it is affected. */
export async function getBreach(db: DbOrTx, clock: Clock, id: string, visibleCustomerId?: string): Promise<BreachView> {
  const { b, customers } = await load(db, id);
  const shown = visibleCustomerId === undefined ? customers : customers.filter((c) => c.customer_id === visibleCustomerId);
  if (visibleCustomerId !== undefined && shown.length === 0) throw errors.notFound('個人データ漏えい等 / personal-data breach', id);
  return view(b, shown, clock.now());
}

/** Breaches, newest first; for a customer those that affect it, with only its own part. */
export async function listBreaches(db: DbOrTx, clock: Clock, customerId?: string): Promise<BreachView[]> {
  let q = db.selectFrom('personal_data_breaches').selectAll().orderBy('learned_at', 'desc').limit(500);
  if (customerId !== undefined) {
    q = q.where((eb) => eb.exists(eb.selectFrom('personal_data_breach_customers as c').select('c.breach_id').whereRef('c.breach_id', '=', 'personal_data_breaches.id').where('c.customer_id', '=', customerId)));
  }
  const rows = await q.execute();
  if (rows.length === 0) return [];
  let cq = db.selectFrom('personal_data_breach_customers').selectAll().where('breach_id', 'in', rows.map((r) => r.id));
  if (customerId !== undefined) cq = cq.where('customer_id', '=', customerId);
  const links = await cq.orderBy('customer_id').execute();
  const now = clock.now();
  return rows.map((r) => view(r, links.filter((l) => l.breach_id === r.id), now));
}

export interface DueReminder {
  breachId: string;
  incidentId: string;
  customerId: string;
  stage: NoticeStage;
  dueAt: Date;
  overdue: boolean;
}

/** Notices not yet given whose deadline is within the reminder lead (or past); ruled-out cases excepted. */
export async function dueBreachReminders(db: DbOrTx, now: Date): Promise<DueReminder[]> {
  const rows = await db
    .selectFrom('personal_data_breach_customers as c')
    .innerJoin('personal_data_breaches as b', 'b.id', 'c.breach_id')
    .select(['b.id', 'b.incident_id', 'b.unauthorised_purpose', 'c.customer_id', 'c.learned_at', 'c.preliminary_at', 'c.final_at'])
    .where('b.status', '!=', 'ruled_out')
    .where('c.final_at', 'is', null)
    .execute();
  const out: DueReminder[] = [];
  for (const r of rows) {
    const d = breachDeadlines(r.learned_at, r.unauthorised_purpose);
    const stages: Array<[NoticeStage, Date, boolean]> = [
      ['preliminary', d.preliminary.targetAt, r.preliminary_at !== null],
      ['final', d.final.dueAt, r.final_at !== null],
    ];
    for (const [stage, dueAt, done] of stages) {
      if (done || now.getTime() < dueAt.getTime() - REMINDER_LEAD_MS[stage]) continue;
      out.push({ breachId: r.id, incidentId: r.incident_id, customerId: r.customer_id, stage, dueAt, overdue: now.getTime() > dueAt.getTime() });
    }
  }
  return out;
}

/** For the monthly reports: breaches the provider learned of in [start, end). */
export async function breachesLearnedBetween(db: DbOrTx, start: Date, end: Date): Promise<Array<{ id: string; customerIds: string[]; status: BreachStatus }>> {
  const rows = await db.selectFrom('personal_data_breaches').select(['id', 'status']).where('learned_at', '>=', start).where('learned_at', '<', end).execute();
  if (rows.length === 0) return [];
  const links = await db.selectFrom('personal_data_breach_customers').select(['breach_id', 'customer_id']).where('breach_id', 'in', rows.map((r) => r.id)).execute();
  return rows.map((r) => ({ id: r.id, status: r.status, customerIds: links.filter((l) => l.breach_id === r.id).map((l) => l.customer_id) }));
}
