/**
 * Checkpoints of SQLite's write-ahead log kept off the event loop while a long series of writes runs
 * (retention's purge). SQLite checkpoints automatically inside the COMMIT that makes the log pass
 * `wal_autocheckpoint` pages: that commit then copies the log into the database file and flushes both to
 * disk, which took 100–250 ms of a purge batch of a few milliseconds, on the connection's thread, which is
 * the event loop's. Here the connection's automatic checkpoints are turned off for the duration, and a
 * thread with a connection of its own runs `wal_checkpoint(PASSIVE)` whenever asked: a passive checkpoint
 * takes no write lock, so the writer goes on committing beside it.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DataSource } from 'typeorm';
import { packageRoot } from '../shared/package-root.js';
import { rawHandle } from './store.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
// Never waits on a lock: a checkpoint that finds one in the way does what it can and is asked again later.
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0');
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ log: result.log, checkpointed: result.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.code || error) });
  }
});
`;

interface Handle {
  readonly open: boolean;
  pragma(source: string, options?: { simple: boolean }): unknown;
}

export interface WalCheckpoints {
  /** Starts a checkpoint on the thread unless one is under way (requests made meanwhile are folded into it). */
  request(): void;
  /** Waits for the checkpoint under way, runs one more, then puts the connection's automatic checkpoints back and stops the thread. */
  close(): Promise<void>;
}

const NONE: WalCheckpoints = { request() {}, close: async () => {} };

/**
 * Takes the checkpoints of `dataSource`'s SQLite connection off it until `close()`. Elsewhere (PostgreSQL,
 * a database in memory, a file not in WAL mode) it does nothing.
 */
export function checkpointsOffThread(dataSource: DataSource): WalCheckpoints {
  const db = rawHandle(dataSource) as unknown as Handle | undefined;
  const file = (dataSource.options as { database?: unknown }).database;
  if (!db || typeof file !== 'string' || file === ':memory:' || file.startsWith('file:')) return NONE;
  if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') return NONE;
  const pages = Number(db.pragma('wal_autocheckpoint', { simple: true }));
  const driver = createRequire(join(packageRoot(), 'package.json')).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file } });
  worker.unref();
  let failed = false;
  // A thread that could not start or died only means no checkpoints off the event loop: the connection's
  // own come back at close.
  worker.on('error', () => (failed = true));
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      failed = true;
      resolve();
    }),
  );
  let running: Promise<void> | undefined;
  let again = false;
  const once = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        worker.off('message', done);
        worker.off('error', lost);
        worker.off('exit', lost);
        resolve();
      };
      const lost = () => {
        failed = true;
        done();
      };
      worker.on('message', done);
      worker.on('error', lost);
      worker.on('exit', lost);
      worker.postMessage('checkpoint');
    });
  const run = (): Promise<void> =>
    (running ??= (async () => {
      do {
        again = false;
        if (!failed) await once();
      } while (again && !failed);
    })().finally(() => (running = undefined)));
  // Set last: whatever failed above leaves the connection as it was.
  if (pages > 0) db.pragma('wal_autocheckpoint = 0');
  let closed = false;
  return {
    request() {
      if (closed) return;
      if (running) again = true;
      else void run();
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await running;
        await run();
      } finally {
        // The connection's own setting again, whatever happened to the thread (a closed one took it along).
        if (pages > 0 && db.open) db.pragma(`wal_autocheckpoint = ${pages}`);
        // Its connection closed before this resolves: whoever closes the database next is its last user.
        if (!failed) worker.postMessage('close');
        else void worker.terminate();
        await exited;
      }
    },
  };
}
