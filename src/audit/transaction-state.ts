import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import type { AuditLog } from '../db/entities/audit-log.entity.js';

/**
 * What auditql remembers about one open transaction: the id its entries share, and the entries waiting for
 * the commit to be published. Keyed by the transaction's query runner and deleted when the outermost
 * transaction commits or rolls back.
 *
 * TypeORM's SQLite drivers hand out one shared query runner for every transaction of a DataSource, so the
 * runner alone does not tell two transactions apart: the state is dropped at every outermost commit and
 * rollback (see `transactionEnded`), so the next transaction on the same runner starts fresh. Whoever holds a
 * DataSource's commit and rollback events (the capture subscriber, the publish subscriber) calls it; it is
 * idempotent, so both may.
 */
interface TransactionState {
  id: string;
  /** Entries to publish after the commit, with the savepoint depth that wrote them. */
  entries: Array<{ depth: number; entry: AuditLog }>;
}

const states = new WeakMap<QueryRunner, TransactionState>();

export function inTransaction(runner: QueryRunner | undefined): runner is QueryRunner {
  return !!runner && runner.isTransactionActive;
}

/** TypeORM counts nested transactions (savepoints) in a field it does not declare. */
function depthOf(runner: QueryRunner): number {
  return (runner as QueryRunner & { transactionDepth?: number }).transactionDepth ?? (runner.isTransactionActive ? 1 : 0);
}

function stateOf(runner: QueryRunner): TransactionState {
  let state = states.get(runner);
  if (!state) {
    state = { id: randomUUID(), entries: [] };
    states.set(runner, state);
  }
  return state;
}

/** The id shared by every entry the current transaction writes; a fresh one outside transactions. */
export function transactionIdFor(runner: QueryRunner | undefined): string {
  return inTransaction(runner) ? stateOf(runner).id : randomUUID();
}

/** Keeps entries until the outermost commit (or drops them with a rollback of the savepoint that wrote them). */
export function holdForCommit(runner: QueryRunner, entries: AuditLog[]): void {
  const state = stateOf(runner);
  const depth = depthOf(runner);
  for (const entry of entries) state.entries.push({ depth, entry });
}

/**
 * Called after a commit or rollback on `runner` (TypeORM has already lowered its depth). Returns the entries
 * to publish when the outermost transaction committed, and forgets the transaction when it ended.
 */
export function transactionEnded(runner: QueryRunner, committed: boolean): AuditLog[] {
  const state = states.get(runner);
  if (!state) return [];
  const depth = depthOf(runner);
  if (depth === 0 || !runner.isTransactionActive) {
    states.delete(runner);
    return committed ? state.entries.map(({ entry }) => entry) : [];
  }
  if (committed) {
    // A released savepoint's entries now belong to the enclosing level: a later rollback of a sibling
    // savepoint at the same depth must not take them.
    for (const item of state.entries) if (item.depth > depth) item.depth = depth;
  } else {
    state.entries = state.entries.filter((item) => item.depth <= depth);
  }
  return [];
}

/** For tests: whether auditql still holds state for a transaction on `runner`. */
export function hasTransactionState(runner: QueryRunner): boolean {
  return states.has(runner);
}
