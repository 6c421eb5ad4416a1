import type { DataSource } from 'typeorm';
import { ErrorCode, StorageError } from '../../shared/errors.js';
import { queryTimeout, type ReadOptions } from '../read-pool.js';
import { exec, numberedPlaceholders, runAsync, type Statement, type Work } from '../sql.js';
import type { StorageHealth } from '../storage-health.js';
import type { AuditStore, StoreOptions } from '../store-types.js';
import { PrincipalGate } from '../principal-gate.js';
import { isRetryable, QUERY_CANCELED, storageFailure } from './errors.js';

/** The parts of node-postgres the store uses (reached through TypeORM's driver, so apps bring their own `pg`). */
interface PgClient {
  query(config: { text: string; values?: unknown[] }): Promise<{ rows: Array<Record<string, unknown>> }>;
  release(error?: Error | boolean): void;
}
interface PgPool {
  connect(): Promise<PgClient>;
  query(config: { text: string; values?: unknown[] }): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  options: Record<string, unknown>;
}
interface PostgresDriver {
  master: PgPool;
  postgres: { Pool: new (options: Record<string, unknown>) => PgPool };
}

/** A write of one row of its own: only a real commit shows that the database takes writes again. */
function* probe(): Work<void> {
  yield* exec(
    'INSERT INTO "audit_storage_probe" ("id", "checked_at") VALUES (1, ?) ON CONFLICT ("id") DO UPDATE SET "checked_at" = excluded."checked_at"',
    [Date.now()],
  );
}

const MAX_RETRIES = 5;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The server's statements on PostgreSQL.
 *
 * - Reads run on a pool of their own (READ_WORKERS connections, so that writes never wait behind a heavy
 *   read, nor reads behind a burst of writes), each connection with `statement_timeout` set to the read
 *   budget: PostgreSQL itself cancels a read past it, which reaches the client as QUERY_TIMEOUT. A read
 *   with a budget of its own runs in a short read-only transaction with `SET LOCAL statement_timeout`.
 * - Writes are TypeORM transactions on the DataSource's pool that run a `Work` statement by statement;
 *   a serialization failure or deadlock runs the whole transaction again.
 * - A storage failure (connection lost, server shutting down, disk full, I/O error, read-only server)
 *   reaches the client as STORAGE_UNAVAILABLE and makes the server not ready until a write succeeds
 *   again (a client's, or the store's own probe every second), as on SQLite.
 */
