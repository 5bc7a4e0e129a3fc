/**
 * The load generator of `npm run bench -- load`, run in its own process so it does not share the
 * instances' CPU budget inside one event loop:
 *   node --import tsx bench/lib/load-generator.ts '<json LoadConfig>'
 * Every connection acts for one customer (a random API token) and cycles through a mixed data-API
 * sequence — create a record, read it, update it (If-Match), list the collection, upload a small
 * file, download it — against all target instances (autocannon spreads connections across the
 * URLs). Prints one JSON line with the aggregate.
 */
import autocannon from 'autocannon';

export interface LoadConfig {
  targets: string[];
  tokens: string[];
  connections: number;
  seconds: number;
}

export interface LoadReport {
  requests: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  non2xx: number;
  socket_errors: number;
  timeouts: number;
  status_codes: Record<string, number>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
if (!config.targets?.length || !config.tokens?.length) throw new Error("usage: load-generator.ts '<json {targets, tokens, connections, seconds}>'");

const FILE_BODY = Buffer.alloc(1024, 'hokan load ');
let seq = 0;
const customerOf = (ctx: Record<string, unknown>) => {
  if (typeof ctx.token !== 'string') {
    ctx.token = config.tokens[Math.floor(Math.random() * config.tokens.length)];
    ctx.prefix = `p${process.pid}-${seq++}`;
    ctx.n = 0;
  }
  return { authorization: `Bearer ${String(ctx.token)}` };
};
const json = (body: string): Record<string, { id?: string }> => {
  try {
    return JSON.parse(body) as Record<string, { id?: string }>;
  } catch {
    return {};
  }
};

const result = await autocannon({
  url: config.targets,
  connections: config.connections,
  duration: config.seconds,
  timeout: 30,
  requests: [
    {
      setupRequest: (req, ctx) => {
        ctx.n = Number(ctx.n ?? 0) + 1;
        const headers = customerOf(ctx);
        ctx.record = `${String(ctx.prefix)}-${String(ctx.n)}`;
        return { ...req, method: 'POST', path: '/api/v1/data/collections/visits/records', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ id: ctx.record, data: { resident: `利用者 ${String(ctx.n)}`, note: '訪問記録', vitals: { bp: '120/80', temp: 36.5 } } }) };
      },
    },
    { setupRequest: (req, ctx) => ({ ...req, method: 'GET', path: `/api/v1/data/collections/visits/records/${String(ctx.record)}`, headers: customerOf(ctx) }) },
    {
      setupRequest: (req, ctx) => ({ ...req, method: 'PUT', path: `/api/v1/data/collections/visits/records/${String(ctx.record)}`, headers: { ...customerOf(ctx), 'content-type': 'application/json', 'if-match': '"1"' }, body: JSON.stringify({ data: { resident: 'updated', note: '更新' } }) }),
    },
    { setupRequest: (req, ctx) => ({ ...req, method: 'GET', path: '/api/v1/data/collections/visits/records?limit=20', headers: customerOf(ctx) }) },
    {
      setupRequest: (req, ctx) => ({ ...req, method: 'POST', path: `/api/v1/data/files?name=${String(ctx.record)}.txt`, headers: { ...customerOf(ctx), 'content-type': 'text/plain' }, body: FILE_BODY }),
      onResponse: (_status, body, ctx) => {
        ctx.file = json(body).file?.id;
      },
    },
    { setupRequest: (req, ctx) => ({ ...req, method: 'GET', path: ctx.file ? `/api/v1/data/files/${String(ctx.file)}/content` : '/api/v1/data/files?limit=5', headers: customerOf(ctx) }) },
  ],
});

const report: LoadReport = {
  requests: result.requests.total,
  rps: result.requests.average,
  p50_ms: result.latency.p50,
  p99_ms: result.latency.p99,
  max_ms: result.latency.max,
  non2xx: result.non2xx,
  socket_errors: result.errors,
  timeouts: result.timeouts,
  status_codes: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
};
process.stdout.write(`${JSON.stringify(report)}\n`);
