import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The HTTP servers of bench/lib/http-targets.ts in a child process; stop/start them by port. */
export class HttpTargets {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiters: Array<(msg: Record<string, unknown>) => void> = [];
  ports: number[] = [];

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      this.#waiters.shift()?.(msg);
    });
  }

  static async start(count: number): Promise<HttpTargets> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/http-targets.ts'), String(count)], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    const t = new HttpTargets(child);
    const first = await t.#next();
    t.ports = first.ports as number[];
    return t;
  }

  #next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Closes one server; resolves with the wall-clock time (ms) the child closed it. */
  async stop(port: number): Promise<number> {
    const reply = this.#next();
    this.#child.stdin.write(`stop ${port}\n`);
    return (await reply).at as number;
  }

  async restart(port: number): Promise<void> {
    const reply = this.#next();
    this.#child.stdin.write(`start ${port}\n`);
    await reply;
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    this.#child.kill();
    await new Promise((resolve) => this.#child.once('close', resolve));
  }
}
