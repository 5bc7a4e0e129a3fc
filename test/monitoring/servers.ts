import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

/** A real HTTP server on 127.0.0.1 that a test stops and starts again on the same port. */
export class TestHttpServer {
  readonly hits = new Map<string, number>();
  #server: http.Server | undefined;
  #port = 0;
  constructor(public handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) => res.end('hokan ok')) {}
  get port(): number {
    return this.#port;
  }
  url(p = '/'): string {
    return `http://127.0.0.1:${this.#port}${p}`;
  }
  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.hits.set(req.url ?? '/', (this.hits.get(req.url ?? '/') ?? 0) + 1);
      this.handler(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A plain TCP listener, stopped and started on the same port. */
export class TestTcpServer {
  #server: net.Server | undefined;
  #port = 0;
  readonly #sockets = new Set<net.Socket>();
  get port(): number {
    return this.#port;
  }
  async start(): Promise<void> {
    const server = net.createServer((s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => {});
      s.end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const sock of this.#sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A minimal authoritative DNS server over UDP: answers A queries from a table, NXDOMAIN otherwise. */
export class TestDnsServer {
  readonly records = new Map<string, string[]>();
  #socket: dgram.Socket | undefined;
  queries = 0;
  get port(): number {
    return (this.#socket?.address() as AddressInfo).port;
  }
  async start(): Promise<void> {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      this.queries++;
      const id = msg.readUInt16BE(0);
      let o = 12;
      const labels: string[] = [];
      while (msg[o]! !== 0) {
        const len = msg[o]!;
        labels.push(msg.subarray(o + 1, o + 1 + len).toString('ascii'));
        o += len + 1;
      }
      o += 1;
      const qtype = msg.readUInt16BE(o);
      const question = msg.subarray(12, o + 4);
      const name = labels.join('.').toLowerCase();
      const addrs = qtype === 1 ? (this.records.get(name) ?? null) : null;
      const header = Buffer.alloc(12);
      header.writeUInt16BE(id, 0);
      header.writeUInt16BE(addrs ? 0x8580 : 0x8583, 2);
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(addrs?.length ?? 0, 6);
      const answers = (addrs ?? []).map((a) => {
        const rr = Buffer.alloc(16);
        rr.writeUInt16BE(0xc00c, 0);
        rr.writeUInt16BE(1, 2);
        rr.writeUInt16BE(1, 4);
        rr.writeUInt32BE(60, 6);
        rr.writeUInt16BE(4, 10);
        a.split('.').forEach((x, i) => rr.writeUInt8(Number(x), 12 + i));
        return rr;
      });
      socket.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    this.#socket = socket;
  }
  async stop(): Promise<void> {
    const s = this.#socket;
    this.#socket = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A self-signed certificate made by the openssl CLI at test time. */
export function selfSignedCertificate(days: number): { key: string; cert: string; validTo: Date } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hokan-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-days', String(days), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const cert = fs.readFileSync(path.join(dir, 'c.pem'), 'utf8');
    const key = fs.readFileSync(path.join(dir, 'k.pem'), 'utf8');
    return { key, cert, validTo: new Date(new X509Certificate(cert).validTo) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function startTlsServer(key: string, cert: string): Promise<{ port: number; stop(): Promise<void> }> {
  const server = tls.createServer({ key, cert }, (s) => {
    s.on('error', () => {});
    s.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
