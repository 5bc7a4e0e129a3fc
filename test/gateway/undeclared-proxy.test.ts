import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

/** The error lines that name HOKAN_TRUSTED_PROXIES. */
const proxyErrors = (error: { mock: { calls: unknown[][] } }) => error.mock.calls.filter((c) => String(c[1]).includes('HOKAN_TRUSTED_PROXIES'));

describe('R4.1 a proxy the configuration does not name', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('is reported to the operator once: requests from a private address carrying X-Forwarded-For while no proxy is trusted', async () => {
    app = await startTestApp('pglite', '2026-11-24T01:00:00Z');
    const error = vi.spyOn(app.ctx.logger, 'error');
    expect((await app.request({ method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
    expect(proxyErrors(error)).toHaveLength(0);
    for (let i = 0; i < 3; i++) await app.request({ method: 'GET', url: '/api/v1/me', headers: { 'x-forwarded-for': '8.8.8.8' } });
    const lines = proxyErrors(error);
    expect(lines).toHaveLength(1);
    expect(lines[0]![0]).toEqual({ peer: '127.0.0.1' });
  });

  it('is not reported when the proxy is named', async () => {
    app = await startTestApp('pglite', '2026-11-24T01:00:00Z', { HOKAN_TRUSTED_PROXIES: '127.0.0.1' });
    const error = vi.spyOn(app.ctx.logger, 'error');
    await app.request({ method: 'GET', url: '/api/v1/me', headers: { 'x-forwarded-for': '133.11.0.1' } });
    expect(proxyErrors(error)).toHaveLength(0);
  });
});
