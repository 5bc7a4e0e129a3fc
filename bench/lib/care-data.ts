import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../src/core/clock.js';
import type { Db } from '../../src/core/db/database.js';
import { fileBlobKey } from '../../src/data/files.js';
import type { BlobStore } from '../../src/storage/index.js';
import { Prng } from './prng.js';

/**
 * Realistic care-facility data for one customer: records shaped like what a care-records
 * application stores (Japanese text, nested vitals/meals/excretion, ~500–1000 bytes of JSON each)
 * and files that are half incompressible (scans, photos) and half compressible text.
 */

const FAMILY = ['山田', '佐藤', '鈴木', '高橋', '田中', '伊藤', '渡辺', '中村', '小林', '加藤', '吉田', '山口', '松本', '井上', '木村'];
const GIVEN = ['花子', '太郎', '美咲', '健一', '幸子', '和夫', '節子', '清', '正子', '茂', 'ハル', 'キヨ', '進', '弘子', '勝'];
const KANA = ['ヤマダ ハナコ', 'サトウ タロウ', 'スズキ ミサキ', 'タカハシ ケンイチ', 'タナカ サチコ', 'イトウ カズオ', 'ワタナベ セツコ'];
const ROLES = ['介護福祉士', '看護師', '介護職員', '生活相談員', '機能訓練指導員', 'ケアマネジャー'];
const UNITS = ['1階 さくら', '1階 ひまわり', '2階 もみじ', '2階 すみれ', '3階 あおば'];
const NOTES = [
  '朝食は主食8割、副食7割摂取。むせ込みなし。',
  '午前中はレクリエーションに参加され、笑顔で過ごされた。',
  '夜間2回トイレ誘導。ふらつきあり、見守りを継続する。',
  '入浴時、背部に軽度の発赤を確認。看護師へ報告済み。',
  'ご家族より電話あり。週末の面会予定を確認した。',
  '服薬確認済み。昼食後の薬を自己にて服用、飲み残しなし。',
  '歩行器使用にて居室からホールまで移動。転倒なし。',
  '体温やや高め。水分摂取を促し、午後に再検温予定。',
  '口腔ケア実施。義歯洗浄し、夜間は預かり保管。',
  '排便なし3日目。主治医の指示により下剤を調整。',
  '夕食時、箸の使用が難しく、スプーンへ変更した。',
  'リハビリにて立ち上がり訓練10回実施。疲労の訴えなし。',
  '不穏なし。就寝前にテレビを見て穏やかに過ごされた。',
  '皮膚の乾燥あり、保湿剤を塗布した。',
];
const TAGS = ['転倒注意', '嚥下注意', '認知症', '糖尿病', '高血圧', '要見守り', '感染対策', '褥瘡予防', '水分管理'];
const REMARK_CHARS = [...'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん食事入浴排泄歩行転倒見守介助声掛確認報告家族面会体調良好様子安定'];
const EXCRETION = ['排尿', '排便', '失禁'];
const AMOUNT = ['少', '中', '多'];

const COLLECTIONS = ['care-records', 'care-records', 'care-records', 'care-records', 'care-records', 'care-records', 'vitals', 'vitals', 'meals', 'incidents'] as const;

export interface GeneratedRecord {
  collection: string;
  id: string;
  data: string;
}

function hhmm(p: Prng): string {
  return `${String(p.int(0, 23)).padStart(2, '0')}:${String(p.int(0, 59)).padStart(2, '0')}`;
}

/** Record number `i` of a customer; the same `i` and seed always give the same record. */
export function careRecord(p: Prng, i: number, day: Date): GeneratedRecord {
  const collection = COLLECTIONS[i % COLLECTIONS.length]!;
  const resident = p.int(1, 120);
  const recordedAt = new Date(day.getTime() - p.int(0, 365 * 86_400) * 1000).toISOString();
  const notes: string[] = [];
  for (let n = p.int(1, 4); n > 0; n--) notes.push(p.pick(NOTES));
  const data = {
    residentId: `R-${String(resident).padStart(4, '0')}`,
    resident: { name: `${p.pick(FAMILY)} ${p.pick(GIVEN)}`, kana: p.pick(KANA), unit: p.pick(UNITS), careLevel: `要介護${p.int(1, 5)}` },
    recordedAt,
    staff: { id: `S-${String(p.int(1, 60)).padStart(3, '0')}`, name: `${p.pick(FAMILY)} ${p.pick(GIVEN)}`, role: p.pick(ROLES) },
    vitals: {
      temperature: p.decimal(35.8, 37.6),
      pulse: p.int(55, 100),
      bloodPressure: { systolic: p.int(100, 165), diastolic: p.int(60, 95) },
      spo2: p.int(92, 99),
    },
    meals: {
      breakfast: { staple: p.int(0, 10), side: p.int(0, 10) },
      lunch: { staple: p.int(0, 10), side: p.int(0, 10) },
      fluidMl: p.int(600, 1600),
    },
    excretion: Array.from({ length: p.int(0, 3) }, () => ({ at: hhmm(p), type: p.pick(EXCRETION), amount: p.pick(AMOUNT) })),
    note: notes.join(''),
    tags: Array.from({ length: p.int(0, 3) }, () => p.pick(TAGS)),
    checkedBy: p.next() < 0.5 ? null : { id: `S-${String(p.int(1, 60)).padStart(3, '0')}`, at: recordedAt },
  };
  return { collection, id: `${collection.slice(0, 2)}-${String(i).padStart(8, '0')}`, data: JSON.stringify(data) };
}

