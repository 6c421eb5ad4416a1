/**
 * A verification thread (see chain-workers.ts): its own read-only connection to the SQLite file; each job
 * verifies one range of one tenant's chain inside one read transaction and answers with the result and
 * the stored previousHash of the range's first entry, which the caller links to the range before it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { ChainRow } from '../shared/chain/canonical.js';
import { chainBatches } from '../shared/chain/rows.js';
import { verifyChain } from '../shared/chain/verify.js';
import type { RangeJob, RangeReply } from './chain-workers.js';

const { file, batchSize } = workerData as { file: string; batchSize: number };
const db = new Database(file, { readonly: true, fileMustExist: true });
const statements = new Map<string, Database.Statement>();
const query = (sql: string, params: unknown[]) => {
  let statement = statements.get(sql);
  if (!statement) statements.set(sql, (statement = db.prepare(sql).raw(true)));
  return statement.all(...params) as unknown[][];
};

async function run(job: RangeJob): Promise<RangeReply> {
  let first: ChainRow | undefined;
  async function* rows() {
    for await (const batch of chainBatches(query, job.tenant, job.from, job.to, batchSize)) {
      first ??= batch[0];
      yield batch;
    }
  }
  db.exec('BEGIN');
  try {
    const result = await verifyChain(rows(), job.options);
    return { id: job.id, result, firstPreviousHash: first?.sequence === job.from ? first.previousHash : null };
  } finally {
    db.exec('COMMIT');
  }
}

parentPort!.on('message', (job: RangeJob) => {
  run(job).then(
    (reply) => parentPort!.postMessage(reply),
    (error: unknown) => parentPort!.postMessage({ id: job.id, error: String((error as Error)?.message ?? error) }),
  );
});
