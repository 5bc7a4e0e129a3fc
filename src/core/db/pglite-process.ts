import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PGLITE_HOST = fileURLToPath(new URL('./pglite-host.mjs', import.meta.url));
const START_TIMEOUT_MS = 120_000;

/** What the embedded database's driver needs from PGlite, wherever it runs. */
export interface EmbeddedSession {
  /**
   * Runs one statement. `copyInput` is the input of a `COPY … FROM '/dev/blob'`. `generation`, when
   * given, is the session the caller's transaction began in: if the database process has ended
   * since, the statement fails instead of running in a new session outside that transaction.
   */
  query<R>(sql: string, params: readonly unknown[], opts?: { copyInput?: Buffer; generation?: number }): Promise<EmbeddedResult<R>>;
  /** Changes when the database process is started again after it ended. */
  readonly generation: number;
  close(): Promise<void>;
  readonly closed: boolean;
}

export interface EmbeddedResult<R> {
  rows: R[];
  affectedRows?: number;
}

interface ErrorData {
  message: string;
  code?: string;
  [field: string]: string | undefined;
}

type HostMessage =
  | { t: 'ready' }
  | { t: 'failed'; error: ErrorData }
  | { t: 'result'; id: number; rows: unknown[]; affectedRows?: number }
  | { t: 'error'; id: number; error: ErrorData };

interface Pending {
  resolve(r: EmbeddedResult<unknown>): void;
  reject(err: Error): void;
}

/** An error from the database, with PostgreSQL's fields (code, detail, constraint, …) as pg gives them. */
export class EmbeddedDatabaseError extends Error {
  readonly code: string | undefined;
  constructor(data: ErrorData) {
    super(data.message);
    this.name = 'DatabaseError';
    Object.assign(this, data);
    this.code = data.code;
  }
}

/** The database process ended: SQLSTATE 08006 (connection failure), so health checks count it as an outage. */
function processEnded(detail: string): EmbeddedDatabaseError {
  return new EmbeddedDatabaseError({ message: `the embedded database process ended (${detail}); connection terminated`, code: '08006' });
}

export interface EmbeddedProcessOptions {
  /** A data directory (already created, and locked by the caller), or 'memory'. */
  dataDir: string;
  sharedBuffers: string;
  /** With 'memory': a data directory saved by dumpDataDir, loaded instead of running initdb. */
  template?: string;
  /** Told when the process ends without being asked to, and each time one is started (its pid, at once). */
  onExit?(err: Error): void;
  onStart?(pid: number): void;
}

const running = new Set<EmbeddedProcess>();
// A process that exits without closing its database (process.exit after an error) takes the
// database process with it at once, before the data directory's lock is let go (the lock's own
// exit handler was registered later, and this one runs first). PostgreSQL recovers from its WAL on
// the next start, as after any crash.
process.prependListener('exit', () => {
  for (const p of running) p.kill();
});

/**
 * PGlite in a child process of its own (decision 0029): its statements run beside this process's
 * event loop instead of stopping it. The session is one PostgreSQL backend, as PGlite in-process
 * was; statements are answered in the order they are sent. A process that ends unasked (crashed,
 * killed) is started again at the next statement outside a transaction, after PostgreSQL's own
 * crash recovery; statements of a transaction begun in the ended process fail.
 */
export class EmbeddedProcess implements EmbeddedSession {
  #child: ChildProcess | null = null;
  /** The process being started, before it is ready (killed with this process, too). */
  #spawned: ChildProcess | null = null;
  #starting: Promise<ChildProcess> | null = null;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #generation = 0;
  #closed = false;

  private constructor(private readonly opts: EmbeddedProcessOptions) {}

  static async start(opts: EmbeddedProcessOptions): Promise<EmbeddedProcess> {
    const p = new EmbeddedProcess(opts);
    running.add(p);
    try {
      await p.#ensureStarted();
    } catch (err) {
      running.delete(p);
      throw err;
    }
    return p;
  }

  /** Ends the database process at once; for this process's own abrupt exit only. */
  kill(): void {
    this.#child?.kill('SIGKILL');
    this.#spawned?.kill('SIGKILL');
  }