/** Compressible text of exactly `bytes` bytes: care reports and CSV-like lines in Japanese. */
export function textFile(p: Prng, bytes: number): Buffer {
  const lines: string[] = [];
  let size = 0;
  // Free-text remarks: random kana/kanji runs, so the text compresses like real notes (~4–6×),
  // not like a handful of phrases repeated (which gzip would shrink 12×).
  const remark = () => Array.from({ length: p.int(4, 16) }, () => p.pick(REMARK_CHARS)).join('');
  while (size < bytes) {
    const line =
      p.next() < 0.5
        ? `${p.int(10_000_000, 99_999_999)},${p.int(2024, 2026)}-${String(p.int(1, 12)).padStart(2, '0')}-${String(p.int(1, 28)).padStart(2, '0')},${hhmm(p)},${p.pick(FAMILY)} ${p.pick(GIVEN)},${p.decimal(35.8, 37.6)},${p.int(100, 165)}/${p.int(60, 95)},${p.pick(NOTES)}${remark()}\n`
        : `【${p.pick(UNITS)}】${p.pick(NOTES)}${remark()}。${p.pick(NOTES)}（記録者: ${p.pick(FAMILY)}、${hhmm(p)}）\n`;
    lines.push(line);
    size += Buffer.byteLength(line);
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

export interface SeededCustomer {
  customerId: string;
  records: number;
  files: number;
  fileBytes: number;
}

export const FILE_BYTES = 512 * 1024;

/**
 * Inserts `records` records (batches of 1,000) and `files` files of FILE_BYTES each (even: random,
 * odd: text) through the live store, with their data_files rows and correct SHA-256.
 */
export async function seedCustomerData(
  db: Db,
  clock: Clock,
  live: BlobStore,
  customerId: string,
  opts: { records: number; files: number; seed: number; onProgress?: (what: string) => void },
): Promise<SeededCustomer> {
  const p = new Prng(opts.seed);
  const now = clock.now();
  const BATCH = 1000;
  for (let start = 0; start < opts.records; start += BATCH) {
    const rows = [];
    for (let i = start; i < Math.min(start + BATCH, opts.records); i++) {
      const r = careRecord(p, i, now);
      const at = new Date(now.getTime() - p.int(0, 30 * 86_400) * 1000);
      rows.push({ customer_id: customerId, collection: r.collection, id: r.id, version: p.int(1, 5), data: r.data, created_at: at, updated_at: now });
    }
    await db.insertInto('data_records').values(rows).execute();
    if ((start / BATCH) % 20 === 19) opts.onProgress?.(`${start + BATCH} records`);
  }
  let fileBytes = 0;
  let pending: Array<{ customer_id: string; id: string; name: string; content_type: string; size: number; sha256: string; blob_key: string; created_at: Date }> = [];
  const flush = async () => {
    if (pending.length > 0) await db.insertInto('data_files').values(pending).execute();
    pending = [];
  };
  for (let i = 0; i < opts.files; i++) {
    const binary = i % 2 === 0;
    const body = binary ? randomBytes(FILE_BYTES) : textFile(p, FILE_BYTES);
    const id = randomUUID();
    const key = fileBlobKey(customerId, id);
    const stored = await live.put(key, body, { contentType: binary ? 'application/pdf' : 'text/csv' });
    fileBytes += stored.size;
    pending.push({
      customer_id: customerId,
      id,
      name: binary ? `スキャン_介護計画書_${i}.pdf` : `介護記録_${i}.csv`,
      content_type: binary ? 'application/pdf' : 'text/csv',
      size: stored.size,
      sha256: stored.sha256,
      blob_key: key,
      created_at: now,
    });
    if (pending.length >= 100) await flush();
  }
  await flush();
  return { customerId, records: opts.records, files: opts.files, fileBytes };
}
