import { formatJapanDateTime } from '../core/japan-time.js';
import type { JobQueue } from '../core/jobs/job-queue.js';
import { queueEmail } from '../notify/outbox.js';
import { listOperators } from '../accounts/users.js';
import { findCustomer } from '../contracts/customers.js';
import { dueBreachReminders } from './breach-clock.js';
import { slaStatus } from './incidents.js';

export const SLA_ALERTS = 'incidents.sla-alerts';
export const BREACH_REMINDERS = 'incidents.breach-reminders';

/**
 * R8.3: operators are alerted before the 24-hour target is breached — at 12 h and 20 h after the
 * occurrence of an incident still unresolved — by e-mail through the outbox, once per alert
 * (the dedupe key), whichever instance runs the tick.
 */
export function registerIncidentJobs(queue: JobQueue): void {
  queue.register(SLA_ALERTS, async ({ db, clock }) => {
    const open = await db.selectFrom('incidents').select(['id', 'title', 'occurred_at', 'detected_at', 'recovered_at']).where('recovered_at', 'is', null).execute();
    if (open.length === 0) return;
    const operators = (await db.selectFrom('users').select(['id', 'email', 'roles', 'disabled_at']).where('kind', '=', 'operator').execute()).filter(
      (u) => !u.disabled_at && u.roles.some((r) => r === 'admin' || r === 'operator'),
    );
    const now = clock.now();
    for (const i of open) {
      const sla = slaStatus(i, now);
      for (const hours of sla.restoration.alertsDue) {
        for (const op of operators) {
          await queueEmail(db, clock, {
            dedupeKey: `incident:${i.id}:restore-alert:${hours}h:${op.id}`,
            to: op.email,
            subject: `【警告】障害発生から${hours}時間経過（24時間目標まで残り${24 - hours}時間） / Incident unresolved for ${hours} h`,
            text: [
              `障害「${i.title}」は発生から${hours}時間を経過し、まだ復旧していません。利用規約第8条の目標（発生から24時間以内の再開）まで残り${24 - hours}時間です。`,
              `発生: ${formatJapanDateTime(i.occurred_at)}　検知: ${formatJapanDateTime(i.detected_at)}`,
              '',
              `Incident "${i.title}" has been unresolved for ${hours} h since it occurred; ${24 - hours} h remain to the 24-hour target of the terms (Art. 8).`,
              `Occurred ${i.occurred_at.toISOString()}, detected ${i.detected_at.toISOString()}. Incident id ${i.id}.`,
            ].join('\n'),
          }).catch(() => null); // one unusable address must not keep the alert from the other operators
        }
      }
    }
  });
  queue.schedule({ name: SLA_ALERTS, queue: SLA_ALERTS, everyMs: 60_000 });

  /*
   * Decision 0020: before each deadline of the personal-data breach clock (preliminary and final
   * notice to each affected customer), every admin and operator is e-mailed once — the dedupe key
   * names the breach, the customer, the stage and the operator.
   */
  queue.register(BREACH_REMINDERS, async ({ db, clock }) => {
    const due = await dueBreachReminders(db, clock.now());
    if (due.length === 0) return;
    const operators = (await listOperators(db)).filter((u) => !u.disabled && u.roles.some((r) => r === 'admin' || r === 'operator'));
    for (const d of due) {
      const found = await findCustomer(db, d.customerId);
      const customer = found ?? { name: d.customerId, code: d.customerId };
      const stage = d.stage === 'preliminary' ? { ja: '速報', en: 'preliminary' } : { ja: '確報', en: 'final' };
      for (const op of operators) {
        await queueEmail(db, clock, {
          dedupeKey: `breach:${d.breachId}:${d.customerId}:${d.stage}:${op.id}`,
          to: op.email,
          subject: `【要対応】個人データ漏えい等の${stage.ja}期限 ${formatJapanDateTime(d.dueAt)} / Personal-data breach: ${stage.en} notice due`,
          text: [
            `個人データの漏えい等（障害 ${d.incidentId}）について、お客様「${customer.name}」（${customer.code}）への${stage.ja}の期限は ${formatJapanDateTime(d.dueAt)} です${d.overdue ? '（期限を過ぎています）' : ''}。`,
            'お客様が個人情報保護委員会への報告（施行規則第8条）を期限内に行えるよう、速やかに通知し、送付を記録してください。',
            '',
            `The ${stage.en} notice to customer ${customer.code} about the personal-data breach of incident ${d.incidentId} is due ${d.dueAt.toISOString()}${d.overdue ? ' (overdue)' : ''}.`,
            `Breach id ${d.breachId}.`,
          ].join('\n'),
        }).catch(() => null); // one unusable address must not keep the reminder from the other operators
      }
    }
  });
  queue.schedule({ name: BREACH_REMINDERS, queue: BREACH_REMINDERS, everyMs: 60_000 });
}