  get generation(): number {
    return this.#generation;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The database process's pid, while it runs (for memory measurements). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async query<R>(sql: string, params: readonly unknown[], opts: { copyInput?: Buffer; generation?: number } = {}): Promise<EmbeddedResult<R>> {
    if (this.#closed) throw processEnded('closed');
    if (opts.generation !== undefined && (opts.generation !== this.#generation || !this.#child)) {
      throw processEnded('during this transaction, which did not commit');
    }
    const r = await this.#request({ t: 'query', sql, params, ...(opts.copyInput ? { copyInput: opts.copyInput } : {}) });
    return r as EmbeddedResult<R>;
  }

  async #request(message: Record<string, unknown>): Promise<EmbeddedResult<unknown>> {
    const child = await this.#ensureStarted();
    const id = this.#nextId++;
    return new Promise<EmbeddedResult<unknown>>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const failed = (err: Error) => {
        if (this.#pending.delete(id)) reject(err);
      };
      try {
        // A Buffer crosses the channel as a Buffer (advanced serialization), which PGlite takes as bytea.
        child.send({ ...message, id }, (err) => {
          if (err) failed(processEnded(err.message));
        });
      } catch (err) {
        // A value that cannot be cloned (a function, a symbol) is refused here, before anything is sent.
        failed(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Saves the database as a template for later in-memory databases (a gzipped tar of its directory). */
  async dumpDataDir(file: string): Promise<void> {
    if (this.#closed) throw processEnded('closed');
    await this.#request({ t: 'dump', file });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const child = this.#starting ? await this.#starting.catch(() => null) : this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const ended = new Promise<void>((resolve) => child.once('close', () => resolve()));
      // The host answers what it was sent first, then closes PostgreSQL (a checkpoint) and exits.
      if (child.connected) child.send({ t: 'close' });
      else child.kill('SIGTERM');
      await ended;
    }
    // Only now: until it has ended, an abrupt exit of this process must still take it along.
    running.delete(this);
  }

  #ensureStarted(): Promise<ChildProcess> {
    if (this.#child) return Promise.resolve(this.#child);
    this.#starting ??= this.#spawn().finally(() => {
      this.#starting = null;
    });
    return this.#starting;
  }

  #spawn(): Promise<ChildProcess> {
    return new Promise<ChildProcess>((resolve, reject) => {
      // No execArgv: the host is plain JavaScript and needs none of this process's loaders or flags.
      const args = [this.opts.dataDir, this.opts.sharedBuffers, ...(this.opts.template ? [this.opts.template] : [])];
      const child = fork(PGLITE_HOST, args, {
        execArgv: [],
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      this.#spawned = child;
      // Named in the lock at once, not when ready: opening (and crash recovery) writes the directory too.
      if (child.pid !== undefined) {
        try {
          this.opts.onStart?.(child.pid);
        } catch (err) {
          process.stderr.write(`hokan: could not name the embedded database process in the lock: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (s: string) => {
        // Kept for the start-up error; during a run PostgreSQL's messages go to this process's stderr.
        if (this.#child === child) process.stderr.write(s);
        else stderr = (stderr + s).slice(-4000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
      let started = false;
      let failure: string | null = null;
      child.on('message', (m: HostMessage) => {
        if (m.t === 'ready') {
          started = true;
          this.#spawned = null;
          clearTimeout(timer);
          this.#child = child;
          this.#generation++;
          resolve(child);
        } else if (m.t === 'failed') {
          // Reported once the process has ended, so nothing of it still holds the directory.
          failure = m.error.message;
        } else {
          const p = this.#pending.get(m.id);
          if (!p) return;
          this.#pending.delete(m.id);
          if (m.t === 'result') p.resolve({ rows: m.rows, ...(m.affectedRows !== undefined ? { affectedRows: m.affectedRows } : {}) });
          else p.reject(new EmbeddedDatabaseError(m.error));
        }
      });
      child.on('error', (err) => {
        if (!started) reject(err);
      });
      // 'close', not 'exit': it comes after the IPC channel has delivered the last answers, so a
      // statement answered just before the end is not reported as failed.
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        if (this.#spawned === child) this.#spawned = null;
        if (!started) {
          const detail = failure ?? stderr.trim();
          reject(new Error(`opening the embedded database failed (${how})${detail ? `: ${detail}` : ''}`));
          return;
        }
        if (this.#child === child) this.#child = null;
        const err = processEnded(how);
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        if (!this.#closed) this.opts.onExit?.(err);
      });
    });
  }
}
