import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addCustomerUser, addCustomerWithContract, startTestApp, type TestApp } from '../helpers/app.js';

/**
 * Sends raw bytes and returns the status line of the answer (or '' if the server just closed).
 * The socket is not half-closed after the write: Node's HTTP server drops a request whose client
 * sent FIN before the answer was written, so a request that waits on the database would never be
 * answered. The requests end with `Connection: close`, or are ones the server closes after its 400.
 */
function raw(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('error', (e) => (out ? resolve(out.split('\r\n')[0]!) : reject(e)));
    socket.on('close', () => resolve(out.split('\r\n')[0] ?? ''));
    socket.write(bytes);
  });
}

describe('malformed traffic over a real socket gets a clean 4xx and is recorded (R12.2)', () => {
  let app: TestApp;
  let port: number;
  let token: string;
  beforeAll(async () => {
    app = await startTestApp('pglite');
    const c = await addCustomerWithContract(app, 'nashi');
    await addCustomerUser(app, c.customer.id, 'nashi-admin', 'customer_admin');
    token = (await app.request({ method: 'POST', url: `/api/v1/customers/${c.customer.id}/api-tokens`, cookie: await app.signIn('nashi-admin'), payload: { name: 'sw' } })).json().token;
    await app.server.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => app?.close());

  it.each([
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nThis is not a header\r\n\r\n'],
    ['an unknown method', 'BREW /api/v1/contracts HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a header larger than the parser allows', `GET /api/v1/contracts HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`],
    ['garbage instead of HTTP', '\u0000\u0001\u0002 hello \r\n\r\n'],
    ['a control character in the URL', 'GET /api/v1/\u0007contracts HTTP/1.1\r\nHost: x\r\n\r\n'],
  ])('%s', async (_name, request) => {
    const status = await raw(port, Buffer.from(request, 'latin1'));
    expect(status).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  it('invalid UTF-8 and odd encodings in a JSON body or a path are 4xx, never 5xx', async () => {
    const bad = Buffer.concat([Buffer.from('{"id":"x","data":{"note":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}}')]);
    const head = `POST /api/v1/data/collections/notes/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${bad.length}\r\nConnection: close\r\n\r\n`;
    expect(await raw(port, Buffer.concat([Buffer.from(head), bad]))).toMatch(/^HTTP\/1\.1 4\d\d /);
    const utf16 = Buffer.from('{"id":"x","data":{}}', 'utf16le');
    const head16 = `POST /api/v1/data/collections/notes/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json; charset=utf-16\r\nContent-Length: ${utf16.length}\r\nConnection: close\r\n\r\n`;
    expect(await raw(port, Buffer.concat([Buffer.from(head16), utf16]))).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(await raw(port, `GET /api/v1/data/collections/%FF%FE/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 4\d\d /);
    expect(await raw(port, `GET /api/v1/data/collections/notes/records?where=%E3%81 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 4\d\d /);
    const lying = `POST /api/v1/data/collections/notes/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}`;
    expect(await raw(port, lying)).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  it('the server is still up and recorded the protocol violations', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').select(['class', 'rule_id']).where('class', '=', 'protocol_violation').execute();
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(rows.some((r) => r.rule_id?.startsWith('HTTP-'))).toBe(true);
  });
});

describe('R12.2 a slow body is cut off and recorded as a DoS attempt', () => {
  let app: TestApp;
  let port: number;
  beforeAll(async () => {
    app = await startTestApp('pglite', '2026-11-24T01:00:00Z', { HOKAN_REQUEST_TIMEOUT_MS: '700' });
    await app.server.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.server.address() as net.AddressInfo).port;
  });
  afterAll(async () => app?.close());

  it('a body that never finishes arriving is answered or dropped, and recorded', async () => {
    const started = Date.now();
    const status = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let out = '';
      socket.on('data', (d) => (out += d.toString('latin1')));
      socket.on('close', () => resolve(out.split('\r\n')[0] ?? ''));
      socket.on('error', () => resolve(out.split('\r\n')[0] ?? ''));
      // Headers promise 1,000 bytes; only 10 come, then nothing.
      socket.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"loginId"');
      setTimeout(() => socket.destroy(), 10_000);
    });
    expect(Date.now() - started).toBeLessThan(9_000);
    expect(status === '' || /^HTTP\/1\.1 4\d\d /.test(status)).toBe(true);
    await app.ctx.gateway!.events.flush();
    const rows = await app.ctx.db.selectFrom('gateway_events').select(['class', 'rule_id']).where('class', '=', 'dos').execute();
    expect(rows.map((r) => r.rule_id)).toContain('SLOW-001');
  });
});
