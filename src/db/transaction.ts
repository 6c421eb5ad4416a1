import { Semaphore } from 'async-mutex';
import type { DataSource, EntityManager } from 'typeorm';

/**
 * TypeORM shares one connection between all requests on SQLite, so two top-level transactions that
 * overlap in time run inside each other ("cannot start a transaction within a transaction", typeorm#8668;
 * measured: acknowledged writes lost when a neighbour rolled back), and a read that runs between a
 * transaction's BEGIN and COMMIT sees rows that may still roll back.
 *
 * So the server holds a readers-writer lock per DataSource: reads share it, a write transaction holds it
 * alone, in arrival order.
 */
/**
 * A write takes every unit; a read takes one, so at most this many reads share the connection at once.
 * Kept small: async-mutex's release walks all units (measured: a weight of 1,000,000 cost ~10 ms per write).
 */
const WRITER = 64;
const locks = new WeakMap<DataSource, Semaphore>();

function lockFor(dataSource: DataSource): Semaphore {
  let lock = locks.get(dataSource);
  if (!lock) {
    lock = new Semaphore(WRITER);
    locks.set(dataSource, lock);
  }
  return lock;
}

/**
 * Runs `work` in a TypeORM transaction, one at a time per DataSource (on SQLite TypeORM shares one connection
 * between all transactions, so overlapping ones would run inside each other).
 */
export function writeTransaction<T>(dataSource: DataSource, work: (manager: EntityManager) => Promise<T>): Promise<T> {
  return writeLocked(dataSource, () => dataSource.transaction(work));
}

export function read<T>(dataSource: DataSource, work: (manager: EntityManager) => Promise<T>): Promise<T> {
  return readLocked(dataSource, () => work(dataSource.manager));
}

/** Runs `run` holding the DataSource's lock alone (a write). */
export function writeLocked<T>(dataSource: DataSource, run: () => Promise<T>): Promise<T> {
  return lockFor(dataSource).runExclusive(run, WRITER);
}

/** Runs `run` sharing the DataSource's lock with other reads. */
export function readLocked<T>(dataSource: DataSource, run: () => Promise<T>): Promise<T> {
  return lockFor(dataSource).runExclusive(run, 1);
}
