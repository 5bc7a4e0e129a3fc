import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, addOperator, startTestApp, type TestApp } from '../helpers/app.js';

/** A small deterministic PRNG, so a failure names a seed that reproduces it. */
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIRD_STRINGS = [
  '', ' ', '\u0000', '💥', '\uD800', '../../etc/passwd', "' or 1=1 --", '<script>alert(1)</script>', '9'.repeat(400),
  '2026-02-30', '-1', '1e309', 'NaN', 'null', '{}', '[]', '00000000-0000-0000-0000-000000000000', '%00', '%E3%81', 'ｱｲｳ', '介護記録',
];

/** Lone surrogates cannot be URI-encoded; send them as the invalid UTF-8 a client could send. */
const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};

describe.each(databaseKinds)('bad input never produces a 500 on %s', (kind) => {
  let app: TestApp;
  let cookie: string;
  let routes: Array<{ method: string; path: string }>;
  let ids: string[];

  beforeAll(async () => {
    app = await startTestApp(kind);
    const { customer, contractId } = await addCustomerWithContract(app, 'fuzz');
    ids = [customer.id, contractId];
    await addOperator(app, 'fuzz-admin', ['admin', 'operator', 'billing']);
    cookie = await app.signIn('fuzz-admin');
    const doc = (await app.request({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })));
  });
  afterAll(async () => app?.close());

  it('random params, queries, bodies and headers get clean answers (bounded: 400 requests)', async () => {
    const rnd = mulberry32(Number(process.env.FUZZ_SEED ?? 20261124));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const value = (depth = 0): unknown => {
      const r = rnd();
      if (r < 0.3) return pick(WEIRD_STRINGS);
      if (r < 0.45) return Math.floor(rnd() * 2 ** 40) * (rnd() < 0.5 ? -1 : 1);
      if (r < 0.5) return rnd() < 0.5;
      if (r < 0.55) return null;
      if (r < 0.65) return pick(ids);
      if (depth > 2) return 'x';
      if (r < 0.8) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
      const keys = ['reason', 'note', 'endDate', 'kind', 'ground', 'cureDeadline', 'monthlyFeeYen', 'termEnd', 'loginId', 'password', 'roles', 'name', 'code', '__proto__', 'constructor'];
      return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 5) }, () => [pick(keys), value(depth + 1)]));
    };
    for (let i = 0; i < 400; i++) {
      const r = pick(routes);
      const url = r.path.replace(/\{[^}]+\}/g, () => enc(String(rnd() < 0.5 ? pick(ids) : pick(WEIRD_STRINGS)))) + (rnd() < 0.3 ? `?status=${enc(String(value()))}&limit=${enc(String(value()))}` : '');
      const rawBody = rnd() < 0.2;
      const res = await app.request({
        method: (rnd() < 0.1 ? pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) : r.method) as 'GET',
        url,
        cookie,
        headers: rawBody ? { 'content-type': pick(['application/json', 'application/json; charset=utf-8', 'application/x-www-form-urlencoded']) } : {},
        ...(r.method === 'GET' ? {} : rawBody ? { payload: pick(['{', '{"a":', '\u0000', '[1,2', '"str"', 'a=b']) } : { payload: value() as object }),
      });
      expect(res.statusCode, `#${i} ${r.method} ${url} → ${res.body.slice(0, 300)}`).toBeLessThan(500);
      if (res.statusCode >= 400) expect(String(res.json().error?.code), `#${i} ${r.method} ${url} → ${res.statusCode} ${res.body.slice(0, 300)}`).toMatch(/^[a-z_]+$/);
    }
  });
});