export function postgresStore(dataSource: DataSource, health: StorageHealth, settings: StoreOptions): AuditStore {
  const driver = dataSource.driver as unknown as PostgresDriver;
  const budget = settings.readTimeoutMs;
  const readers = new driver.postgres.Pool({
    ...driver.master.options,
    max: settings.readWorkers,
    statement_timeout: budget,
    // A connection that stops answering altogether (network cut) fails a little after the server would have.
    query_timeout: budget + 2000,
    application_name: 'auditql-read',
  });
  readers.on('error', () => undefined); // an idle connection that died; the pool replaces it
  const gate = new PrincipalGate(settings.readsPerPrincipal, settings.readsWaitingPerPrincipal ?? 16);
  let probing: NodeJS.Timeout | undefined;
  let closed = false;

  const readFailure = (error: unknown, ms: number): unknown => {
    if ((error as { code?: unknown })?.code === QUERY_CANCELED || /Query read timeout/.test(String((error as Error)?.message))) return queryTimeout(ms);
    const failure = storageFailure(error);
    if (failure) return new StorageError(`The database cannot be read right now (${failure})`, ErrorCode.StorageUnavailable, { reason: failure });
    return error;
  };

  const runRead = async (statement: Statement, options: ReadOptions): Promise<Array<Record<string, unknown>>> => {
    if (closed || !dataSource.isInitialized) throw new Error('auditql: the DataSource has been closed');
    const config = { text: numberedPlaceholders(statement.sql), values: statement.params.map(bindable) };
    const ms = options.timeoutMs ?? budget;
    try {
      if (ms === budget) return (await readers.query(config)).rows;
      const client = await readers.connect();
      try {
        await client.query({ text: `BEGIN READ ONLY` });
        await client.query({ text: `SET LOCAL statement_timeout = ${Math.max(1, Math.floor(ms))}` });
        const { rows } = await client.query(config);
        await client.query({ text: 'COMMIT' });
        client.release();
        return rows;
      } catch (error) {
        client.release(true);
        throw error;
      }
    } catch (error) {
      throw readFailure(error, ms);
    }
  };

  const read = <Row>(statement: Statement, options: ReadOptions = {}): Promise<Row[]> => {
    settings.onRead?.(statement);
    return gate.run(options.principal, () => runRead(statement, options)) as Promise<Row[]>;
  };

  /**
   * One transaction, run again when that is safe: after a serialization failure or deadlock (PostgreSQL
   * rolled it back), or when BEGIN itself failed on a pooled connection that had died meanwhile (nothing
   * was sent). A connection lost later may have lost the COMMIT's answer only, so that is not retried.
   */
  const attempt = async <T>(work: () => Work<T>): Promise<T> => {
    for (let tries = 1; ; tries++) {
      const runner = dataSource.createQueryRunner('master');
      let began = false;
      try {
        await runner.startTransaction();
        began = true;
        const result = await runAsync(runner.manager, work());
        await runner.commitTransaction();
        return result;
      } catch (error) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        if ((isRetryable(error) || (!began && storageFailure(error))) && tries < MAX_RETRIES) {
          await sleep(Math.random() * 5 * tries);
          continue;
        }
        throw error;
      } finally {
        await runner.release().catch(() => undefined);
      }
    }
  };

  const unhealthy = (code: string) => {
    health.failed(code);
    if (probing || closed) return;
    const again = () => {
      probing = setTimeout(() => {
        if (health.ready || closed) {
          probing = undefined;
          return;
        }
        attempt(probe).then(
          () => {
            probing = undefined;
            health.succeeded();
          },
          () => again(),
        );
      }, 1000);
      probing.unref();
    };
    again();
  };

  return {
    dialect: 'postgres',
    health,
    read,
    async *stream<Row>(statement: Statement, size: number, options: ReadOptions = {}): AsyncGenerator<Row[]> {
      settings.onRead?.(statement);
      // A server-side cursor in a read-only transaction: memory stays flat however many rows there are.
      const client = await readers.connect().catch((error: unknown) => {
        throw readFailure(error, budget);
      });
      let ok = false;
      try {
        await client.query({ text: 'BEGIN READ ONLY' });
        if (options.timeoutMs !== undefined) await client.query({ text: `SET LOCAL statement_timeout = ${Math.max(1, Math.floor(options.timeoutMs))}` });
        await client.query({ text: `DECLARE "auditql_stream" NO SCROLL CURSOR FOR ${numberedPlaceholders(statement.sql)}`, values: statement.params.map(bindable) });
        for (;;) {
          const { rows } = await client.query({ text: `FETCH ${Math.max(1, Math.floor(size))} FROM "auditql_stream"` });
          if (rows.length > 0) yield rows as Row[];
          if (rows.length < size) break;
        }
        await client.query({ text: 'COMMIT' });
        ok = true;
      } catch (error) {
        throw readFailure(error, options.timeoutMs ?? budget);
      } finally {
        // A stream abandoned half-way leaves its transaction open: that connection is not reused.
        client.release(!ok);
      }
    },
    async write(work, options) {
      try {
        const result = await attempt(options?.relaxed ? () => withoutWaitingForDisk(work) : work);
        if (!options?.background) health.succeeded();
        return result;
      } catch (error) {
        const failure = storageFailure(error);
        if (!failure) throw error;
        unhealthy(failure);
        throw new StorageError(`The database cannot store entries right now (${failure}); nothing was stored`, ErrorCode.StorageUnavailable, { reason: failure });
      }
    },
    async close() {
      closed = true;
      clearTimeout(probing);
      await readers.end();
    },
  };
}

/** node-postgres binds what it is given; dates as epoch ms like the other dialects. */
function bindable(value: unknown): unknown {
  if (value instanceof Date) return value.getTime();
  return value === undefined ? null : value;
}

/** The transaction commits without waiting for its WAL record to reach the disk (see WriteOptions.relaxed). */
function* withoutWaitingForDisk<T>(work: () => Work<T>): Work<T> {
  yield* exec('SET LOCAL synchronous_commit TO OFF');
  return yield* work();
}
