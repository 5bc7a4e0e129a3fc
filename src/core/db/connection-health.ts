import type { Logger } from 'pino';

/** Errors that mean "the database cannot be reached" rather than "this statement is wrong". */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);
const CONNECTION_MESSAGES = [/connection terminated/i, /timeout exceeded when trying to connect/i, /connection (?:is )?closed/i, /client has encountered a connection error/i, /terminating connection/i, /database readiness check timed out/i, /Cannot use a pool after calling end/i];

export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code && CONNECTION_CODES.has(code)) return true;
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  return CONNECTION_MESSAGES.some((re) => re.test(err.message));
}

/**
 * Whether this instance can reach its database, as seen by everything that talks to it (the pool's
 * idle clients, the job queue's polls, readiness probes). An outage is logged once when it starts
 * ("database connection lost") and once when it ends ("database connection restored"), however
 * many queries fail in between, so a PostgreSQL restart is two log lines, not a flood.
 */
export class ConnectionHealth {
  #logger: Logger | undefined;
  #lostAt: number | null = null;
  #failures = 0;
  #lastError = '';

  attach(logger: Logger): void {
    this.#logger = logger;
  }

  get up(): boolean {
    return this.#lostAt === null;
  }

  get lastError(): string {
    return this.#lastError;
  }

  failed(err: unknown, where: string): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
    this.#failures++;
    if (this.#lostAt !== null) return;
    this.#lostAt = performance.now();
    this.#failures = 1;
    this.#logger?.error({ where, err: this.#lastError }, 'database connection lost');
  }

  succeeded(): void {
    if (this.#lostAt === null) return;
    const downMs = Math.round(performance.now() - this.#lostAt);
    this.#lostAt = null;
    this.#logger?.info({ downMs, failedAttempts: this.#failures }, 'database connection restored');
    this.#failures = 0;
  }
}
