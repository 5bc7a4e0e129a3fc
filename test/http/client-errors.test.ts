import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';

/** Resolves with the next `clientError` Node's HTTP server reports (after hokan's own handler ran). */
function nextClientError(app: TestApp): Promise<NodeJS.ErrnoException> {
  return once(app.server.server, 'clientError', { signal: AbortSignal.timeout(10_000) }).then(([err]) => err as NodeJS.ErrnoException);
}

describe('R12.2 connection-level errors in the IDS statistics', () => {
  let app: TestApp;
  let port: number;
  beforeAll(async () => {
    app = await startTestApp('pglite');
    await app.server.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => app?.close());

  const idsRows = async () => {
    await app.ctx.gateway!.events.flush();
    return app.ctx.db.selectFrom('gateway_events').select(['class', 'rule_id', 'action']).where('kind', '=', 'ids').execute();
  };

  it('R12.2 a client resetting a keep-alive connection after a complete response is not recorded as an attack', async () => {
    const before = (await idsRows()).length;
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    let received = '';
    while (!received.includes('{"status":"ok"}')) received += String((await once(socket, 'data'))[0]);
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    const reported = nextClientError(app);
    socket.resetAndDestroy();
    expect((await reported).code).toBe('ECONNRESET');
    expect((await idsRows()).length).toBe(before);
  });

  it('R12.2 malformed HTTP is still answered 400 and recorded as a protocol violation', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const closed = once(socket, 'close');
    socket.write('BREW /api/v1/contracts HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
    expect(await idsRows()).toContainEqual({ class: 'protocol_violation', rule_id: 'HTTP-HPE_INVALID_METHOD', action: 'block' });
  });

  it('R12.2 a request that did not arrive in time is recorded as a slow request (DoS), not malformed HTTP', async () => {
    const accepted = once(app.server.server, 'connection');
    const socket = net.connect(port, '127.0.0.1');
    const [serverSide] = (await accepted) as [net.Socket];
    await once(socket, 'connect');
    const closed = once(socket, 'close');
    socket.resume();
    // What Node's HTTP server reports when HOKAN_REQUEST_TIMEOUT_MS passes before a request is complete.
    app.server.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), serverSide);
    await closed;
    const rows = await idsRows();
    expect(rows.filter((r) => r.rule_id === 'SLOW-001')).toEqual([{ class: 'dos', rule_id: 'SLOW-001', action: 'block' }]);
    expect(rows.map((r) => r.rule_id)).not.toContain('HTTP-ERR_HTTP_REQUEST_TIMEOUT');
  });
});
