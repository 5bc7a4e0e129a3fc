/**
 * Child process for the monitoring benchmarks: local HTTP servers that the monitors check, kept out
 * of the measured process so their CPU is not counted. Prints one JSON line {"ports":[…]} when
 * listening; on "stop <port>" / "start <port>" lines on stdin it closes or reopens that server and
 * answers {"stopped":port,"at":epochMs} / {"started":port}.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import readline from 'node:readline';

const count = Number(process.argv[2] ?? 4);
const servers = new Map<number, http.Server>();

function make(): http.Server {
  const s = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  s.keepAliveTimeout = 1000;
  return s;
}

async function listen(port: number): Promise<number> {
  const s = make();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', 4096, () => resolve());
  });
  const actual = (s.address() as AddressInfo).port;
  servers.set(actual, s);
  return actual;
}

const ports: number[] = [];
for (let i = 0; i < count; i++) ports.push(await listen(0));
process.stdout.write(`${JSON.stringify({ ports })}\n`);

for await (const line of readline.createInterface({ input: process.stdin })) {
  const [cmd, p] = line.trim().split(/\s+/);
  const port = Number(p);
  if (cmd === 'stop') {
    const s = servers.get(port);
    servers.delete(port);
    const at = Date.now();
    if (s) {
      s.closeAllConnections();
      s.close();
    }
    process.stdout.write(`${JSON.stringify({ stopped: port, at })}\n`);
  } else if (cmd === 'start') {
    await listen(port);
    process.stdout.write(`${JSON.stringify({ started: port })}\n`);
  }
}
