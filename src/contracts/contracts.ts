import { randomUUID } from 'node:crypto';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import { canSeeFee, type Principal } from '../core/auth/principal.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx, Tx } from '../core/db/database.js';
import type { Selectable, Updateable } from 'kysely';
import type { ContractsTable } from '../core/db/schema.js';
import { errors, HokanError } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { addDays, endOfJapanDay, japanDateOf } from '../core/japan-time.js';
import {
  CUSTOMER_NOTICE_DAYS,
  END_REASONS,
  NO_REFUND_NOTE,
  STATUS_LABELS,
  SUSPENSION_REASONS,
  type EndReason,
  type ImmediateGround,
  type SuspensionReason,
} from './vocabulary.js';

export type ContractRow = Selectable<ContractsTable>;

export type ContractStatus = ContractRow['status'];

export interface ContractView {
  id: string;
  customerId: string;
  contractNumber: string;
  status: ContractStatus;
  statusLabel: Bilingual;
  term: { start: string; end: string };
  /** Present only for viewers allowed to see it (R14.1). */
  monthlyFeeYen?: number | null;
  linkedContracts: {
    systemUse: { contractNumber: string; endDate: string | null };
    support: { contractNumber: string; endDate: string | null };
  };
  suspension: { reason: SuspensionReason; reasonLabel: Bilingual; note: string; since: string } | null;
  scheduledEnd: { at: string; japanDate: string; reason: EndReason; reasonLabel: Bilingual } | null;
  ended: { at: string; reason: EndReason; reasonLabel: Bilingual; note: string } | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The only way a contract leaves this module, so the fee rule holds on every read path (R14.1). */
export function contractView(r: ContractRow, viewer: Principal): ContractView {
  const v: ContractView = {
    id: r.id,
    customerId: r.customer_id,
    contractNumber: r.contract_number,
    status: r.status,
    statusLabel: STATUS_LABELS[r.status],
    term: { start: r.term_start, end: r.term_end },
    linkedContracts: {
      systemUse: { contractNumber: r.system_use_contract_number, endDate: r.system_use_contract_end },
      support: { contractNumber: r.support_contract_number, endDate: r.support_contract_end },
    },
    suspension:
      r.status === 'suspended' && r.suspension_reason
        ? {
            reason: r.suspension_reason as SuspensionReason,
            reasonLabel: SUSPENSION_REASONS[r.suspension_reason as SuspensionReason],
            note: r.suspension_note ?? '',
            since: (r.suspended_at ?? r.updated_at).toISOString(),
          }
        : null,
    scheduledEnd:
      r.scheduled_end_at && r.scheduled_end_reason && r.status !== 'ended'
        ? {
            at: r.scheduled_end_at.toISOString(),
            japanDate: japanDateOf(new Date(r.scheduled_end_at.getTime() - 1)),
            reason: r.scheduled_end_reason as EndReason,
            reasonLabel: END_REASONS[r.scheduled_end_reason as EndReason],
          }
        : null,
    ended:
      r.status === 'ended' && r.ended_at && r.end_reason
        ? { at: r.ended_at.toISOString(), reason: r.end_reason as EndReason, reasonLabel: END_REASONS[r.end_reason as EndReason], note: r.end_note ?? '' }
        : null,
    version: r.version,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
  if (canSeeFee(viewer, r.customer_id)) v.monthlyFeeYen = r.monthly_fee_yen;
  return v;
}

export interface NewContract {
  customerId: string;
  contractNumber: string;
  termStart: string;
  termEnd: string;
  monthlyFeeYen?: number | null;
  systemUseContractNumber: string;
  systemUseContractEnd?: string | null;
  supportContractNumber: string;
  supportContractEnd?: string | null;
}

export async function createContract(db: Db, clock: Clock, actor: Actor, input: NewContract): Promise<ContractRow> {
  if (input.termEnd < input.termStart) {
    throw errors.invalidField('termEnd', '契約期間の終了日が開始日より前です。', 'must not be before termStart');
  }
  return db.transaction().execute(async (trx) => {
    const customer = await trx.selectFrom('customers').select('id').where('id', '=', input.customerId).executeTakeFirst();
    if (!customer) throw errors.notFound('お客様 / customer', input.customerId);
    const dup = await trx.selectFrom('contracts').select('id').where('contract_number', '=', input.contractNumber).executeTakeFirst();
    if (dup) throw errors.duplicate('契約番号 / contract number', input.contractNumber);
    const now = clock.now();
    const row = await trx
      .insertInto('contracts')
      .values({
        id: randomUUID(),
        customer_id: input.customerId,
        contract_number: input.contractNumber,
        status: 'active',
        term_start: input.termStart,
        term_end: input.termEnd,
        monthly_fee_yen: input.monthlyFeeYen ?? null,
        system_use_contract_number: input.systemUseContractNumber,
        system_use_contract_end: input.systemUseContractEnd ?? null,
        support_contract_number: input.supportContractNumber,
        support_contract_end: input.supportContractEnd ?? null,
        suspension_reason: null,
        suspension_note: null,
        suspended_at: null,
        scheduled_end_at: null,
        scheduled_end_reason: null,
        ended_at: null,
        end_reason: null,
        end_note: null,
        created_at: now,
        updated_at: now,
        version: 1,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    // The fee stays out of the audit log: the log is read more widely than R14.1 allows the fee.
    await appendAudit(trx, clock, {
      actor,
      action: 'contract.created',
      subjectType: 'contract',
      subjectId: row.id,
      customerId: row.customer_id,
      details: { contractNumber: row.contract_number, termStart: row.term_start, termEnd: row.term_end, feeSet: row.monthly_fee_yen !== null },
    });
    return row;
  });
}

export async function findContract(db: DbOrTx, id: string): Promise<ContractRow | undefined> {
  return db.selectFrom('contracts').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function listContracts(db: DbOrTx, filter: { customerId?: string; status?: ContractStatus } = {}): Promise<ContractRow[]> {
  let q = db.selectFrom('contracts').selectAll().orderBy('contract_number');
  if (filter.customerId) q = q.where('customer_id', '=', filter.customerId);
  if (filter.status) q = q.where('status', '=', filter.status);
  return q.execute();
}

/**
 * Every transition runs here: the row is locked, the rule checked against its current state,
 * the change and its audit entry committed together. A crash leaves the old state or the new.
 */
async function transition(
  db: Db,
  clock: Clock,
  actor: Actor,
  contractId: string,
  action: string,
  apply: (row: ContractRow, trx: Tx, now: Date) => Promise<{ set: Omit<Updateable<ContractsTable>, 'id' | 'version'>; reason: string | null; details: Record<string, unknown> }>,
): Promise<ContractRow> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('contracts').selectAll().where('id', '=', contractId).forUpdate().executeTakeFirst();
    if (!row) throw errors.notFound('契約 / contract', contractId);
    const now = clock.now();
    const { set, reason, details } = await apply(row, trx, now);
    const updated = await trx
      .updateTable('contracts')
      .set({ ...set, updated_at: now, version: row.version + 1 })
      .where('id', '=', contractId)
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, {
      actor,
      action: `contract.${action}`,
      subjectType: 'contract',
      subjectId: contractId,
      customerId: row.customer_id,
      reason,
      details: { from: row.status, to: updated.status, ...details },
    });
    if (updated.status === 'ended' && row.status !== 'ended') {
      // R10.7: the data-custody domain consumes this and purges the customer's data.
      await trx
        .insertInto('data_deletion_due')
        .values({ id: randomUUID(), contract_id: contractId, customer_id: row.customer_id, contract_ended_at: updated.ended_at ?? now, created_at: now, consumed_at: null, consumed_by: null })
        .execute();
    }
    return updated;
  });
}

function requireNotEnded(row: ContractRow, action: string): void {
  if (row.status === 'ended') throw errors.invalidTransition(row.status, action);
}

const endSet = (reason: EndReason, at: Date, note: string) =>
  ({ status: 'ended', ended_at: at, end_reason: reason, end_note: note, scheduled_end_at: null, scheduled_end_reason: null, suspension_reason: null, suspension_note: null, suspended_at: null }) as const;

/** R11.1: suspension blocks access and keeps the data. */
export function suspendContract(db: Db, clock: Clock, actor: Actor, id: string, input: { reason: SuspensionReason; note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, id, 'suspended', async (row, _trx, now) => {
    if (row.status !== 'active') throw errors.invalidTransition(row.status, 'suspend');
    return {
      set: { status: 'suspended', suspension_reason: input.reason, suspension_note: input.note, suspended_at: now },
      reason: `${input.reason}: ${input.note}`,
      details: { suspensionReason: input.reason },
    };
  });
}

export function resumeContract(db: Db, clock: Clock, actor: Actor, id: string, input: { note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, id, 'resumed', async (row) => {
    if (row.status !== 'suspended') throw errors.invalidTransition(row.status, 'resume');
    return {
      set: { status: 'active', suspension_reason: null, suspension_note: null, suspended_at: null },
      reason: input.note,
      details: { previousSuspensionReason: row.suspension_reason },
    };
  });
}

export interface TerminationNoticeResult {
  contract: ContractRow;
  notice: { id: string; receivedAt: string; earliestEndDate: string; endDate: string; endsAt: string; noRefund: true; noRefundNote: Bilingual };
}

/** How long after its arrival a written termination notice may still be recorded with its receipt time. */
const MAX_NOTICE_BACKDATE_DAYS = 31;

/**
 * R22.3: the customer's written notice, at least 30 days ahead. The end date is computed in Japan
 * time: notice received on day D (JST) can end the contract at the earliest on D + 30, and the
 * contract runs through that whole day.
 */
export async function fileTerminationNotice(
  db: Db,
  clock: Clock,
  actor: Actor & { id: string },
  id: string,
  input: { endDate?: string | undefined; note: string; receivedAt?: Date | undefined },
): Promise<TerminationNoticeResult> {
  let notice: TerminationNoticeResult['notice'] | undefined;
  const contract = await transition(db, clock, actor, id, 'termination_notice_filed', async (row, trx, now) => {
    requireNotEnded(row, 'termination notice');
    if (row.scheduled_end_reason === 'customer_notice') {
      throw errors.conflict('この契約には既に解約通知が届いています。', 'A termination notice has already been filed for this contract.');
    }
    // A letter is recorded after it arrived: the 30 days run from its receipt, not from its entry,
    // or the customer would be held (and billed) for the days it waited on a desk.
    const receivedAt = input.receivedAt ?? now;
    if (receivedAt.getTime() > now.getTime()) throw errors.invalidField('receivedAt', '受領日時が未来です。', 'must not be in the future');
    if (receivedAt.getTime() < now.getTime() - MAX_NOTICE_BACKDATE_DAYS * 86_400_000) {
      throw errors.invalidField('receivedAt', `受領日時は${MAX_NOTICE_BACKDATE_DAYS}日以内にしてください。`, `must be within the last ${MAX_NOTICE_BACKDATE_DAYS} days`);
    }
    if (receivedAt.getTime() < row.created_at.getTime()) throw errors.invalidField('receivedAt', '受領日時が契約の登録より前です。', 'must not be before the contract was recorded');
    const earliest = addDays(japanDateOf(receivedAt), CUSTOMER_NOTICE_DAYS);
    const endDate = input.endDate ?? earliest;
    if (endDate < earliest) {
      throw new HokanError(
        'notice_too_short',
        bi(
          `解約は30日前までに通知してください。最も早い終了日は ${earliest} です（指定: ${endDate}）。`,
          `Termination needs 30 days' written notice: the earliest end date is ${earliest} (requested ${endDate}).`,
        ),
        [{ path: 'endDate', message: `must be on or after ${earliest}` }],
      );
    }
    const endsAt = endOfJapanDay(endDate);
    const noticeId = randomUUID();
    await trx
      .insertInto('termination_notices')
      .values({ id: noticeId, contract_id: id, received_at: receivedAt, end_date: endDate, earliest_end_date: earliest, no_refund: true, filed_by: actor.id, note: input.note })
      .execute();
    notice = { id: noticeId, receivedAt: receivedAt.toISOString(), earliestEndDate: earliest, endDate, endsAt: endsAt.toISOString(), noRefund: true, noRefundNote: NO_REFUND_NOTE };
    // An earlier end already due (say, the term) stays; the notice never extends a contract.
    const keepEarlier = row.scheduled_end_at !== null && row.scheduled_end_at.getTime() <= endsAt.getTime();
    return {
      set: keepEarlier ? {} : { scheduled_end_at: endsAt, scheduled_end_reason: 'customer_notice' },
      reason: input.note,
      details: { terminationNoticeId: noticeId, endDate, earliestEndDate: earliest, noRefund: true, receivedAt: receivedAt.toISOString() },
    };
  });
  return { contract, notice: notice! };
}

export interface BreachNoticeView {
  id: string;
  contractId: string;
  issuedAt: string;
  cureDeadline: string;
  description: string;
  curedAt: string | null;
  curedNote: string | null;
}

type BreachRow = { id: string; contract_id: string; issued_at: Date; cure_deadline: Date; description: string; cured_at: Date | null; cured_note: string | null };
export const breachView = (b: BreachRow): BreachNoticeView => ({
  id: b.id,
  contractId: b.contract_id,
  issuedAt: b.issued_at.toISOString(),
  cureDeadline: b.cure_deadline.toISOString(),
  description: b.description,
  curedAt: b.cured_at?.toISOString() ?? null,
  curedNote: b.cured_note,
});

/** R22.1, first step: a written notice naming the breach and a cure deadline in the future. */
export async function issueBreachNotice(
  db: Db,
  clock: Clock,
  actor: Actor & { id: string },
  id: string,
  input: { description: string; cureDeadline: Date },
): Promise<{ contract: ContractRow; breachNotice: BreachNoticeView }> {
  let notice: BreachNoticeView | undefined;
  const contract = await transition(db, clock, actor, id, 'breach_notice_issued', async (row, trx, now) => {
    requireNotEnded(row, 'breach notice');
    if (input.cureDeadline.getTime() <= now.getTime()) {
      throw new HokanError(
        'deadline_in_past',
        bi(`是正期限（${input.cureDeadline.toISOString()}）は現在より後にしてください。`, `The cure deadline (${input.cureDeadline.toISOString()}) must be in the future.`),
        [{ path: 'cureDeadline', message: 'must be in the future' }],
      );
    }
    const inserted = await trx
      .insertInto('breach_notices')
      .values({ id: randomUUID(), contract_id: id, issued_at: now, cure_deadline: input.cureDeadline, description: input.description, issued_by: actor.id, cured_at: null, cured_note: null })
      .returningAll()
      .executeTakeFirstOrThrow();
    notice = breachView(inserted);
    return { set: {}, reason: input.description, details: { breachNoticeId: inserted.id, cureDeadline: input.cureDeadline.toISOString() } };
  });
  return { contract, breachNotice: notice! };
}

export async function listBreachNotices(db: DbOrTx, contractId: string): Promise<BreachNoticeView[]> {
  const rows = await db.selectFrom('breach_notices').selectAll().where('contract_id', '=', contractId).orderBy('issued_at').execute();
  return rows.map(breachView);
}

async function lockedBreachNotice(trx: Tx, contractId: string, noticeId: string): Promise<BreachRow> {
  const b = await trx.selectFrom('breach_notices').selectAll().where('id', '=', noticeId).where('contract_id', '=', contractId).forUpdate().executeTakeFirst();
  if (!b) throw errors.notFound('違反通知 / breach notice', noticeId);
  return b;
}

export function recordBreachCured(db: Db, clock: Clock, actor: Actor, contractId: string, noticeId: string, input: { note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, contractId, 'breach_cured', async (row, trx, now) => {
    requireNotEnded(row, 'record cure');
    const b = await lockedBreachNotice(trx, contractId, noticeId);
    if (b.cured_at) throw errors.conflict('この違反は既に是正済みです。', 'This breach is already recorded as cured.');
    await trx.updateTable('breach_notices').set({ cured_at: now, cured_note: input.note }).where('id', '=', noticeId).execute();
    return { set: {}, reason: input.note, details: { breachNoticeId: noticeId } };
  });
}

/** R22.1, second step: allowed only once the cure deadline has passed with the breach uncured. */
export function terminateForBreach(db: Db, clock: Clock, actor: Actor, contractId: string, input: { breachNoticeId: string; note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, contractId, 'terminated', async (row, trx, now) => {
    requireNotEnded(row, 'terminate for breach');
    const b = await lockedBreachNotice(trx, contractId, input.breachNoticeId);
    if (b.cured_at) throw errors.conflict('この違反は是正済みのため、解除の理由になりません。', 'This breach was cured and cannot ground a termination.');
    if (b.cure_deadline.getTime() > now.getTime()) {
      throw new HokanError(
        'cure_period_not_over',
        bi(`是正期限（${b.cure_deadline.toISOString()}）が過ぎるまで解除できません。`, `The cure period runs until ${b.cure_deadline.toISOString()}; the contract cannot be terminated before then.`),
      );
    }
    return { set: endSet('breach_uncured', now, input.note), reason: input.note, details: { endReason: 'breach_uncured', breachNoticeId: b.id } };
  });
}

/** R22.2, R16.1, R17.1: grounds that end the contract at once. */
export function terminateImmediately(db: Db, clock: Clock, actor: Actor, contractId: string, input: { ground: ImmediateGround; note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, contractId, 'terminated', async (row, _trx, now) => {
    requireNotEnded(row, 'terminate');
    return { set: endSet(input.ground, now, input.note), reason: input.note, details: { endReason: input.ground } };
  });
}

/** R22.4: records the end date of a linked contract; passing it ends this one (see enforceContractEnds). */
export function setLinkedContractEnd(
  db: Db,
  clock: Clock,
  actor: Actor,
  contractId: string,
  input: { linked: 'system_use' | 'support'; endDate: string | null; note: string },
): Promise<ContractRow> {
  return transition(db, clock, actor, contractId, 'linked_contract_end_set', async (row) => {
    requireNotEnded(row, 'set linked contract end');
    const set = input.linked === 'system_use' ? { system_use_contract_end: input.endDate } : { support_contract_end: input.endDate };
    return { set, reason: input.note, details: { linked: input.linked, endDate: input.endDate } };
  });
}

/** R21.1: the agreed term can be extended (renewal) while the contract runs. */
export function extendTerm(db: Db, clock: Clock, actor: Actor, contractId: string, input: { termEnd: string; note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, contractId, 'term_extended', async (row, _trx, now) => {
    requireNotEnded(row, 'extend term');
    if (input.termEnd <= row.term_end) {
      throw errors.invalidField('termEnd', `新しい終了日は現在の終了日（${row.term_end}）より後にしてください。`, `must be after the current term end ${row.term_end}`);
    }
    if (input.termEnd < japanDateOf(now)) {
      throw errors.invalidField('termEnd', '新しい終了日が過去の日付です。', 'must not be in the past');
    }
    return { set: { term_end: input.termEnd }, reason: input.note, details: { from: row.term_end, termEnd: input.termEnd } };
  });
}

/** R14.1: set by the billing role; the amount is kept out of the audit log. */
export function setMonthlyFee(db: Db, clock: Clock, actor: Actor, contractId: string, input: { monthlyFeeYen: number; note: string }): Promise<ContractRow> {
  return transition(db, clock, actor, contractId, 'fee_changed', async (row) => {
    requireNotEnded(row, 'change fee');
    return { set: { monthly_fee_yen: input.monthlyFeeYen }, reason: input.note, details: { feeChanged: true } };
  });
}

/** Which end applies to a contract at `now`, if any: the earliest instant that has passed. */
export function dueEnd(row: ContractRow, now: Date): { reason: EndReason; at: Date } | null {
  const candidates: Array<{ reason: EndReason; at: Date }> = [];
  if (row.scheduled_end_at && row.scheduled_end_reason) candidates.push({ reason: row.scheduled_end_reason as EndReason, at: row.scheduled_end_at });
  candidates.push({ reason: 'term_expired', at: endOfJapanDay(row.term_end) });
  if (row.system_use_contract_end) candidates.push({ reason: 'linked_contract_ended', at: endOfJapanDay(row.system_use_contract_end) });
  if (row.support_contract_end) candidates.push({ reason: 'linked_contract_ended', at: endOfJapanDay(row.support_contract_end) });
  const due = candidates.filter((c) => c.at.getTime() <= now.getTime()).sort((a, b) => a.at.getTime() - b.at.getTime());
  return due[0] ?? null;
}

/**
 * The scheduled job behind R21.1, R22.3 and R22.4: ends every contract whose end has come.
 * Idempotent, so a tick that runs late or twice changes nothing more.
 */
export async function enforceContractEnds(db: Db, clock: Clock, actor: Actor): Promise<ContractRow[]> {
  const now = clock.now();
  const open = await db.selectFrom('contracts').selectAll().where('status', '<>', 'ended').execute();
  const ended: ContractRow[] = [];
  for (const candidate of open) {
    if (!dueEnd(candidate, now)) continue;
    try {
      const row = await transition(db, clock, actor, candidate.id, 'ended', async (row) => {
        const due = row.status === 'ended' ? null : dueEnd(row, now);
        if (!due) throw errors.invalidTransition(row.status, 'end');
        return { set: endSet(due.reason, due.at, END_REASONS[due.reason].en), reason: END_REASONS[due.reason].en, details: { endReason: due.reason, effectiveAt: due.at.toISOString() } };
      });
      ended.push(row);
    } catch (err) {
      // Another instance ended it between our read and our lock: nothing left to do.
      if (!(err instanceof HokanError && err.code === 'invalid_transition')) throw err;
    }
  }
  return ended;
}

export interface DataDeletionDue {
  id: string;
  contractId: string;
  customerId: string;
  contractEndedAt: string;
  createdAt: string;
  consumedAt: string | null;
}

/** R10.7: what the data-custody domain must purge; consumed once it has taken the work. */
export async function listDataDeletionDue(db: DbOrTx, opts: { pendingOnly?: boolean } = {}): Promise<DataDeletionDue[]> {
  let q = db.selectFrom('data_deletion_due').selectAll().orderBy('created_at');
  if (opts.pendingOnly) q = q.where('consumed_at', 'is', null);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.id,
    contractId: r.contract_id,
    customerId: r.customer_id,
    contractEndedAt: r.contract_ended_at.toISOString(),
    createdAt: r.created_at.toISOString(),
    consumedAt: r.consumed_at?.toISOString() ?? null,
  }));
}

