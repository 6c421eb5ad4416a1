import DataLoader from 'dataloader';
import type { EntityManager, EntityMetadata, ObjectLiteral, QueryRunner } from 'typeorm';
import type { ForeignKeyMetadata } from 'typeorm/metadata/ForeignKeyMetadata.js';
import { keyOf, keyString, rawKeyOf, readByKeys, type ReadRow } from './read-rows.js';
import { columnValues, type Image } from './snapshot.js';

/**
 * Many-to-many links are the rows of a junction table (`question_tags_tag`: `questionId`, `tagId`), which
 * TypeORM writes itself and which are recorded like any other row: a `create` for a link a `save()` adds, a
 * `delete` for one it removes, with the two join columns as the data and the composite key as `resourceId`.
 * A link is a fact of its own (a user given a role); the owning entity's entry cannot tell it, since TypeORM
 * does not even announce an update of the owner when only its links change.
 *
 * TypeORM hands a link to subscribers without an entity, only its identifier (typeorm#9974): its two join
 * columns, which for a junction are the whole row. `afterRemove` always had it; `afterInsert` has it since
 * 0.3.18 (typeorm#10540).
 */
export function isJunction(metadata: EntityMetadata): boolean {
  return metadata.tableType === 'junction';
}

/** The image of a link TypeORM inserts or deletes, from its identifier; undefined when TypeORM gave none. */
export function linkImage(metadata: EntityMetadata, entityId: unknown): Image | undefined {
  return entityId !== null && typeof entityId === 'object' ? columnValues(metadata, entityId as ObjectLiteral) : undefined;
}

/** The links read before the database deletes them, and the junctions whose links could not be read. */
export interface CascadedLinks {
  links: Array<{ junction: EntityMetadata; row: ReadRow }>;
  failed: Array<{ junction: EntityMetadata; error: unknown }>;
}

/** A junction's foreign key to a table, which the database follows when a row of that table is deleted. */
interface Cascade {
  junction: EntityMetadata;
  foreignKey: ForeignKeyMetadata;
  /** The same junction's keys to the same table whose links TypeORM deletes itself (a self-referencing junction). */
  handled: ForeignKeyMetadata[];
}

/**
 * The links the database deletes with rows of `metadata`: junction foreign keys are `ON DELETE CASCADE` unless
 * the relation says otherwise, and no subscriber hears of what a cascade deletes. A `delete()` by criteria
 * (`byRemove` false) deletes all of them that way. A `remove()` deletes the links of every many-to-many relation
 * the entity declares as subjects of its own (announced, recorded as above), so only the others are left: the
 * links of a relation declared on the other side only (`Question.tags` when a `Tag` is removed).
 */
function cascadesOf(metadata: EntityMetadata, all: readonly EntityMetadata[], byRemove: boolean): Cascade[] {
  let memo = cascadesByMetadata.get(metadata);
  if (!memo) cascadesByMetadata.set(metadata, (memo = new Map()));
  let found = memo.get(byRemove);
  if (found) return found;
  const handled = new Set<ForeignKeyMetadata>();
  if (byRemove) {
    for (const relation of metadata.manyToManyRelations) {
      const junction = relation.junctionEntityMetadata;
      if (!junction || relation.persistenceEnabled === false) continue;
      const side = relation.isOwning ? junction.ownerColumns : junction.inverseColumns;
      for (const foreignKey of junction.foreignKeys) if (foreignKey.columns.some((column) => side.includes(column))) handled.add(foreignKey);
    }
  }
  found = [];
  for (const junction of all) {
    if (!isJunction(junction)) continue;
    const toTable = junction.foreignKeys.filter((foreignKey) => foreignKey.referencedTablePath === metadata.tablePath);
    for (const foreignKey of toTable) {
      if (foreignKey.onDelete?.toUpperCase() !== 'CASCADE' || handled.has(foreignKey)) continue;
      found.push({ junction, foreignKey, handled: toTable.filter((other) => handled.has(other)) });
    }
  }
  memo.set(byRemove, found);
  return found;
}
const cascadesByMetadata = new WeakMap<EntityMetadata, Map<boolean, Cascade[]>>();

