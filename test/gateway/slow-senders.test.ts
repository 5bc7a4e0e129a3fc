import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

const SLOW = '133.11.0.7';
const OTHER = '133.11.0.8';

describe('R13.1 a source that sends its bodies slowly', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp('pglite', '2026-11-24T01:00:00Z', { HOKAN_MAX_CONCURRENT: '8', HOKAN_MAX_CONCURRENT_PER_SOURCE: '3' });
  });
  afterAll(async () => app?.close());

  it('holds at most its share of the slots, however many requests it opens; other sources are still served, and its share comes back as its requests end', async () => {
    const gateway = app.ctx.gateway!;
    // Requests whose bodies never finish arriving: each holds its admission slot meanwhile.
    const bodies = Array.from({ length: 3 }, () => new PassThrough());
    const held = bodies.map((body) => {
      body.write('{"loginId":');
      return app.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: body, remoteAddress: SLOW });
    });
    const inFlight = () => Object.values(gateway.admission.stats().classes).reduce((n, c) => n + c.inFlight, 0);
    for (let i = 0; i < 1000 && inFlight() < 3; i++) await new Promise((r) => setImmediate(r));
    expect(inFlight()).toBe(3);

    const more = await app.request({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: { loginId: 'x', password: 'y' }, remoteAddress: SLOW });
    expect(more.statusCode).toBe(503);
    expect(more.headers['retry-after']).toBe('1');
    expect(more.json().error.code).toBe('service_unavailable');
    // Another address still has the rest of the slots.
    expect((await app.request({ method: 'GET', url: '/api/v1/me', remoteAddress: OTHER })).statusCode).toBe(401);

    for (const body of bodies) body.end('"x","password":"y"}');
    expect((await Promise.all(held)).map((r) => r.statusCode)).toEqual([401, 401, 401]);
    expect(inFlight()).toBe(0);
    expect(gateway.sourceConcurrency.sources).toBe(0);
    expect((await app.request({ method: 'GET', url: '/api/v1/me', remoteAddress: SLOW })).statusCode).toBe(401);
    await gateway.events.flush();
    const refused = await app.ctx.db.selectFrom('gateway_events').select(['kind', 'class', 'source_ip']).where('class', '=', 'per_source').execute();
    expect(refused).toEqual([{ kind: 'admission_rejected', class: 'per_source', source_ip: SLOW }]);
  });
});
