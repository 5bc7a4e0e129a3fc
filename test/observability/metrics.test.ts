import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../helpers/databases.js';
import { addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

describe.each(databaseKinds)('R12.4 Prometheus metrics on %s', (kind) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(kind);
    await addCustomerWithContract(app, 'hagi');
  });
  afterAll(async () => app?.close());

  it('serves request, job, contract and gateway metrics to the provider\'s own network only (R9.2)', async () => {
    await app.request({ method: 'GET', url: '/healthz' });
    await app.request({ method: 'GET', url: '/api/v1/contracts/00000000-0000-4000-8000-000000000000' });
    await app.request({ method: 'GET', url: '/api/v1/openapi.json', remoteAddress: '8.8.8.8' });
    await app.ctx.queue.poll();
    await app.ctx.gateway!.events.flush();
    const res = await app.request({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(/hokan_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1/);
    // Route patterns, never ids, as label values.
    expect(res.body).toContain('route="/api/v1/contracts/:contractId"');
    expect(res.body).not.toContain('00000000-0000-4000-8000-000000000000');
    expect(res.body).toMatch(/hokan_contracts\{status="active"\} 1/);
    expect(res.body).toMatch(/hokan_jobs\{queue="contracts\.enforce-ends",state="completed"\} 1/);
    expect(res.body).toMatch(/hokan_gateway_events_24h\{kind="abroad_refused",class="abroad"\} 1/);
    expect(res.body).toContain('hokan_process_');
    const outside = await app.request({ method: 'GET', url: '/metrics', remoteAddress: '133.11.0.1' });
    expect(outside.statusCode).toBe(404);
  });
});