/** Whether deleting rows of `metadata` can delete links of an audited junction; most entities have none. */
export function hasCascadedLinks(manager: EntityManager, metadata: EntityMetadata, byRemove: boolean, audited: (junction: EntityMetadata) => boolean): boolean {
  return cascadesOf(metadata, manager.connection.entityMetadatas, byRemove).some((cascade) => audited(cascade.junction));
}

/**
 * The links the database is about to delete with `rows` of `metadata` (raw rows read by a statement's
 * criteria, or a `remove()` subject's database entity), of the junctions `audited` says are audited. Read
 * before the delete, together with every other such read of the same round (one query per junction key). A
 * read that fails (on PostgreSQL inside a savepoint) leaves the other junctions' links known.
 */
export async function readCascadedLinks(
  manager: EntityManager,
  metadata: EntityMetadata,
  rows: { raw: ObjectLiteral[] } | { entity: ObjectLiteral },
  audited: (junction: EntityMetadata) => boolean,
): Promise<CascadedLinks> {
  const cascades = cascadesOf(metadata, manager.connection.entityMetadatas, 'entity' in rows).filter((cascade) => audited(cascade.junction));
  const reads = cascades.map(async (cascade) => {
    const { foreignKey } = cascade;
    const targets = 'entity' in rows ? [keyOf(manager, foreignKey.referencedColumns, rows.entity)] : rows.raw.map((raw) => rawKeyOf(foreignKey.referencedColumns, raw));
    const keys = targets
      .filter((target) => target !== undefined)
      .map((target) => Object.fromEntries(foreignKey.columns.map((column, i) => [column.databaseName, target[foreignKey.referencedColumns[i]!.databaseName]])));
    try {
      return { cascade, rows: await loaderFor(manager, cascade).loadMany(keys) };
    } catch (error) {
      return { cascade, rows: [error instanceof Error ? error : new Error(String(error))] };
    }
  });
  const links = new Map<string, CascadedLinks['links'][number]>();
  const failed: CascadedLinks['failed'] = [];
  for (const { cascade, rows: found } of await Promise.all(reads)) {
    const { junction, foreignKey } = cascade;
    const error = found.find((rows) => rows instanceof Error);
    if (error) {
      if (!failed.some((f) => f.junction === junction)) failed.push({ junction, error });
      continue;
    }
    for (const row of (found as ReadRow[][]).flat()) {
      // A link that points at the row through a key TypeORM handles as well is TypeORM's to delete (and announce).
      const theirs = cascade.handled.some((other) => keyString(other.columns, row.raw) === keyString(foreignKey.columns, row.raw));
      // A self-referencing junction reaches a link through both of its keys: once is enough.
      if (!theirs) links.set(`${junction.tablePath}\u0000${keyString(junction.primaryColumns, row.raw)}`, { junction, row });
    }
  }
  return { links: [...links.values()], failed };
}

/** Per query runner and junction key; DataLoader (`cache: false`) keeps nothing once a batch is dispatched. */
const loaders = new WeakMap<QueryRunner | EntityManager, Map<ForeignKeyMetadata, DataLoader<ObjectLiteral, ReadRow[]>>>();

function loaderFor(manager: EntityManager, { junction, foreignKey }: Cascade): DataLoader<ObjectLiteral, ReadRow[]> {
  const owner = manager.queryRunner ?? manager;
  let byKey = loaders.get(owner);
  if (!byKey) loaders.set(owner, (byKey = new Map()));
  let loader = byKey.get(foreignKey);
  if (!loader) {
    loader = new DataLoader<ObjectLiteral, ReadRow[]>(
      async (keys) => {
        const rows = await readByKeys(manager, junction, [...keys], foreignKey.columns);
        const grouped = new Map<string, ReadRow[]>();
        for (const row of rows) {
          const key = keyString(foreignKey.columns, row.raw);
          grouped.set(key, [...(grouped.get(key) ?? []), row]);
        }
        return keys.map((key) => grouped.get(keyString(foreignKey.columns, key)) ?? []);
      },
      { cache: false },
    );
    byKey.set(foreignKey, loader);
  }
  return loader;
}
