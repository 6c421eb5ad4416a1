import { EventSubscriber, type DataSource, type EntitySubscriberInterface, type QueryRunner, type TransactionCommitEvent, type TransactionRollbackEvent } from 'typeorm';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import type { AuditPubSub } from '../pubsub.js';
import { alignRollbackWithConnection } from '../db/sqlite-rollback-repair.js';
import { holdForCommit, inTransaction, transactionEnded } from './transaction-state.js';

/**
 * Live subscribers may only see committed facts, in commit order. TypeORM runs subscriber hooks before the
 * commit (typeorm#1705), so the writer parks each entry on its transaction (transaction-state.ts) and the
 * entries are published once the outermost transaction has committed, or dropped on rollback. A rolled-back
 * savepoint drops only the entries written inside it. (The same pattern as Vendure's transaction subscriber.)
 */
const publishers = new WeakMap<DataSource, AuditPubSub>();

/** Where the entries committed through `dataSource` are published. */
export function registerPublisher(dataSource: DataSource, pubsub: AuditPubSub): void {
  publishers.set(dataSource, pubsub);
}

export function unregisterPublisher(dataSource: DataSource, pubsub: AuditPubSub): void {
  if (publishers.get(dataSource) === pubsub) publishers.delete(dataSource);
}

/** Publishes now when there is no transaction, otherwise after the outermost commit; keeps nothing without a publisher. */
export function publishAfterCommit(dataSource: DataSource, runner: QueryRunner | undefined, entries: AuditLog[]): void {
  if (!publishers.has(dataSource)) return;
  if (inTransaction(runner)) holdForCommit(runner, entries);
  else publish(dataSource, entries);
}

function publish(dataSource: DataSource, entries: AuditLog[]): void {
  const pubsub = publishers.get(dataSource);
  if (!pubsub) return;
  // The app's transaction has committed: nothing that goes wrong here may turn that into an error.
  try {
    for (const entry of entries) pubsub.publish(entry);
  } catch (error) {
    process.emitWarning(`auditql: publishing committed entries failed: ${String(error)}`, { code: 'AUDITQL_PUBLISH_FAILED' });
  }
}

/** Marks the subscribers that end auditql's transaction state; see `ensureTransactionTracking`. */
const TRACKS_TRANSACTIONS = Symbol('auditql.tracksTransactions');

/** The commit and rollback handling every auditql subscriber shares (idempotent: several may be registered). */
export abstract class TransactionTrackingSubscriber implements EntitySubscriberInterface {
  readonly [TRACKS_TRANSACTIONS] = true;

  /** SQLite may have rolled back a failed COMMIT by itself; TypeORM's ROLLBACK must still find a transaction (see the function). */
  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    alignRollbackWithConnection(event.queryRunner);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    const committed = transactionEnded(event.queryRunner, true);
    if (committed.length > 0) publish(event.connection, committed);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    transactionEnded(event.queryRunner, false);
  }
}

@EventSubscriber()
export class AuditPublishSubscriber extends TransactionTrackingSubscriber {}

const tracked = new WeakSet<DataSource>();

/**
 * Per-transaction state is released by commit and rollback events, which only reach registered subscribers.
 * A DataSource that writes entries without any auditql subscriber (an app calling `writeAuditEntries` itself)
 * gets one added here, once, so that its transaction state cannot outlive its transactions.
 */
export function ensureTransactionTracking(dataSource: DataSource): void {
  if (tracked.has(dataSource)) return;
  const subscribers = dataSource.subscribers as EntitySubscriberInterface[];
  if (!subscribers.some((subscriber) => (subscriber as Partial<TransactionTrackingSubscriber>)[TRACKS_TRANSACTIONS] === true)) {
    subscribers.push(new AuditPublishSubscriber());
  }
  tracked.add(dataSource);
}
