import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import type { AuditLog } from '../db/entities/audit-log.entity.js';

/**
 * What auditql remembers about one open transaction: the id its entries share, the captured entries waiting
 * for the commit to be written, and the written entries waiting for it to be published. Keyed by the
 * transaction's query runner and deleted when the outermost transaction commits or rolls back.
 *
 * TypeORM's SQLite drivers hand out one shared query runner for every transaction of a DataSource, so the
 * runner alone does not tell two transactions apart: the state is dropped at every outermost commit and
 * rollback (see `transactionEnded`), so the next transaction on the same runner starts fresh. Whoever holds a
 * DataSource's commit and rollback events (the capture subscriber, the publish subscriber) calls it; it is
 * idempotent, so both may.
 */
interface TransactionState {
  id: string;
  /**
   * Captured entries to write just before the outermost commit, with the savepoint depth that captured
   * them. Written then, not as each change is seen: the tenant's place in the chain is claimed (a lock held
   * to the commit) only for the moment of the commit, so the app's own locks and its other connections
   * never wait on it, and a change rolled back never leaves an entry.
   */
  drafts: Array<{ depth: number; draft: unknown }>;
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
    state = { id: randomUUID(), drafts: [], entries: [] };
    states.set(runner, state);
  }
  return state;
}

/** The id shared by every entry the current transaction writes; a fresh one outside transactions. */
export function transactionIdFor(runner: QueryRunner | undefined): string {
  return inTransaction(runner) ? stateOf(runner).id : randomUUID();
}

/**
 * The open transaction on `runner`, as a token to compare later: a change seen in one transaction is never
 * written into another (on SQLite the runner is shared, and may be in the next transaction by then).
 */
export function currentTransaction(runner: QueryRunner | undefined): TransactionToken | undefined {
  return inTransaction(runner) ? { state: stateOf(runner), depth: depthOf(runner) } : undefined;
}

/** A transaction, and the savepoint depth in it, where changes were seen. */
export interface TransactionToken {
  readonly state: object;
  readonly depth: number;
}

/**
 * Keeps captured entries until the outermost commit of the transaction `token` names. False when that
 * transaction, or the savepoint, has ended meanwhile: TypeORM rolls back without waiting for every hook
 * when one of the app's own hooks fails, and a change rolled back must leave no entry.
 */
export function deferDrafts(runner: QueryRunner, token: TransactionToken, drafts: readonly unknown[]): boolean {
  if (!isOpen(runner, token)) return false;
  for (const draft of drafts) states.get(runner)!.drafts.push({ depth: token.depth, draft });
  return true;
}

/** Whether the transaction (and savepoint) `token` names is still open on `runner`. */
export function isOpen(runner: QueryRunner, token: TransactionToken): boolean {
  return inTransaction(runner) && states.get(runner) === token.state && depthOf(runner) === token.depth;
}

/**
 * The captured entries to write now, before the outermost commit; none at a savepoint's release. (Typed by
 * the caller, the capture subscriber, which deferred them: the writer imports this module.)
 */
export function draftsToCommit<Draft>(runner: QueryRunner): Draft[] {
  const state = states.get(runner);
  if (!state || depthOf(runner) > 1) return [];
  const drafts = state.drafts.map(({ draft }) => draft as Draft);
  state.drafts = [];
  return drafts;
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
    for (const item of state.drafts) if (item.depth > depth) item.depth = depth;
  } else {
    state.entries = state.entries.filter((item) => item.depth <= depth);
    state.drafts = state.drafts.filter((item) => item.depth <= depth);
  }
  return [];
}

/** For tests: whether auditql still holds state for a transaction on `runner`. */
export function hasTransactionState(runner: QueryRunner): boolean {
  return states.has(runner);
}
