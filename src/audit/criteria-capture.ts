import { AsyncLocalStorage } from 'node:async_hooks';
import { DeleteQueryBuilder, InsertQueryBuilder, UpdateQueryBuilder, type EntityManager, type EntityMetadata, type ObjectLiteral, type QueryBuilder } from 'typeorm';
import { SoftDeleteQueryBuilder } from 'typeorm/query-builder/SoftDeleteQueryBuilder.js';

/**
 * TypeORM tells subscribers nothing about the rows an `update()`/`delete()` by criteria or a query-builder
 * write touches: no entity, no previous values, not even the WHERE clause (typeorm#2809, #717, #2246).
 *
 * To close that gap, the execute method of the write builders runs inside an AsyncLocalStorage scope that
 * names the builder. The capture subscriber reads it in its before-hooks, selects the affected rows by the
 * builder's own WHERE inside the same transaction (their before-images), and after the write reloads them
 * by primary key (their after-images). When the entity is audited and no transaction is open, the builder
 * is told to open one, so the change and its audit entries commit together.
 */
export interface BuilderScope {
  builder: QueryBuilder<ObjectLiteral>;
  /** Rows selected before the write, filled by the subscriber. */
  before?: ObjectLiteral[];
  /** Rows an insert stored, reloaded once for all its value sets, by record id. */
  inserted?: Map<string | null, ObjectLiteral>;
}

const scope = new AsyncLocalStorage<BuilderScope>();

interface Internals {
  expressionMap: {
    mainAlias?: { hasMetadata: boolean; metadata: EntityMetadata; name: string };
    wheres: unknown[];
    useTransaction: boolean;
    callListeners: boolean;
    withDeleted: boolean;
    onUpdate?: { conflict?: string | string[]; columns?: string[]; overwrite?: string[] };
    valuesSet?: ObjectLiteral | ObjectLiteral[];
  };
}

export function internals(builder: QueryBuilder<ObjectLiteral>): Internals['expressionMap'] {
  return (builder as unknown as Internals).expressionMap;
}

/** The write builder whose execution is under way, if it writes `metadata`'s table. */
export function currentBuilderScope(metadata: EntityMetadata): BuilderScope | undefined {
  const current = scope.getStore();
  const alias = current && internals(current.builder).mainAlias;
  return alias?.hasMetadata && alias.metadata === metadata ? current : undefined;
}

type Predicate = (metadata: EntityMetadata) => boolean;
/** One per capture subscriber: an entity is audited when any of them audits it. */
const auditedBy = new Set<Predicate>();
const isAudited = (metadata: EntityMetadata) => [...auditedBy].some((audited) => audited(metadata));
let installed = false;

/** Wraps the write builders once per process; `audited` says which entities get a transaction forced. */
export function installCriteriaCapture(audited: Predicate): void {
  auditedBy.add(audited);
  if (installed) return;
  installed = true;
  for (const Builder of [UpdateQueryBuilder, DeleteQueryBuilder, SoftDeleteQueryBuilder, InsertQueryBuilder]) {
    const prototype = Builder.prototype as unknown as { execute: (this: QueryBuilder<ObjectLiteral>) => Promise<unknown> };
    const execute = prototype.execute;
    prototype.execute = function (this: QueryBuilder<ObjectLiteral>) {
      const map = internals(this);
      if (!map.callListeners || !map.mainAlias?.hasMetadata || !isAudited(map.mainAlias.metadata)) return execute.call(this);
      map.useTransaction = true;
      return scope.run({ builder: this }, () => execute.call(this));
    };
  }
}

/** Selects the rows a write builder is about to touch, by its own WHERE, locking them where the driver can. */
export async function selectByBuilderCriteria(manager: EntityManager, metadata: EntityMetadata, builder: QueryBuilder<ObjectLiteral>): Promise<ObjectLiteral[]> {
  const map = internals(builder);
  const select = manager.createQueryBuilder(metadata.target, map.mainAlias!.name).withDeleted();
  const selectMap = internals(select);
  selectMap.wheres = map.wheres;
  select.setParameters(builder.getParameters());
  const type = manager.connection.options.type;
  if (type === 'postgres' || type === 'mysql' || type === 'mariadb') select.setLock('pessimistic_write');
  return select.getMany();
}

/** Reloads rows by primary key (including soft-deleted ones). */
export async function reloadByIds(manager: EntityManager, metadata: EntityMetadata, rows: ObjectLiteral[]): Promise<ObjectLiteral[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => metadata.getEntityIdMap(row)).filter((id): id is ObjectLiteral => id !== undefined);
  if (ids.length === 0) return [];
  return manager.getRepository(metadata.target).find({ where: ids, withDeleted: true });
}
