import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { listOperators } from '../accounts/users.js';
import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import type { RoundChecklistsTable } from '../core/db/schema.js';
import { errors } from '../core/errors.js';
import { formatJapanDateTime } from '../core/japan-time.js';
import { openIncidentIn } from '../incidents/incidents.js';
import { queueEmail, subjectLine } from '../notify/outbox.js';

/**
 * R12.3③: visual inspection of the hardware by the provider's operators. A checklist is a list
 * of items kept in versions (each edit is a new version, the old ones stay for the rounds that
 * used them); a round records each item of the current version as ok or a finding with notes;
 * a finding can open an incident. Rounds are due every interval; an overdue checklist e-mails
 * the operators once per overdue period.
 */

const HOUR = 3_600_000;
/** How far back a round may be recorded (written up after the walk, not weeks later). */
export const MAX_BACKDATE_MS = 7 * 24 * HOUR;

export interface ChecklistItem {
  key: string;
  label: string;
  description: string | null;
}

export interface ChecklistInput {
  name: string;
  intervalHours: number | null;
  items: ChecklistItem[];
}

export interface ChecklistView extends ChecklistInput {
  id: string;
  version: number;
  createdAt: string;
  retiredAt: string | null;
}

export interface ChecklistVersionView {
  version: number;
  items: ChecklistItem[];
  createdBy: string;
  createdAt: string;
  note: string | null;
}

export interface RoundResultInput {
  itemKey: string;
  status: 'ok' | 'finding';
  note: string | null;
  /** Open an incident for this finding. */
  incident: { severity: 'critical' | 'major' | 'minor'; title: string | null } | null;
}

export interface RoundResult {
  itemKey: string;
  label: string;
  status: 'ok' | 'finding';
  note: string | null;
  incidentId: string | null;
}

export interface RoundView {
  id: string;
  checklistId: string;
  checklistVersion: number;
  performedBy: string;
  performedAt: string;
  recordedAt: string;
  findings: number;
  results: RoundResult[];
}

type ChecklistRow = Selectable<RoundChecklistsTable>;

const parse = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

async function currentItems(db: DbOrTx, row: ChecklistRow): Promise<ChecklistItem[]> {
  const v = await db.selectFrom('round_checklist_versions').select('items').where('checklist_id', '=', row.id).where('version', '=', row.current_version).executeTakeFirstOrThrow();
  return parse<ChecklistItem[]>(v.items);
}

async function checklistView(db: DbOrTx, row: ChecklistRow): Promise<ChecklistView> {
  return { id: row.id, name: row.name, intervalHours: row.interval_hours, version: row.current_version, items: await currentItems(db, row), createdAt: row.created_at.toISOString(), retiredAt: row.retired_at?.toISOString() ?? null };
}

function checkItems(items: ChecklistItem[]): void {
  const seen = new Set<string>();
  items.forEach((it, i) => {
    if (seen.has(it.key)) throw errors.invalidField(`items.${i}.key`, `項目キー「${it.key}」が重複しています。`, `duplicate item key "${it.key}"`);
    seen.add(it.key);
  });
}

export async function createChecklist(db: Db, clock: Clock, actor: Actor, input: ChecklistInput): Promise<ChecklistView> {
  checkItems(input.items);
  return db.transaction().execute(async (trx) => {
    const now = clock.now();
    const row = await trx.insertInto('round_checklists').values({ id: randomUUID(), name: input.name, interval_hours: input.intervalHours, current_version: 1, created_at: now, retired_at: null }).returningAll().executeTakeFirstOrThrow();
    await trx.insertInto('round_checklist_versions').values({ checklist_id: row.id, version: 1, items: JSON.stringify(input.items), created_by: actor.label, created_at: now, note: null }).execute();
    await appendAudit(trx, clock, { actor, action: 'round.checklist_created', subjectType: 'round_checklist', subjectId: row.id, details: { name: input.name, intervalHours: input.intervalHours, items: input.items.map((i) => i.key) } });
    return checklistView(trx, row);
  });
}

/** Edits a checklist: the items become a new version; earlier versions stay for the history. */
export async function updateChecklist(db: Db, clock: Clock, actor: Actor, id: string, input: ChecklistInput & { note: string | null }): Promise<ChecklistView> {
  checkItems(input.items);
  return db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom('round_checklists').selectAll().where('id', '=', id).where('retired_at', 'is', null).forUpdate().executeTakeFirst();
    if (!before) throw errors.notFound('点検表 / checklist', id);
    const now = clock.now();
    const version = before.current_version + 1;
    await trx.insertInto('round_checklist_versions').values({ checklist_id: id, version, items: JSON.stringify(input.items), created_by: actor.label, created_at: now, note: input.note }).execute();
    const row = await trx.updateTable('round_checklists').set({ name: input.name, interval_hours: input.intervalHours, current_version: version }).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'round.checklist_updated', subjectType: 'round_checklist', subjectId: id, reason: input.note, details: { version, name: input.name, intervalHours: input.intervalHours, items: input.items.map((i) => i.key) } });
    return checklistView(trx, row);
  });
}

