import { appendAudit, type Actor } from '../core/audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Db, DbOrTx } from '../core/db/database.js';
import { errors } from '../core/errors.js';
import { bi, type Bilingual } from '../core/i18n.js';
import { findStop } from '../incidents/stops.js';
import { getIncident } from '../incidents/incidents.js';

/** The public parts of the service on the status page (R8.1), and which incidents and stops touch them. */

export const COMPONENT_KEY_RE = /^[a-z0-9][a-z0-9-]{0,39}$/;

export interface StatusComponentDef {
  key: string;
  name: Bilingual;
  position: number;
  createdAt: string;
}

type Row = { key: string; name_ja: string; name_en: string; position: number; created_at: Date };
const view = (r: Row): StatusComponentDef => ({ key: r.key, name: bi(r.name_ja, r.name_en), position: r.position, createdAt: r.created_at.toISOString() });

export async function listComponents(db: DbOrTx): Promise<StatusComponentDef[]> {
  return (await db.selectFrom('status_components').selectAll().orderBy('position').orderBy('key').execute()).map(view);
}

export interface ComponentInput {
  name: Bilingual;
  position?: number;
}

export async function createComponent(db: Db, clock: Clock, actor: Actor, key: string, input: ComponentInput): Promise<StatusComponentDef> {
  if (!COMPONENT_KEY_RE.test(key)) throw errors.invalidField('key', '英小文字・数字・「-」の40文字以内で指定してください。', 'must be 1–40 lower-case letters, digits or "-", starting with a letter or digit');
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('status_components')
      .values({ key, name_ja: input.name.ja, name_en: input.name.en, position: input.position ?? 0, created_at: clock.now() })
      .onConflict((oc) => oc.column('key').doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) throw errors.duplicate('コンポーネント / component', key);
    await appendAudit(trx, clock, { actor, action: 'status_component.created', subjectType: 'status_component', subjectId: key, details: { name: input.name, position: row.position } });
    return view(row);
  });
}

export async function updateComponent(db: Db, clock: Clock, actor: Actor, key: string, input: ComponentInput): Promise<StatusComponentDef> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('status_components')
      .set({ name_ja: input.name.ja, name_en: input.name.en, ...(input.position !== undefined ? { position: input.position } : {}) })
      .where('key', '=', key)
      .returningAll()
      .executeTakeFirst();
    if (!row) throw errors.notFound('コンポーネント / component', key);
    await appendAudit(trx, clock, { actor, action: 'status_component.updated', subjectType: 'status_component', subjectId: key, details: { name: input.name, position: row.position } });
    return view(row);
  });
}

export async function deleteComponent(db: Db, clock: Clock, actor: Actor, key: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx.deleteFrom('status_components').where('key', '=', key).returning('key').executeTakeFirst();
    if (!row) throw errors.notFound('コンポーネント / component', key);
    await appendAudit(trx, clock, { actor, action: 'status_component.deleted', subjectType: 'status_component', subjectId: key });
  });
}

/** Refuses unknown keys with one error naming all of them (nothing is written). */
async function checkKeys(db: DbOrTx, keys: readonly string[]): Promise<string[]> {
  const wanted = [...new Set(keys)].sort();
  if (wanted.length === 0) return [];
  const found = new Set((await db.selectFrom('status_components').select('key').where('key', 'in', wanted).execute()).map((r) => r.key));
  const unknown = wanted.filter((k) => !found.has(k));
  if (unknown.length) throw errors.invalidField('components', `不明なコンポーネント: ${unknown.join(', ')}`, `unknown components: ${unknown.join(', ')}`);
  return wanted;
}

/** Sets the components an incident affects (replacing the previous set). */
export async function setIncidentComponents(db: Db, clock: Clock, actor: Actor, incidentId: string, keys: readonly string[]): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    await getIncident(trx, clock, incidentId);
    const wanted = await checkKeys(trx, keys);
    await trx.deleteFrom('incident_components').where('incident_id', '=', incidentId).execute();
    if (wanted.length) await trx.insertInto('incident_components').values(wanted.map((component_key) => ({ incident_id: incidentId, component_key }))).execute();
    await appendAudit(trx, clock, { actor, action: 'incident.components_set', subjectType: 'incident', subjectId: incidentId, details: { components: wanted } });
    return wanted;
  });
}

/** Sets the components a stop affects (replacing the previous set). */
export async function setStopComponents(db: Db, clock: Clock, actor: Actor, stopId: string, keys: readonly string[]): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    if (!(await findStop(trx, stopId))) throw errors.notFound('停止 / stop', stopId);
    const wanted = await checkKeys(trx, keys);
    await trx.deleteFrom('stop_components').where('stop_id', '=', stopId).execute();
    if (wanted.length) await trx.insertInto('stop_components').values(wanted.map((component_key) => ({ stop_id: stopId, component_key }))).execute();
    await appendAudit(trx, clock, { actor, action: 'stop.components_set', subjectType: 'service_stop', subjectId: stopId, details: { components: wanted } });
    return wanted;
  });
}

export async function incidentComponentMap(db: DbOrTx, incidentIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (incidentIds.length === 0) return out;
  for (const r of await db.selectFrom('incident_components').select(['incident_id', 'component_key']).where('incident_id', 'in', [...incidentIds]).orderBy('component_key').execute()) {
    out.set(r.incident_id, [...(out.get(r.incident_id) ?? []), r.component_key]);
  }
  return out;
}

export async function stopComponentMap(db: DbOrTx, stopIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (stopIds.length === 0) return out;
  for (const r of await db.selectFrom('stop_components').select(['stop_id', 'component_key']).where('stop_id', 'in', [...stopIds]).orderBy('component_key').execute()) {
    out.set(r.stop_id, [...(out.get(r.stop_id) ?? []), r.component_key]);
  }
  return out;
}
