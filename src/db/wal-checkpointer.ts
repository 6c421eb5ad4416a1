import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../shared/package-root.js';

/** What one checkpoint found and did, in WAL frames (pages), as `PRAGMA wal_checkpoint` reports them. */
export interface CheckpointResult {
  /** A reader or writer kept it from copying everything (PASSIVE never waits for them). */
  busy: boolean;
  /** Frames in the log. */
  logFrames: number;
  /** Frames copied back into the database file so far (of `logFrames`). */
  checkpointedFrames: number;
}

/** Longest a restarting checkpoint waits for readers (and any other writer) to leave the log. */
const RESTART_WAIT_MS = 100;

/**
 * The code of the checkpointer's thread: a connection of its own to the database file, used for nothing but
 * `PRAGMA wal_checkpoint`. A passive checkpoint takes no write lock and waits for nobody: the
 * server's writer goes on committing while this thread copies the log into the file and waits for the disk.
 * Kept as source text so that it runs the same from the compiled package and from the TypeScript sources.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
parentPort.on('message', (message) => {
  try {
    const [row] = db.pragma('wal_checkpoint(' + (message.restart ? 'RESTART' : 'PASSIVE') + ')');
    parentPort.postMessage({ id: message.id, busy: row.busy !== 0, logFrames: row.log, checkpointedFrames: row.checkpointed });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: String(error && error.message || error) });
  }
});
`;

/**
 * Checkpoints of one SQLite file (WAL mode) on a thread of its own, one at a time. For runs of heavy
 * writes (a retention purge, an erasure): with the writer's automatic checkpoint off, the commit that
 * crosses the log's size limit no longer copies the whole log back and waits for the disk while holding
 * the writer (measured at 1M entries: 12–50 ms added to a purge batch of 5 ms), this thread does it
 * between the batches.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (result: CheckpointResult) => void; reject: (error: Error) => void }>();
  private failed: Error | undefined;

  constructor(file: string) {
    const driver = createRequire(join(packageRoot(), 'package.json')).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver, file, busyTimeoutMs: RESTART_WAIT_MS } });
    this.worker.unref();
    this.worker.on('message', (reply: { id: number; error?: string } & CheckpointResult) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(reply.error));
      else waiter?.resolve({ busy: reply.busy, logFrames: reply.logFrames, checkpointedFrames: reply.checkpointedFrames });
    });
    const fail = (error: Error) => {
      this.failed = error;
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('the checkpoint thread has stopped')));
  }

  /**
   * One checkpoint; resolves with what it did. Passive by default. With `restart`, it also waits (up to
   * RESTART_WAIT_MS) for readers of the log to finish, so that the next write starts the log over: the
   * caller holds its own writes back meanwhile (a writer would make it wait too).
   */
  checkpoint(options: { restart?: boolean } = {}): Promise<CheckpointResult> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, restart: options.restart === true });
    });
  }

  /** Stops the thread (after the checkpoint under way, which SQLite finishes or abandons safely). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
