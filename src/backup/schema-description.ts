import { sql } from 'kysely';
import type { DbOrTx } from '../core/db/database.js';

export interface SchemaDescription {
  format: 'hokan-migration-schema/1';
  description: { ja: string; en: string };
  recordLine: Record<string, string>;
  collections: Array<{
    name: string;
    records: number;
    fields: Array<{ name: string; types: string[]; presentIn: number }>;
  }>;
  files: { count: number; bytes: number };
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v);

/**
 * R10.6: what the receiving system needs to load the data — per collection, the fields that occur
 * with their JSON types and how many records carry them. Derived from the data itself (the Software
 * keeps free-form JSON), by a keyset scan, so it describes every record and never holds them all.
 */
export async function describeSchema(db: DbOrTx, customerId: string): Promise<SchemaDescription> {
  const collections = new Map<string, { records: number; fields: Map<string, { types: Set<string>; presentIn: number }> }>();
  let after: { c: string; i: string } | null = null;
  for (;;) {
    let q = db.selectFrom('data_records').select(['collection', 'id', 'data']).where('customer_id', '=', customerId).orderBy('collection').orderBy('id').limit(1000);
    if (after) q = q.where(sql<boolean>`(collection, id) > (${after.c}, ${after.i})`);
    const rows = await q.execute();
    for (const r of rows) {
      const c = collections.get(r.collection) ?? { records: 0, fields: new Map() };
      collections.set(r.collection, c);
      c.records++;
      const data = (typeof r.data === 'string' ? JSON.parse(r.data) : r.data) as Record<string, unknown>;
      for (const [k, v] of Object.entries(data)) {
        const f = c.fields.get(k) ?? { types: new Set<string>(), presentIn: 0 };
        c.fields.set(k, f);
        f.types.add(typeOf(v));
        f.presentIn++;
      }
    }
    if (rows.length < 1000) break;
    const last = rows[rows.length - 1]!;
    after = { c: last.collection, i: last.id };
  }
  const files = await db
    .selectFrom('data_files')
    .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.sum<string>('size').as('bytes')])
    .where('customer_id', '=', customerId)
    .executeTakeFirstOrThrow();
  return {
    format: 'hokan-migration-schema/1',
    description: {
      ja: 'records/<コレクション>.ndjson の各行は1件のレコードです。data の項目と型は下記のとおりです（実データから集計）。files/ にはファイルが元の内容のまま入っています。manifest.json に各ファイルのSHA-256があります。',
      en: 'Each line of records/<collection>.ndjson is one record; the fields of its data and their JSON types are listed below (derived from the data). files/ holds the files as stored; manifest.json has the SHA-256 of each.',
    },
    recordLine: { id: 'string: the record id, unique within the collection', version: 'integer: optimistic-concurrency version', data: 'object: the record as the Software stored it', createdAt: 'ISO 8601 UTC', updatedAt: 'ISO 8601 UTC' },
    collections: [...collections.entries()].map(([name, c]) => ({
      name,
      records: c.records,
      fields: [...c.fields.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([fname, f]) => ({ name: fname, types: [...f.types].sort(), presentIn: f.presentIn })),
    })),
    files: { count: Number(files.n), bytes: Number(files.bytes ?? 0) },
  };
}