export async function retireChecklist(db: Db, clock: Clock, actor: Actor, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx.updateTable('round_checklists').set({ retired_at: clock.now() }).where('id', '=', id).where('retired_at', 'is', null).returning('name').executeTakeFirst();
    if (!row) throw errors.notFound('点検表 / checklist', id);
    await appendAudit(trx, clock, { actor, action: 'round.checklist_retired', subjectType: 'round_checklist', subjectId: id, details: { name: row.name } });
  });
}

export async function listChecklists(db: DbOrTx): Promise<ChecklistView[]> {
  const rows = await db.selectFrom('round_checklists').selectAll().where('retired_at', 'is', null).orderBy('created_at').execute();
  return Promise.all(rows.map((r) => checklistView(db, r)));
}

export async function getChecklist(db: DbOrTx, id: string): Promise<ChecklistView & { versions: ChecklistVersionView[] }> {
  const row = await db.selectFrom('round_checklists').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw errors.notFound('点検表 / checklist', id);
  const versions = await db.selectFrom('round_checklist_versions').selectAll().where('checklist_id', '=', id).orderBy('version', 'desc').execute();
  return {
    ...(await checklistView(db, row)),
    versions: versions.map((v) => ({ version: v.version, items: parse<ChecklistItem[]>(v.items), createdBy: v.created_by, createdAt: v.created_at.toISOString(), note: v.note })),
  };
}

const roundView = (r: { id: string; checklist_id: string; checklist_version: number; performed_by: string; performed_at: Date; recorded_at: Date; findings: number; results: unknown }): RoundView => ({
  id: r.id,
  checklistId: r.checklist_id,
  checklistVersion: r.checklist_version,
  performedBy: r.performed_by,
  performedAt: r.performed_at.toISOString(),
  recordedAt: r.recorded_at.toISOString(),
  findings: r.findings,
  results: parse<RoundResult[]>(r.results),
});

/**
 * Records a round against the checklist's current version: every item answered exactly once, a
 * finding with a note. Findings asking for it open an incident each (occurred and detected at the
 * round), linked from the round's result.
 */
export async function recordRound(db: Db, clock: Clock, actor: Actor, input: { checklistId: string; performedAt: Date | null; results: RoundResultInput[] }): Promise<RoundView> {
  const now = clock.now();
  const performedAt = input.performedAt ?? now;
  if (performedAt.getTime() > now.getTime()) throw errors.invalidField('performedAt', '未来の時刻です。', 'must not be in the future');
  if (performedAt.getTime() < now.getTime() - MAX_BACKDATE_MS) throw errors.invalidField('performedAt', '7日より前の巡回は記録できません。', 'must be within the last 7 days');
  const round = await db.transaction().execute(async (trx) => {
    const checklist = await trx.selectFrom('round_checklists').selectAll().where('id', '=', input.checklistId).where('retired_at', 'is', null).executeTakeFirst();
    if (!checklist) throw errors.notFound('点検表 / checklist', input.checklistId);
    const items = await currentItems(trx, checklist);
    const byKey = new Map(items.map((i) => [i.key, i]));
    const answered = new Set<string>();
    input.results.forEach((r, i) => {
      if (!byKey.has(r.itemKey)) throw errors.invalidField(`results.${i}.itemKey`, `点検表にない項目「${r.itemKey}」です。`, `"${r.itemKey}" is not an item of checklist version ${checklist.current_version}`);
      if (answered.has(r.itemKey)) throw errors.invalidField(`results.${i}.itemKey`, `項目「${r.itemKey}」が重複しています。`, `"${r.itemKey}" is answered twice`);
      answered.add(r.itemKey);
      if (r.status === 'finding' && !r.note) throw errors.invalidField(`results.${i}.note`, '所見には内容の記載が必要です。', 'a finding needs a note saying what was found');
      if (r.incident && r.status !== 'finding') throw errors.invalidField(`results.${i}.incident`, '障害登録は所見のある項目だけです。', 'only a finding can open an incident');
    });
    const missing = items.filter((i) => !answered.has(i.key)).map((i) => i.key);
    if (missing.length) throw errors.invalidField('results', `未記入の項目があります: ${missing.join(', ')}`, `every item must be answered; missing: ${missing.join(', ')}`);
    const results: RoundResult[] = input.results.map((r) => ({ itemKey: r.itemKey, label: byKey.get(r.itemKey)!.label, status: r.status, note: r.note, incidentId: null }));
    const findings = results.filter((r) => r.status === 'finding').length;
    // The findings' incidents open in the round's own commit: a round is never kept with a finding
    // whose incident failed to open, and a retry after a failure does not record the round twice.
    for (const r of input.results) {
      if (!r.incident) continue;
      const at = results.findIndex((x) => x.itemKey === r.itemKey);
      const result = results[at]!;
      const incident = await openIncidentIn(trx, clock, actor, {
        title: (r.incident.title ?? `目視巡回での所見: ${result.label}（${checklist.name}） / Visual round finding: ${result.label}`).slice(0, 200),
        severity: r.incident.severity,
        occurredAt: performedAt,
        detectedAt: performedAt,
      });
      results[at] = { ...result, incidentId: incident.id };
    }
    const row = await trx
      .insertInto('rounds')
      .values({ id: randomUUID(), checklist_id: checklist.id, checklist_version: checklist.current_version, performed_by: actor.label, performed_by_id: actor.id, performed_at: performedAt, recorded_at: now, results: JSON.stringify(results), findings })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudit(trx, clock, { actor, action: 'round.recorded', subjectType: 'round', subjectId: row.id, details: { checklistId: checklist.id, version: checklist.current_version, performedAt: performedAt.toISOString(), findings } });
    return row;
  });
  return roundView(round);
}

