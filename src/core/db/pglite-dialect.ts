import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { runPgliteCopy } from './copy.js';
import { Mutex } from './mutex.js';
import type { EmbeddedSession } from './pglite-process.js';

/**
 * PGlite (in its own process, decision 0029) is one database session. Kysely acquires a
 * connection for each query and holds it for the whole of a transaction, so a lock around
 * acquire/release keeps every other query out of an open transaction (otherwise an unrelated
 * insert could join it and vanish on its rollback).
 */
export class PGliteDialect implements Dialect {
  constructor(private readonly session: EmbeddedSession) {}

  createDriver(): Driver {
    return new PGliteDriver(this.session);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

const ACQUIRE_TIMEOUT_MS = 60_000;

class PGliteDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #connection: PGliteConnection;

  constructor(private readonly session: EmbeddedSession) {
    this.#connection = new PGliteConnection(session);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock(ACQUIRE_TIMEOUT_MS, 'PGlite session (is `db` used inside a transaction instead of `trx`?)');
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const isolation = settings.isolationLevel ? ` isolation level ${settings.isolationLevel}` : '';
    await connection.executeQuery(CompiledQuery.raw(`begin${isolation}`));
    this.#connection.inTransactionOf = this.session.generation;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('commit'));
    } finally {
      this.#connection.inTransactionOf = undefined;
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    } catch (err) {
      // A transaction whose database process has ended is gone already: nothing to roll back, and
      // the caller's own error (not this one) is the one to report.
      if ((err as { code?: unknown }).code !== '08006') throw err;
    } finally {
      this.#connection.inTransactionOf = undefined;
    }
  }

  async releaseConnection(): Promise<void> {
    this.#mutex.unlock();
  }

  async destroy(): Promise<void> {
    if (!this.session.closed) await this.session.close();
  }
}

class PGliteConnection implements DatabaseConnection {
  /** The session generation the open transaction began in; undefined outside a transaction. */
  inTransactionOf: number | undefined;

  constructor(private readonly session: EmbeddedSession) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const generation = this.inTransactionOf;
    const copied = await runPgliteCopy(compiled.sql, compiled.parameters, async (statement, copyInput) => {
      const r = await this.session.query(statement, [], { copyInput, ...(generation !== undefined ? { generation } : {}) });
      return r.affectedRows ?? 0;
    });
    if (copied !== null) return { rows: [{ copied } as R] };
    const result = await this.session.query<R>(compiled.sql, [...compiled.parameters], generation !== undefined ? { generation } : {});
    return {
      rows: result.rows,
      ...(result.affectedRows !== undefined ? { numAffectedRows: BigInt(result.affectedRows) } : {}),
    };
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGliteDialect does not stream; page through results instead');
  }
}
