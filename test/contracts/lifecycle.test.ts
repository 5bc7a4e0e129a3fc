import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  enforceContractEnds,
  fileTerminationNotice,
  findContract,
  issueBreachNotice,
  listDataDeletionDue,
  recordBreachCured,
  resumeContract,
  setLinkedContractEnd,
  suspendContract,
  terminateForBreach,
  terminateImmediately,
  extendTerm,
  consumeDataDeletionDue,
} from '../../src/contracts/contracts.js';
import { listAudit, systemActor, verifyAuditChain } from '../../src/core/audit/audit-log.js';
import { HokanError } from '../../src/core/errors.js';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerUser, addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

const job = systemActor('job contracts.enforce-ends');

async function expectCode(p: Promise<unknown>, code: string): Promise<HokanError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HokanError);
  expect((err as HokanError).code).toBe(code);
  return err as HokanError;
}

describe.each(databaseKinds)('contract lifecycle on %s', (kind) => {
  let app: TestApp;
  let op: { kind: 'operator'; id: string; label: string };
  let n = 0;
  const fresh = async (opts: Parameters<typeof addCustomerWithContract>[2] = {}) => addCustomerWithContract(app, `cust${++n}`, opts);

  beforeAll(async () => {
    app = await startTestApp(kind, '2026-11-24T01:00:00Z'); // 10:00 JST, Tuesday
    const u = await addOperator(app, 'ops1', ['admin', 'operator']);
    op = { kind: 'operator', id: u.id, label: 'ops1' };
  });
  afterAll(async () => app?.close());

  const db = () => app.ctx.db;
  const clock = () => app.clock;

  it('R11.1 suspends an active contract with reason ①–④ and free text, keeping the record, and resumes it', async () => {
    const { contractId } = await fresh();
    const s = await suspendContract(db(), clock(), op, contractId, { reason: 'unpaid_fees', note: '10月分未払い' });
    expect(s.status).toBe('suspended');
    expect(s.suspension_reason).toBe('unpaid_fees');
    expect(s.suspension_note).toBe('10月分未払い');
    const r = await resumeContract(db(), clock(), op, contractId, { note: '入金確認' });
    expect(r.status).toBe('active');
    expect(r.suspension_reason).toBeNull();
    const audit = await listAudit(db(), { subjectType: 'contract', subjectId: contractId });
    expect(audit.map((a) => a.action)).toEqual(['contract.created', 'contract.suspended', 'contract.resumed']);
    expect(audit[1]).toMatchObject({ actor: { kind: 'operator', label: 'ops1' }, reason: 'unpaid_fees: 10月分未払い', details: { from: 'active', to: 'suspended' } });
  });

  it('R11.1 refuses to suspend a suspended contract or to resume an active one', async () => {
    const { contractId } = await fresh();
    await expectCode(resumeContract(db(), clock(), op, contractId, { note: 'x' }), 'invalid_transition');
    await suspendContract(db(), clock(), op, contractId, { reason: 'credential_misuse', note: 'x' });
    await expectCode(suspendContract(db(), clock(), op, contractId, { reason: 'prohibited_act', note: 'y' }), 'invalid_transition');
  });

  it('R22.3 a 30-day notice ends the contract at the end of the right day in Japan time, with no refund recorded', async () => {
    // 2026-11-24T16:30Z is already 2026-11-25 01:30 in Japan: the 30 days count from the Japan date.
    clock().set('2026-11-24T16:30:00Z');
    const { contractId } = await fresh();
    const { notice, contract } = await fileTerminationNotice(db(), clock(), op, contractId, { note: '書面受領' });
    expect(notice.earliestEndDate).toBe('2026-12-25');
    expect(notice.endDate).toBe('2026-12-25');
    expect(notice.noRefund).toBe(true);
    expect(notice.endsAt).toBe('2026-12-25T15:00:00.000Z'); // 2026-12-26 00:00 JST
    expect(contract.scheduled_end_reason).toBe('customer_notice');

    clock().set('2026-12-25T14:59:59Z'); // 23:59:59 JST on the end date: still running
    expect(await enforceContractEnds(db(), clock(), job)).toEqual([]);
    expect((await findContract(db(), contractId))?.status).toBe('active');

    clock().set('2026-12-25T15:00:30Z');
    const ended = await enforceContractEnds(db(), clock(), job);
    expect(ended.map((c) => c.id)).toContain(contractId);
    const row = await findContract(db(), contractId);
    expect(row?.status).toBe('ended');
    expect(row?.end_reason).toBe('customer_notice');
    expect(row?.ended_at?.toISOString()).toBe('2026-12-25T15:00:00.000Z');
    const due = await listDataDeletionDue(db());
    expect(due.find((d) => d.contractId === contractId)).toMatchObject({ contractEndedAt: '2026-12-25T15:00:00.000Z', consumedAt: null });
    clock().set('2026-11-24T01:00:00Z');
  });

  it('R22.3 a letter recorded days after it arrived counts its 30 days from its receipt; only operators give a receipt time', async () => {
    const { customer, contractId } = await fresh();
    await addCustomerUser(app, customer.id, `${customer.code}-admin`, 'customer_admin');
    clock().set('2026-11-28T01:00:00Z'); // recorded on Saturday the 28th (JST)
    const url = `/api/v1/contracts/${contractId}/termination-notice`;
    const ops = await app.signIn('ops1');
    const customerAdmin = await app.signIn(`${customer.code}-admin`);
    const refused: Array<[string, object, string]> = [
      [customerAdmin, { note: '', receivedAt: '2026-11-25T12:00:00+09:00' }, 'receivedAt'],
      [ops, { note: '', receivedAt: '2026-11-29T12:00:00+09:00' }, 'receivedAt'],
      [ops, { note: '', receivedAt: '2026-10-20T12:00:00+09:00' }, 'receivedAt'],
      [ops, { note: '', receivedAt: '2026-11-23T12:00:00+09:00' }, 'receivedAt'], // before the contract was recorded
      [ops, { note: '', receivedAt: 'yesterday' }, 'receivedAt'],
    ];
    for (const [cookie, payload, field] of refused) {
      const res = await app.request({ method: 'POST', url, cookie, payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.details.map((d: { path: string }) => d.path).join(' ')).toContain(field);
    }
    expect((await findContract(db(), contractId))?.scheduled_end_at).toBeNull();
    // Received on Wednesday the 25th (JST): the earliest end is 30 days from then, not from the 28th.
    const res = await app.request({ method: 'POST', url, cookie: ops, payload: { note: '25日に書面受領', receivedAt: '2026-11-25T12:00:00+09:00' } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().terminationNotice).toMatchObject({ receivedAt: '2026-11-25T03:00:00.000Z', earliestEndDate: '2026-12-25', endDate: '2026-12-25' });
    const audit = await listAudit(db(), { subjectType: 'contract', subjectId: contractId });
    expect(audit.at(-1)).toMatchObject({ action: 'contract.termination_notice_filed', details: { receivedAt: '2026-11-25T03:00:00.000Z' } });
    clock().set('2026-11-24T01:00:00Z');
  });

  it('R22.3 refuses a notice shorter than 30 days, and a second notice', async () => {
    const { contractId } = await fresh();
    const e = await expectCode(fileTerminationNotice(db(), clock(), op, contractId, { endDate: '2026-12-23', note: '' }), 'notice_too_short');
    expect(e.messages.ja).toContain('2026-12-24');
    expect((await findContract(db(), contractId))?.scheduled_end_at).toBeNull();
    await fileTerminationNotice(db(), clock(), op, contractId, { endDate: '2027-01-31', note: '' });
    await expectCode(fileTerminationNotice(db(), clock(), op, contractId, { endDate: '2027-02-28', note: '' }), 'conflict');
  });

  it('R22.1 terminates for breach only after the cure deadline passes uncured', async () => {
    const { contractId } = await fresh();
    await expectCode(
      issueBreachNotice(db(), clock(), op, contractId, { description: '禁止行為', cureDeadline: new Date('2026-11-20T00:00:00Z') }),
      'deadline_in_past',
    );
    const { breachNotice } = await issueBreachNotice(db(), clock(), op, contractId, { description: '禁止行為', cureDeadline: new Date('2026-12-08T15:00:00Z') });
    await expectCode(terminateForBreach(db(), clock(), op, contractId, { breachNoticeId: breachNotice.id, note: 'x' }), 'cure_period_not_over');
    clock().set('2026-12-08T15:00:01Z');
    const ended = await terminateForBreach(db(), clock(), op, contractId, { breachNoticeId: breachNotice.id, note: '是正なし' });
    expect(ended.status).toBe('ended');
    expect(ended.end_reason).toBe('breach_uncured');
    clock().set('2026-11-24T01:00:00Z');
  });

  it('R22.1 a cured breach cannot ground a termination', async () => {
    const { contractId } = await fresh();
    const { breachNotice } = await issueBreachNotice(db(), clock(), op, contractId, { description: '違反', cureDeadline: new Date('2026-12-01T00:00:00Z') });
    await recordBreachCured(db(), clock(), op, contractId, breachNotice.id, { note: '是正確認' });
    await expectCode(recordBreachCured(db(), clock(), op, contractId, breachNotice.id, { note: 'again' }), 'conflict');
    clock().set('2026-12-02T00:00:00Z');
    await expectCode(terminateForBreach(db(), clock(), op, contractId, { breachNoticeId: breachNotice.id, note: 'x' }), 'conflict');
    expect((await findContract(db(), contractId))?.status).toBe('active');
    clock().set('2026-11-24T01:00:00Z');
  });

  it.each([
    ['gross_breach', 'R22.2'],
    ['antisocial_forces', 'R16.1'],
    ['third_party_claim', 'R17.1'],
  ] as const)('%s (%s) ends the contract immediately, even when suspended', async (ground, _requirement) => {
    const { contractId } = await fresh();
    await suspendContract(db(), clock(), op, contractId, { reason: 'prohibited_act', note: 'x' });
    const ended = await terminateImmediately(db(), clock(), op, contractId, { ground, note: '判断記録' });
    expect(ended.status).toBe('ended');
    expect(ended.end_reason).toBe(ground);
    expect(ended.ended_at?.toISOString()).toBe(clock().now().toISOString());
    expect(ended.suspension_reason).toBeNull();
  });

  it('refuses every action on an ended contract', async () => {
    const { contractId } = await fresh();
    await terminateImmediately(db(), clock(), op, contractId, { ground: 'gross_breach', note: 'x' });
    await expectCode(suspendContract(db(), clock(), op, contractId, { reason: 'unpaid_fees', note: 'x' }), 'invalid_transition');
    await expectCode(resumeContract(db(), clock(), op, contractId, { note: 'x' }), 'invalid_transition');
    await expectCode(fileTerminationNotice(db(), clock(), op, contractId, { note: '' }), 'invalid_transition');
    await expectCode(terminateImmediately(db(), clock(), op, contractId, { ground: 'gross_breach', note: 'x' }), 'invalid_transition');
    await expectCode(issueBreachNotice(db(), clock(), op, contractId, { description: 'x', cureDeadline: new Date('2027-01-01T00:00:00Z') }), 'invalid_transition');
    await expectCode(setLinkedContractEnd(db(), clock(), op, contractId, { linked: 'support', endDate: '2027-01-01', note: 'x' }), 'invalid_transition');
    await expectCode(extendTerm(db(), clock(), op, contractId, { termEnd: '2028-03-31', note: 'x' }), 'invalid_transition');
    const due = (await listDataDeletionDue(db())).filter((d) => d.contractId === contractId);
    expect(due).toHaveLength(1);
  });

  it('R22.4 a linked support contract ending ends this one automatically, by the scheduled job', async () => {
    const { contractId } = await fresh();
    await setLinkedContractEnd(db(), clock(), op, contractId, { linked: 'support', endDate: '2026-11-30', note: 'サポート契約終了の連絡' });
    clock().set('2026-11-30T14:59:00Z');
    await app.ctx.queue.poll();
    expect((await findContract(db(), contractId))?.status).toBe('active');
    clock().set('2026-11-30T15:01:00Z'); // 2026-12-01 00:01 JST
    await app.ctx.queue.poll();
    const row = await findContract(db(), contractId);
    expect(row?.status).toBe('ended');
    expect(row?.end_reason).toBe('linked_contract_ended');
    const last = (await listAudit(db(), { subjectType: 'contract', subjectId: contractId })).at(-1);
    expect(last).toMatchObject({ action: 'contract.ended', actor: { kind: 'system' } });
    clock().set('2026-11-24T01:00:00Z');
  });

  it('R22.4 a linked system-use contract ending ends this one too', async () => {
    const { contractId } = await fresh();
    await setLinkedContractEnd(db(), clock(), op, contractId, { linked: 'system_use', endDate: '2026-12-10', note: 'x' });
    clock().set('2026-12-11T00:00:00Z');
    await enforceContractEnds(db(), clock(), job);
    expect((await findContract(db(), contractId))?.end_reason).toBe('linked_contract_ended');
    clock().set('2026-11-24T01:00:00Z');
  });

  it('R21.1 ends at the end of the term, and an extended term runs on', async () => {
    const a = await fresh({ termStart: '2026-01-01', termEnd: '2026-12-31' });
    const b = await fresh({ termStart: '2026-01-01', termEnd: '2026-12-31' });
    await extendTerm(db(), clock(), op, b.contractId, { termEnd: '2027-12-31', note: '更新' });
    await expectCode(extendTerm(db(), clock(), op, b.contractId, { termEnd: '2027-06-30', note: 'shorter' }), 'validation_failed');
    clock().set('2026-12-31T15:00:00Z'); // 2027-01-01 00:00 JST
    await enforceContractEnds(db(), clock(), job);
    expect((await findContract(db(), a.contractId))?.end_reason).toBe('term_expired');
    expect((await findContract(db(), b.contractId))?.status).toBe('active');
    clock().set('2026-11-24T01:00:00Z');
  });

  it('the end job is idempotent: a second run ends nothing more and writes no audit entry', async () => {
    const { contractId } = await fresh({ termStart: '2026-01-01', termEnd: '2026-11-01' });
    const first = await enforceContractEnds(db(), clock(), job);
    expect(first.map((c) => c.id)).toContain(contractId);
    const before = (await listAudit(db(), { subjectId: contractId })).length;
    expect(await enforceContractEnds(db(), clock(), job)).toEqual([]);
    expect((await listAudit(db(), { subjectId: contractId })).length).toBe(before);
  });

  it('R10.7 a data-deletion-due event is consumed once', async () => {
    const { contractId } = await fresh();
    await terminateImmediately(db(), clock(), op, contractId, { ground: 'third_party_claim', note: 'x' });
    const due = (await listDataDeletionDue(db(), { pendingOnly: true })).find((d) => d.contractId === contractId);
    expect(due).toBeDefined();
    expect(await consumeDataDeletionDue(db(), clock(), due!.id, 'test')).toBe(true);
    expect(await consumeDataDeletionDue(db(), clock(), due!.id, 'test')).toBe(false);
  });

  it('keeps the audit chain intact across all of the above', async () => {
    const v = await verifyAuditChain(db());
    expect(v.ok).toBe(true);
  });
});