export async function listRounds(db: DbOrTx, opts: { checklistId?: string; limit?: number } = {}): Promise<RoundView[]> {
  let q = db.selectFrom('rounds').selectAll().orderBy('performed_at', 'desc').limit(opts.limit ?? 100);
  if (opts.checklistId) q = q.where('checklist_id', '=', opts.checklistId);
  return (await q.execute()).map(roundView);
}

export interface RoundDueState {
  checklistId: string;
  name: string;
  intervalHours: number;
  lastRoundAt: string | null;
  dueAt: string;
  overdue: boolean;
  /** 0 while not overdue; 1 in the first interval after the due time, 2 in the next, … */
  overduePeriod: number;
}

/** When each active checklist's next round is due (last round, or its creation, plus the interval). */
export async function roundDueStates(db: DbOrTx, clock: Clock, defaultIntervalHours: number): Promise<RoundDueState[]> {
  const now = clock.now();
  const checklists = await db.selectFrom('round_checklists').select(['id', 'name', 'interval_hours', 'created_at']).where('retired_at', 'is', null).orderBy('created_at').execute();
  const out: RoundDueState[] = [];
  for (const c of checklists) {
    const last = await db.selectFrom('rounds').select('performed_at').where('checklist_id', '=', c.id).orderBy('performed_at', 'desc').limit(1).executeTakeFirst();
    const intervalHours = c.interval_hours ?? defaultIntervalHours;
    const base = last?.performed_at ?? c.created_at;
    const due = new Date(base.getTime() + intervalHours * HOUR);
    const late = now.getTime() - due.getTime();
    out.push({ checklistId: c.id, name: c.name, intervalHours, lastRoundAt: last?.performed_at.toISOString() ?? null, dueAt: due.toISOString(), overdue: late > 0, overduePeriod: late > 0 ? Math.floor(late / (intervalHours * HOUR)) + 1 : 0 });
  }
  return out;
}

/** E-mails the operators about every overdue checklist, once per overdue period (the dedupe key). */
export async function alertOverdueRounds(db: Db, clock: Clock, defaultIntervalHours: number): Promise<number> {
  const overdue = (await roundDueStates(db, clock, defaultIntervalHours)).filter((s) => s.overdue);
  if (overdue.length === 0) return 0;
  const operators = (await listOperators(db)).filter((u) => !u.disabled && u.roles.some((r) => r === 'admin' || r === 'operator'));
  let queued = 0;
  for (const s of overdue) {
    const due = new Date(s.dueAt);
    for (const op of operators) {
      const id = await queueEmail(db, clock, {
        dedupeKey: `round-overdue:${s.checklistId}:${s.dueAt}:${s.overduePeriod}:${op.id}`,
        to: op.email,
        subject: subjectLine(`【警告】目視巡回が期限切れです: ${s.name} / Visual round overdue: ${s.name}`),
        text: [
          `点検表「${s.name}」の目視巡回（${s.intervalHours}時間ごと）が期限を過ぎています。`,
          `期限: ${formatJapanDateTime(due)}　前回: ${s.lastRoundAt ? formatJapanDateTime(new Date(s.lastRoundAt)) : '記録なし'}`,
          '巡回を実施し、結果を記録してください（利用規約第12条 ③ 専任者による目視）。',
          '',
          `The visual round of checklist "${s.name}" (every ${s.intervalHours} h) was due at ${s.dueAt} and has not been recorded.`,
          `Last round: ${s.lastRoundAt ?? 'none'}. Please inspect the hardware and record the round (Terms Art. 12 ③).`,
        ].join('\n'),
      }).catch(() => null);
      if (id) queued++;
    }
  }
  return queued;
}
