import { randomUUID } from 'node:crypto';
import { EventSubscriber, type DataSource, type EntitySubscriberInterface, type QueryRunner, type TransactionCommitEvent, type TransactionRollbackEvent } from 'typeorm';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import type { AuditPubSub } from '../pubsub.js';
import { alignRollbackWithConnection } from '../db/sqlite-rollback-repair.js';

/**
 * Live subscribers may only see committed facts, in commit order. TypeORM runs subscriber hooks before the
 * commit (typeorm#1705), so the writer parks each entry on its query runner and this subscriber publishes
 * them once the outermost transaction has committed, or drops them on rollback. A rolled-back savepoint
 * drops only the entries written inside it. (The same pattern as Vendure's transaction subscriber.)
 */
interface PendingTransaction {
  id: string;
  entries: Array<{ depth: number; entry: AuditLog }>;
}

const pendingByRunner = new WeakMap<QueryRunner, PendingTransaction>();
const publishers = new WeakMap<DataSource, AuditPubSub>();

/** Where the entries committed through `dataSource` are published. */
export function registerPublisher(dataSource: DataSource, pubsub: AuditPubSub): void {
  publishers.set(dataSource, pubsub);
}

export function unregisterPublisher(dataSource: DataSource, pubsub: AuditPubSub): void {
  if (publishers.get(dataSource) === pubsub) publishers.delete(dataSource);
}

function inTransaction(runner: QueryRunner | undefined): runner is QueryRunner {
  return !!runner && runner.isTransactionActive;
}

/** The id shared by every entry the current transaction writes; a fresh one outside transactions. */
export function transactionIdFor(runner: QueryRunner | undefined): string {
  if (!inTransaction(runner)) return randomUUID();
  let pending = pendingByRunner.get(runner);
  if (!pending) {
    pending = { id: randomUUID(), entries: [] };
    pendingByRunner.set(runner, pending);
  }
  return pending.id;
}

/** Publishes now when there is no transaction, otherwise after the outermost commit. */
export function publishAfterCommit(dataSource: DataSource, runner: QueryRunner | undefined, entries: AuditLog[]): void {
  if (!inTransaction(runner)) {
    const pubsub = publishers.get(dataSource);
    for (const entry of entries) pubsub?.publish(entry);
    return;
  }
  transactionIdFor(runner);
  const pending = pendingByRunner.get(runner)!;
  const depth = (runner as QueryRunner & { transactionDepth?: number }).transactionDepth ?? 1;
  for (const entry of entries) pending.entries.push({ depth, entry });
}

function depthOf(runner: QueryRunner): number {
  return (runner as QueryRunner & { transactionDepth?: number }).transactionDepth ?? 0;
}

@EventSubscriber()
export class AuditPublishSubscriber implements EntitySubscriberInterface {
  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    alignRollbackWithConnection(event.queryRunner);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    const runner = event.queryRunner;
    if (depthOf(runner) > 0) return; // a savepoint was released; the outer transaction may still roll back
    const pending = pendingByRunner.get(runner);
    pendingByRunner.delete(runner);
    if (!pending) return;
    const pubsub = publishers.get(event.connection);
    for (const { entry } of pending.entries) pubsub?.publish(entry);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const runner = event.queryRunner;
    const depth = depthOf(runner);
    const pending = pendingByRunner.get(runner);
    if (!pending) return;
    if (depth === 0) {
      pendingByRunner.delete(runner);
      return;
    }
    pending.entries = pending.entries.filter((item) => item.depth <= depth);
  }
}
