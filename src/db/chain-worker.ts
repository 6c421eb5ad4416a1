/**
 * A verification thread (see chain-workers.ts): its own read-only connection, to the SQLite file or to
 * PostgreSQL; each job verifies one range of one tenant's chain inside one read transaction (one snapshot)
 * and answers with the result and the stored previousHash of the range's first entry, which the caller
 * links to the range before it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { ChainRow } from '../shared/chain/canonical.js';
import { chainBatches, type RowQuery } from '../shared/chain/rows.js';
import { verifyChain } from '../shared/chain/verify.js';
import type { RangeJob, RangeReply, WorkerSource } from './chain-workers.js';
import { numberedPlaceholders } from './sql.js';

interface Reader {
  query: RowQuery;
  begin(): Promise<void> | void;
  end(): Promise<void> | void;
}

function sqliteReader(file: string): Reader {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const statements = new Map<string, Database.Statement>();
  return {
    query(sql, params) {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = db.prepare(sql).raw(true)));
      return statement.all(...params) as unknown[][];
    },
    begin: () => void db.exec('BEGIN'),
    end: () => void db.exec('COMMIT'),
  };
}

interface PgClient {
  connect(): Promise<void>;
  query(config: { text: string; values?: unknown[]; rowMode?: 'array' }): Promise<{ rows: unknown[][] }>;
}

/** node-postgres as the app has it (an optional peer dependency, as for TypeORM's own driver). */
function postgresReader(options: Record<string, unknown>): Reader {
  const pg = require('pg') as { Client: new (options: Record<string, unknown>) => PgClient };
  const client = new pg.Client({ ...options, application_name: 'auditql-verify' });
  const connected = client.connect();
  // Reported by the first job (begin), not as an unhandled rejection that would end the thread first.
  connected.catch(() => undefined);
  return {
    async query(sql, params) {
      return (await client.query({ text: numberedPlaceholders(sql), values: params, rowMode: 'array' })).rows;
    },
    async begin() {
      await connected;
      await client.query({ text: 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' });
    },
    async end() {
      await client.query({ text: 'COMMIT' });
    },
  };
}

const { source, batchSize } = workerData as { source: WorkerSource; batchSize: number };
const reader = 'file' in source ? sqliteReader(source.file) : postgresReader(source.postgres);

async function run(job: RangeJob): Promise<RangeReply> {
  let first: ChainRow | undefined;
  async function* rows() {
    for await (const batch of chainBatches(reader.query, job.tenant, job.from, job.to, batchSize)) {
      first ??= batch[0];
      yield batch;
    }
  }
  await reader.begin();
  try {
    const result = await verifyChain(rows(), job.options);
    return { id: job.id, result, firstPreviousHash: first?.sequence === job.from ? first.previousHash : null };
  } finally {
    await reader.end();
  }
}

parentPort!.on('message', (job: RangeJob) => {
  run(job).then(
    (reply) => parentPort!.postMessage(reply),
    (error: unknown) => parentPort!.postMessage({ id: job.id, error: String((error as Error)?.message ?? error) }),
  );
});