export async function consumeDataDeletionDue(db: DbOrTx, clock: Clock, id: string, consumer: string): Promise<boolean> {
  const r = await db.updateTable('data_deletion_due').set({ consumed_at: clock.now(), consumed_by: consumer }).where('id', '=', id).where('consumed_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export async function listTerminationNotices(db: DbOrTx, contractId: string) {
  const rows = await db.selectFrom('termination_notices').selectAll().where('contract_id', '=', contractId).orderBy('received_at').execute();
  return rows.map((r) => ({
    id: r.id,
    receivedAt: r.received_at.toISOString(),
    endDate: r.end_date,
    earliestEndDate: r.earliest_end_date,
    noRefund: r.no_refund,
    note: r.note,
  }));
}

export type CustomerServiceState = 'active' | 'suspended' | 'ended' | 'none';

/**
 * Whether a customer may use the service now: any active contract serves it; otherwise a
 * suspended one blocks it (R11.1, data kept); only ended contracts mean "contract ended" (R10.7).
 */
export async function customerServiceState(db: DbOrTx, customerId: string): Promise<CustomerServiceState> {
  const rows = await db.selectFrom('contracts').select('status').distinct().where('customer_id', '=', customerId).execute();
  const states = new Set(rows.map((r) => r.status));
  if (states.has('active')) return 'active';
  if (states.has('suspended')) return 'suspended';
  if (states.has('ended')) return 'ended';
  return 'none';
}
