import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../shared/package-root.js';
import type { ChainHead } from '../shared/chain/link.js';
import type { ChainVerification, TrustedCheckpoint, VerifyOptions } from '../shared/chain/verify.js';

/** One range of a tenant's chain, for one verification thread. */
export interface RangeJob {
  id: number;
  tenant: string;
  from: number;
  to: number;
  options: VerifyOptions;
}

export type RangeReply = { id: number; result: ChainVerification; firstPreviousHash: string | null } | { id: number; error: string };

/**
 * Boots a verification thread from the compiled package (dist: chain-worker.js beside this file) or, inside
 * the repository, from the TypeScript source through tsx (worker threads do not inherit the parent's loader;
 * its CommonJS hook runs in the thread itself, where the ESM one would start a loader thread per worker).
 */
const BOOT = `
const { workerData } = require('node:worker_threads');
if (!workerData.module.endsWith('.js')) require('tsx/cjs/api').register();
require(workerData.module);
`;

function workerModule(): string {
  const dir = typeof __dirname === 'string' ? __dirname : join(packageRoot(), 'src', 'db');
  const compiled = join(dir, 'chain-worker.js');
  return existsSync(compiled) ? compiled : join(packageRoot(), 'src', 'db', 'chain-worker.ts');
}

/** What a verification thread reads: a SQLite file (opened read-only), or PostgreSQL (node-postgres client options). */
export type WorkerSource = { file: string } | { postgres: Record<string, unknown> };

export interface ParallelVerifyOptions {
  /** The SQLite file, opened read-only by each thread. */
  file?: string;
  /** Or PostgreSQL: a connection per thread with these node-postgres options. */
  postgres?: Record<string, unknown>;
  tenant: string;
  anchor: ChainHead;
  /** The recorded head: the ranges cover anchor + 1 … head.sequence. */
  head: ChainHead;
  checkpoints: readonly TrustedCheckpoint[];
  /** Threads. @default availableParallelism() */
  workers?: number;
  /** Entries per range handed to a thread (the last ones are smaller, see chainRanges). @default 50,000 */
  rangeSize?: number;
  /** Entries each thread reads per batch. @default 500 */
  batchSize?: number;
}

/** The smallest range handed to a thread: each costs a message and a read transaction. */
const MIN_RANGE = 2_000;

/**
 * Cuts sequences `first` … `last` into ranges for `workers` threads that take the next range when they are
 * done with one: ranges of `size` while there is more than one round of them left, then ever smaller ones
 * (a quarter of what is left per two threads, at least MIN_RANGE), so that the threads finish together
 * instead of one working through a last long range while the others wait; threads that run slower (a busy
 * core) simply take fewer of them.
 */
export function chainRanges(first: number, last: number, workers: number, size: number): Array<{ from: number; to: number }> {
  const ranges: Array<{ from: number; to: number }> = [];
  for (let from = first; from <= last; ) {
    const remaining = last - from + 1;
    const length = remaining > workers * size ? size : Math.min(size, Math.max(MIN_RANGE, Math.ceil(remaining / (2 * workers))));
    const to = Math.min(last, from + length - 1);
    ranges.push({ from, to });
    from = to + 1;
  }
  return ranges;
}

/** Threads a verification uses by default: one per core. */
export const defaultVerifyWorkers = () => availableParallelism();

/**
 * Verifies a tenant's chain from its anchor through its recorded head on worker threads: the entries are
 * cut into ranges of consecutive sequences, each thread reads its ranges through a read-only connection of
 * its own (to the SQLite file, or to PostgreSQL) and recomputes every hash in them (an entry's hash depends only on its facts and its *stored*
 * previousHash, so ranges are independent), and the links between ranges are checked here: the first
 * entry of each range must name the last hash of the range before it. Together that is the sequential
 * verification, spread over the cores.
 *
 * Each thread reads its own snapshot, which may be newer than the caller's (a write, an erasure or
 * retention may land in between): so this answers only "valid" with certainty. It returns null when
 * anything did not verify, and the caller then verifies sequentially in its own snapshot, which finds
 * and describes the first failure exactly as a sequential run would.
 */
export async function verifyInParallel(options: ParallelVerifyOptions): Promise<ChainVerification | null> {
  const { anchor, head } = options;
  const rangeSize = options.rangeSize ?? 50_000;
  const workers = Math.max(1, options.workers ?? defaultVerifyWorkers());
  const jobs: RangeJob[] = chainRanges(anchor.sequence + 1, head.sequence, workers, rangeSize).map(({ from, to }, id) => ({
    id, tenant: options.tenant, from, to,
    options: {
      anchor: id === 0 ? anchor : undefined, from, to,
      head: to === head.sequence ? head : undefined,
      checkpoints: options.checkpoints.filter((c) => c.sequence >= from && c.sequence <= to),
    },
  }));
  // A checkpoint past the head is a failure the sequential run describes.
  if (jobs.length === 0 || options.checkpoints.some((c) => c.sequence > head.sequence)) return null;
  const source: WorkerSource | undefined = options.file !== undefined ? { file: options.file } : options.postgres && { postgres: options.postgres };
  if (!source) return null;
  const count = Math.min(workers, jobs.length);
  const module = workerModule();
  const replies: Array<RangeReply & { result: ChainVerification; firstPreviousHash: string | null }> = [];
  let failed = false;
  const threads = Array.from({ length: count }, () => new Worker(BOOT, { eval: true, workerData: { module, source, batchSize: options.batchSize ?? 500 } }));
  try {
    let next = 0;
    await Promise.all(
      threads.map(
        (thread) =>
          new Promise<void>((resolve, reject) => {
            const give = () => {
              if (failed || next >= jobs.length) return resolve();
              thread.postMessage(jobs[next++]);
            };
            thread.on('message', (reply: RangeReply) => {
              if ('error' in reply || !reply.result.valid) failed = true;
              else replies.push(reply);
              give();
            });
            thread.once('error', reject);
            thread.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a verification thread exited with code ${code}`))));
            give();
          }),
      ),
    );
  } catch {
    // A thread that could not start or died: the sequential run answers instead.
    failed = true;
  } finally {
    await Promise.all(threads.map((thread) => thread.terminate()));
  }
  if (failed || replies.length !== jobs.length) return null;
  replies.sort((a, b) => a.id - b.id);
  let previous = anchor.hash;
  let checked = 0;
  let checkpointsChecked = 0;
  for (const { result, firstPreviousHash } of replies) {
    if (firstPreviousHash !== previous) return null;
    previous = result.headHash;
    checked += result.checked;
    checkpointsChecked += result.checkpointsChecked;
  }
  const last = replies[replies.length - 1]!.result;
  return { ...last, checked, checkpointsChecked, anchorSequence: anchor.sequence };
}
