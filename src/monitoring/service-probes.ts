import { Resolver } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';

/**
 * R12.3②: the network probes of service monitoring. Each takes a deadline and answers with the
 * outcome, never throws: a failure is a result (ok false, the reason in `error`). Every probe
 * opens its own connection (no keep-alive pool), so a dead service is seen as dead at once and
 * not hidden, or faked, by a socket left over from the previous check.
 */
export interface ProbeResult {
  ok: boolean;
  latencyMs: number | null;
  error: string | null;
}

export interface HttpTarget {
  url: string;
  method: 'GET' | 'HEAD';
  expectedStatus: number[];
  keyword: string | null;
  /** Slower than this counts as a failure. */
  maxLatencyMs: number | null;
  ignoreTlsErrors: boolean;
}

export interface TcpTarget {
  host: string;
  port: number;
}

export interface DnsTarget {
  hostname: string;
  recordType: 'A' | 'AAAA';
  /** The resolver to ask, "host" or "host:port"; null for the system's resolvers. */
  server: string | null;
  expectedAddress: string | null;
}

export interface TlsTarget {
  host: string;
  port: number;
  servername: string | null;
  /** Fewer days than this before the certificate expires is a failure. */
  minDaysLeft: number;
  /** An untrusted chain (self-signed, wrong name) is a failure unless this is false. */
  requireTrusted: boolean;
}

const KEYWORD_BODY_LIMIT = 1024 * 1024;

const elapsed = (t0: number) => Math.max(0, Math.round(performance.now() - t0));
const describe = (err: unknown) => {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
};
const fail = (t0: number | null, error: string): ProbeResult => ({ ok: false, latencyMs: t0 === null ? null : elapsed(t0), error: error.slice(0, 500) });

export function probeHttp(t: HttpTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const url = new URL(t.url);
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, {
      method: t.method,
      agent: false,
      headers: { 'user-agent': 'hokan-monitor/1', connection: 'close', accept: '*/*' },
      ...(url.protocol === 'https:' ? { rejectUnauthorized: !t.ignoreTlsErrors } : {}),
    });
    const timer = setTimeout(() => {
      finish(fail(t0, `timed out after ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => finish(fail(t0, describe(err))));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const judge = (body: string | null) => {
        const latencyMs = elapsed(t0);
        if (!t.expectedStatus.includes(status)) return finish({ ok: false, latencyMs, error: `HTTP ${status}, expected ${t.expectedStatus.join(' or ')}` });
        if (t.keyword !== null && (body === null || !body.includes(t.keyword))) return finish({ ok: false, latencyMs, error: `keyword "${t.keyword}" not found in the response` });
        if (t.maxLatencyMs !== null && latencyMs > t.maxLatencyMs) return finish({ ok: false, latencyMs, error: `slow: ${latencyMs} ms > ${t.maxLatencyMs} ms` });
        finish({ ok: true, latencyMs, error: null });
      };
      if (t.keyword === null || t.method === 'HEAD') {
        res.resume();
        res.on('end', () => judge(null));
        res.on('error', (err) => finish(fail(t0, describe(err))));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size >= KEYWORD_BODY_LIMIT) return;
        chunks.push(c);
        size += c.length;
      });
      res.on('end', () => judge(Buffer.concat(chunks).toString('utf8')));
      res.on('error', (err) => finish(fail(t0, describe(err))));
    });
    req.end();
  });
}

export function probeTcp(t: TcpTarget, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = net.connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(fail(t0, `timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      const latencyMs = elapsed(t0);
      socket.destroy();
      resolve({ ok: true, latencyMs, error: null });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(fail(t0, describe(err)));
    });
  });
}

export async function probeDns(t: DnsTarget, timeoutMs: number): Promise<ProbeResult> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (t.server) resolver.setServers([t.server]);
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const lookup = t.recordType === 'A' ? resolver.resolve4(t.hostname) : resolver.resolve6(t.hostname);
    const addresses = await Promise.race([
      lookup,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    const latencyMs = elapsed(t0);
    if (addresses.length === 0) return { ok: false, latencyMs, error: `no ${t.recordType} record for ${t.hostname}` };
    if (t.expectedAddress !== null && !addresses.includes(t.expectedAddress)) {
      return { ok: false, latencyMs, error: `${t.hostname} resolved to ${addresses.join(', ')}, expected ${t.expectedAddress}` };
    }
    return { ok: true, latencyMs, error: null };
  } catch (err) {
    resolver.cancel();
    return fail(t0, describe(err));
  } finally {
    clearTimeout(timer);
  }
}

const DAY_MS = 86_400_000;

/** The certificate's days left, counted from `now` (the injectable clock, not the wall clock). */
export function probeTls(t: TlsTarget, timeoutMs: number, now: Date): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = tls.connect({ host: t.host, port: t.port, servername: t.servername ?? (net.isIP(t.host) ? undefined : t.host), rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(fail(t0, `timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const latencyMs = elapsed(t0);
      const cert = socket.getPeerCertificate();
      const authorized = socket.authorized;
      const authError = socket.authorizationError ? String(socket.authorizationError) : null;
      socket.destroy();
      if (!cert || !cert.valid_to) return resolve({ ok: false, latencyMs, error: 'no certificate presented' });
      const expires = new Date(cert.valid_to);
      const daysLeft = Math.floor((expires.getTime() - now.getTime()) / DAY_MS);
      if (t.requireTrusted && !authorized) return resolve({ ok: false, latencyMs, error: `certificate not trusted: ${authError ?? 'unknown reason'}` });
      if (expires.getTime() <= now.getTime()) return resolve({ ok: false, latencyMs, error: `certificate expired on ${expires.toISOString()}` });
      if (daysLeft < t.minDaysLeft) return resolve({ ok: false, latencyMs, error: `certificate expires in ${daysLeft} days (${expires.toISOString()}), fewer than ${t.minDaysLeft}` });
      resolve({ ok: true, latencyMs, error: null });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(fail(t0, describe(err)));
    });
  });
}
