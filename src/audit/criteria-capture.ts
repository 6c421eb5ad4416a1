import { AsyncLocalStorage } from 'node:async_hooks';
import { DeleteQueryBuilder, InsertQueryBuilder, UpdateQueryBuilder, type DataSource, type EntityMetadata, type ObjectLiteral, type QueryBuilder } from 'typeorm';
import { SoftDeleteQueryBuilder } from 'typeorm/query-builder/SoftDeleteQueryBuilder.js';

/**
 * TypeORM tells subscribers nothing about the rows an `update()`/`delete()` by criteria or a query-builder
 * write touches: no entity, no previous values, not even the WHERE clause (typeorm#2809, #717, #2246).
 *
 * To close that gap, the `execute` method of the write builders runs inside an AsyncLocalStorage scope that
 * names the builder. The capture subscriber reads it in its before-hooks, selects the affected rows by the
 * builder's own WHERE inside the same transaction (their before-images), and after the write reloads them
 * by primary key (their after-images). When the entity is audited and no transaction is open, the builder
 * is told to open one, so the change and its audit entries commit together.
 *
 * Why a patch of the builders' prototypes, and no cleaner hook: a subscriber is constructed by TypeORM with
 * no arguments and learns its DataSource only with its first event, and that event (`beforeUpdate` with a
 * value set, `beforeRemove` with nothing) carries neither the builder nor its WHERE, in 0.3 as in 1.x. Every
 * builder is an instance of these four classes, whichever DataSource, manager or repository made it, so their
 * `execute` is the one place that sees them all. The patch is a guest: it is installed when the first capture
 * subscriber is constructed (never on import), it calls the original with the same receiver, and it changes
 * nothing — no transaction, no scope — unless the builder's own DataSource has a capture subscriber
 * registered that audits the builder's entity.
 */
export interface BuilderScope {
  builder: QueryBuilder<ObjectLiteral>;
  /** Shared work of one statement (its hooks run once per value set), filled by the subscriber. */
  shared: Map<string, Promise<unknown>>;
}

const scope = new AsyncLocalStorage<BuilderScope>();

interface ExpressionMap {
  mainAlias?: { hasMetadata: boolean; metadata: EntityMetadata; name: string };
  queryType: string;
  useTransaction: boolean;
  callListeners: boolean;
  onUpdate?: { conflict?: string | string[]; columns?: string[]; overwrite?: string[] };
  onIgnore?: boolean | string;
  valuesSet?: ObjectLiteral | ObjectLiteral[];
}

export function internals(builder: QueryBuilder<ObjectLiteral>): ExpressionMap {
  return (builder as unknown as { expressionMap: ExpressionMap }).expressionMap;
}

/** The write builder whose execution is under way, if it writes `metadata`'s table. */
export function currentBuilderScope(metadata: EntityMetadata): BuilderScope | undefined {
  const current = scope.getStore();
  const alias = current && internals(current.builder).mainAlias;
  return alias?.hasMetadata && alias.metadata === metadata ? current : undefined;
}

/** The work of one statement, done once however many of its hooks ask for it. */
export function oncePerStatement<T>(current: BuilderScope, name: string, work: () => Promise<T>): Promise<T> {
  let promise = current.shared.get(name) as Promise<T> | undefined;
  if (!promise) {
    promise = work();
    current.shared.set(name, promise);
  }
  return promise;
}

/** Capture subscribers carry this: a function saying whether they audit an entity. */
export const AUDITS = Symbol('auditql.audits');
export type Audits = (metadata: EntityMetadata) => boolean;

function capturedBy(dataSource: DataSource | undefined, metadata: EntityMetadata): boolean {
  if (!dataSource) return false;
  for (const subscriber of dataSource.subscribers as Array<{ [AUDITS]?: Audits }>) {
    if (subscriber[AUDITS]?.(metadata)) return true;
  }
  return false;
}

let installed = false;

/** Wraps the write builders' `execute`, once per process. */
export function installCriteriaCapture(): void {
  if (installed) return;
  installed = true;
  for (const Builder of [UpdateQueryBuilder, DeleteQueryBuilder, SoftDeleteQueryBuilder, InsertQueryBuilder]) {
    const prototype = Builder.prototype as unknown as { execute: (this: QueryBuilder<ObjectLiteral>, ...args: unknown[]) => Promise<unknown> };
    const execute = prototype.execute;
    prototype.execute = function (this: QueryBuilder<ObjectLiteral>, ...args: unknown[]) {
      const map = internals(this);
      if (!map.callListeners || !map.mainAlias?.hasMetadata || !capturedBy(this.connection, map.mainAlias.metadata)) return execute.apply(this, args);
      map.useTransaction = true;
      return scope.run({ builder: this, shared: new Map() }, () => execute.apply(this, args));
    };
  }
}
