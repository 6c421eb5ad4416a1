import { isDeepStrictEqual } from 'node:util';
import DataLoader from 'dataloader';
import {
  EventSubscriber,
  type EntityManager,
  type EntityMetadata,
  type InsertEvent,
  type ObjectLiteral,
  type QueryRunner,
  type RecoverEvent,
  type RemoveEvent,
  type SoftRemoveEvent,
  type TransactionCommitEvent,
  type UpdateEvent,
  type EntitySubscriberInterface,
} from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { dialectOf } from '../db/sql.js';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import { currentAuditContext, type AuditContext } from './context.js';
import { AUDITS, currentBuilderScope, installCriteriaCapture, internals, oncePerStatement, type Audits, type BuilderScope } from './criteria-capture.js';
import { isJsonObject, type JsonObject, type JsonValue } from '../shared/json.js';
import { hasCascadedLinks, isJunction, linkImage, readCascadedLinks, type CascadedLinks } from './junction.js';
import { keyMask, resolveEntityOptions, type AuditCaptureOptions, type CaptureWarning, type ResolvedEntityOptions } from './options.js';
import { TransactionTrackingSubscriber } from './publish.subscriber.js';
import { keyOf, keyString, rawKeyOf, readByKeys, readByWriteCriteria, type ReadRow } from './read-rows.js';
import { columnValues, isIncomplete, recordId, sanitize, type Image } from './snapshot.js';
import { currentTransaction, deferDrafts, draftsToCommit, isOpen, type TransactionToken } from './transaction-state.js';
import { writeAuditEntries, type AuditEntryDraft } from './writer.js';

/** The `action` of an entry the capture writes. */
export type CapturedAction = 'create' | 'update' | 'delete' | 'softDelete' | 'restore';

/** Marks entries written without the full before or after image of their rows (see README, "Capture"). */
export const PARTIAL_CAPTURE = { auditCapture: 'partial' } as const;

type Row = ObjectLiteral;
type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A subscriber class to list in a DataSource's `subscribers`; TypeORM constructs it. */
export type AuditSubscriberClass = new () => EntitySubscriberInterface;

/**
 * Records every insert, update, remove, soft-remove and recover of every entity (except the audit log
 * itself) as an audit entry, written through the event's own transaction so that it commits or rolls back
 * with the change. Publishing waits for the commit (see publish.subscriber.ts).
 *
 * `save()`/`remove()` give the subscriber the entity and its database state. `update()`, `delete()`,
 * `softDelete()`, `restore()`, `insert()`, `upsert()` and query-builder writes do not; for those the
 * affected rows are read by the builder's own criteria before the write and reloaded after it
 * (criteria-capture.ts, read-rows.ts), so every path yields one full entry per affected row. Many-to-many
 * links are rows of their junction table, recorded as such, those the database deletes by cascade included
 * (junction.ts).
 *
 * The app's write always goes ahead: a read that fails leaves a partial entry and a warning, never an error
 * in the app's write. Writing the entries is part of the change: if that fails, the change rolls back.
 *
 * Batching: TypeORM announces a `save()` of many entities as one synchronous round of hooks per kind of
 * event, so the reads of one round are done as one query (DataLoader) and its entries as multi-row inserts
 * of 500 (`Round`); a builder statement is captured with one read before, one after and one insert.
 */
export function createAuditSubscriber(options: AuditCaptureOptions = {}): AuditSubscriberClass {
  keyMask(options.redactedKeySecret); // a secret too short to be one fails here, where the app configures it, not in a write
  const resolved = new WeakMap<EntityMetadata, ResolvedEntityOptions>();
  const optionsFor = (metadata: EntityMetadata): ResolvedEntityOptions | undefined => {
    if (metadata.target === AuditLog || metadata.tableName === 'audit_log') return undefined;
    let entity = resolved.get(metadata);
    if (!entity) {
      entity = resolveEntityOptions(metadata, options);
      resolved.set(metadata, entity);
    }
    return entity.enabled ? entity : undefined;
  };
  const audits: Audits = (metadata) => optionsFor(metadata) !== undefined;

  const warned = new Set<string>();
  const warn = (warning: CaptureWarning) => {
    try {
      if (options.onWarning) return options.onWarning(warning);
      // Once per kind of failure, so that a write path that keeps failing does not flood the app's log.
      const kind = `${warning.resource}\u0000${warning.action}\u0000${warning.message}`;
      if (warned.has(kind) || warned.size >= 100) return;
      warned.add(kind);
      process.emitWarning(`auditql: ${warning.resource} ${warning.action} recorded as partial: ${warning.message}`, { code: 'AUDITQL_PARTIAL_CAPTURE' });
    } catch {
      // A warning handler that throws must not turn into an error in the app's write.
    }
  };

  /** Completed before-images of `save()`/`remove()` subjects, by TypeORM's database entity object. */
  const beforeImages = new WeakMap<object, Promise<Outcome<Image>>>();
  /** The links the database deletes with a `remove()` subject (junction.ts), by its database entity object. */
  const cascadedLinks = new WeakMap<object, Promise<CascadedLinks>>();

  @EventSubscriber()
  class AuditSubscriber extends TransactionTrackingSubscriber {
    readonly [AUDITS] = audits;

    constructor() {
      super();
      installCriteriaCapture();
    }

    /** A failure here fails the commit: TypeORM rolls the transaction back, the app's change with it. */
    beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
      return writeBeforeCommit(event.manager, event.queryRunner);
    }

    async beforeInsert(event: InsertEvent<Row>): Promise<void> {
      const current = optionsFor(event.metadata) && builderOf(event.metadata, event.entity);
      if (current && overwrites(current)) {
        await oncePerStatement(current, 'before', () => {
          // The keys as the app gave them, before the write: on SQLite TypeORM then copies the last inserted
          // id and default values into every value set, so the rows an upsert updated are read by these.
          const keys = insertTargetKeys(event.manager, event.metadata, current);
          current.shared.set('keys', Promise.resolve(keys));
          return attempt(event.manager, () => readByKeySets(event.manager, event.metadata, keys));
        });
      }
    }

    async afterInsert(event: InsertEvent<Row>): Promise<void> {
      const entity = optionsFor(event.metadata);
      if (!entity) return;
      const current = builderOf(event.metadata, event.entity);
      if (current) return oncePerStatement(current, 'after', () => recordInsertStatement(event.manager, event.metadata, entity, current));
      if (isJunction(event.metadata)) return recordLink(event.manager, event.metadata, entity, 'create', event.entity ?? event.entityId);
      let image = columnValues(event.metadata, event.entity);
      let partial: unknown;
      if (isIncomplete(event.metadata, image)) {
        // Columns the entity did not carry took their database defaults: read them, once for the whole save.
        const read = await loadRow(event.manager, event.metadata, image);
        if (read.ok) image = { ...read.value?.image, ...image };
        else partial = read.error;
      }
      return recordDraft(event.manager, event.metadata, entity, 'create', undefined, image, partial);
    }

    beforeUpdate(event: UpdateEvent<Row>) {
      return prepareBefore(event.manager, event.metadata, event.databaseEntity);
    }

    async afterUpdate(event: UpdateEvent<Row>): Promise<void> {
      const entity = optionsFor(event.metadata);
      if (!entity) return;
      if (!event.databaseEntity) return recordWriteStatement(event.manager, event.metadata, entity, 'update', event.entity);
      const before = await beforeImageOf(event.metadata, event.databaseEntity);
      // Only what TypeORM wrote is read from the entity: after a save it also sets every nullable column the
      // entity left undefined to null (SubjectExecutor), which says nothing about the row.
      const written = new Set<ColumnMetadata>(event.updatedColumns);
      const relations = new Set(event.updatedRelations);
      const wrote = (column: ColumnMetadata) =>
        written.has(column) || column.isUpdateDate || column.isVersion || (column.relationMetadata !== undefined && relations.has(column.relationMetadata));
      const after = event.entity ? columnValues(event.metadata, event.entity, before.image, wrote) : before.image;
      return recordDraft(event.manager, event.metadata, entity, 'update', before.image, after, before.partial);
    }

    async beforeRemove(event: RemoveEvent<Row>): Promise<void> {
      await prepareBefore(event.manager, event.metadata, event.databaseEntity);
      await prepareCascadedLinks(event.manager, event.metadata, event.databaseEntity);
    }

    async afterRemove(event: RemoveEvent<Row>): Promise<void> {
      const entity = optionsFor(event.metadata);
      if (!entity) return;
      if (!event.databaseEntity) {
        if (isJunction(event.metadata) && !currentBuilderScope(event.metadata)) return recordLink(event.manager, event.metadata, entity, 'delete', event.entityId);
        return recordWriteStatement(event.manager, event.metadata, entity, 'delete');
      }
      const before = await beforeImageOf(event.metadata, event.databaseEntity);
      const id = recordId(event.metadata, before.image, entity) ?? (event.entityId === undefined ? null : recordId(event.metadata, columnValues(event.metadata, event.entityId as Row), entity));
      const links = await cascadedLinks.get(event.databaseEntity);
      cascadedLinks.delete(event.databaseEntity);
      await Promise.all([recordDraft(event.manager, event.metadata, entity, 'delete', before.image, undefined, before.partial, id), links && recordCascadedLinks(event.manager, links)]);
    }

    beforeSoftRemove(event: SoftRemoveEvent<Row>) {
      return prepareBefore(event.manager, event.metadata, event.databaseEntity);
    }

    afterSoftRemove(event: SoftRemoveEvent<Row>) {
      return recordStateChange(event, 'softDelete');
    }

    beforeRecover(event: RecoverEvent<Row>) {
      return prepareBefore(event.manager, event.metadata, event.databaseEntity);
    }

    afterRecover(event: RecoverEvent<Row>) {
      return recordStateChange(event, 'restore');
    }
  }

  /** The builder statement an event belongs to; none for `save()`/`remove()` (even one run from inside a builder's hook). */
  function builderOf(metadata: EntityMetadata, entity: Row | undefined): BuilderScope | undefined {
    const current = currentBuilderScope(metadata);
    if (!current || entity === undefined) return current;
    const set = internals(current.builder).valuesSet;
    return set === entity || (Array.isArray(set) && set.includes(entity)) ? current : undefined;
  }

  /**
   * Before a write: a builder's rows are read by its own criteria, once per statement; a `save()`/`remove()`
   * subject comes with its database state, completed from the database when TypeORM left columns out.
   */
  async function prepareBefore(manager: EntityManager, metadata: EntityMetadata, databaseEntity: Row | undefined): Promise<void> {
    if (!optionsFor(metadata)) return;
    if (!databaseEntity) {
      const current = currentBuilderScope(metadata);
      if (current) await oncePerStatement(current, 'before', () => attempt(manager, () => readByWriteCriteria(manager, current.builder)));
      return;
    }
    if (beforeImages.has(databaseEntity)) return;
    const image = columnValues(metadata, databaseEntity);
    const completed: Promise<Outcome<Image>> = isIncomplete(metadata, image)
      ? loadRow(manager, metadata, image).then((read) => (read.ok ? { ok: true, value: { ...read.value?.image, ...image } } : read))
      : Promise.resolve({ ok: true, value: image });
    beforeImages.set(databaseEntity, completed);
    await completed;
  }

  async function beforeImageOf(metadata: EntityMetadata, databaseEntity: Row): Promise<{ image: Image; partial?: unknown }> {
    const prepared = await beforeImages.get(databaseEntity);
    beforeImages.delete(databaseEntity);
    if (prepared?.ok) return { image: prepared.value };
    return { image: columnValues(metadata, databaseEntity), partial: prepared?.error };
  }

  /**
   * Before a delete: the links the database will delete with the rows (junction.ts), read while they are
   * there; for a statement once its rows are known, for a `remove()` subject by its database entity.
   */
  async function prepareCascadedLinks(manager: EntityManager, metadata: EntityMetadata, databaseEntity: Row | undefined): Promise<void> {
    if (!optionsFor(metadata) || !hasCascadedLinks(manager, metadata, databaseEntity !== undefined, audits)) return;
    if (databaseEntity) {
      if (!cascadedLinks.has(databaseEntity)) cascadedLinks.set(databaseEntity, readCascadedLinks(manager, metadata, { entity: databaseEntity }, audits));
      await cascadedLinks.get(databaseEntity);
      return;
    }
    const current = currentBuilderScope(metadata);
    if (!current) return;
    await oncePerStatement(current, 'links', async (): Promise<CascadedLinks> => {
      const before = await (current.shared.get('before') as Promise<Outcome<ReadRow[]>> | undefined);
      // Rows that could not be read leave their delete entries partial already (recordWriteStatement).
      if (!before?.ok) return { links: [], failed: [] };
      return readCascadedLinks(manager, metadata, { raw: before.value.map((row) => row.raw) }, audits);
    });
  }

  /** A link TypeORM inserted or deleted for a `save()`/`remove()`, known by its identifier (junction.ts). */
  function recordLink(manager: EntityManager, metadata: EntityMetadata, entity: ResolvedEntityOptions, action: 'create' | 'delete', entityId: unknown): Promise<void> {
    const image = linkImage(metadata, entityId);
    if (!image) return recordDraft(manager, metadata, entity, action, undefined, undefined, new Error('this version of TypeORM does not tell subscribers which link it wrote (0.3.18 and later do)'));
    return action === 'create' ? recordDraft(manager, metadata, entity, action, undefined, image) : recordDraft(manager, metadata, entity, action, image, undefined);
  }

  /** The `delete` of each link the database deleted with a row; for a junction whose links could not be read, one partial entry. */
  async function recordCascadedLinks(manager: EntityManager, found: CascadedLinks): Promise<void> {
    await Promise.all([
      ...found.links.map(({ junction, row }) => recordDraft(manager, junction, optionsFor(junction)!, 'delete', row.image, undefined)),
      ...found.failed.map(({ junction, error }) => recordDraft(manager, junction, optionsFor(junction)!, 'delete', undefined, undefined, error)),
    ]);
  }

  async function recordStateChange(event: SoftRemoveEvent<Row> | RecoverEvent<Row>, action: CapturedAction): Promise<void> {
    const entity = optionsFor(event.metadata);
    if (!entity) return;
    if (!event.databaseEntity) return recordWriteStatement(event.manager, event.metadata, entity, action);
    const before = await beforeImageOf(event.metadata, event.databaseEntity);
    const read = await loadRow(event.manager, event.metadata, before.image);
    const after = read.ok && read.value ? read.value.image : columnValues(event.metadata, event.entity ?? {}, before.image);
    return recordDraft(event.manager, event.metadata, entity, action, before.image, after, before.partial ?? (read.ok ? undefined : read.error));
  }

  /** An UPDATE, DELETE, soft delete or restore statement: one entry per row its criteria matched. */
  async function recordWriteStatement(manager: EntityManager, metadata: EntityMetadata, entity: ResolvedEntityOptions, action: CapturedAction, values?: Row): Promise<void> {
    const current = currentBuilderScope(metadata);
    const before = current ? await (current.shared.get('before') as Promise<Outcome<ReadRow[]>> | undefined) : undefined;
    if (!before?.ok) {
      const reason = before ? before.error : new Error('the rows of this write could not be known');
      warn({ resource: entity.resource, action, message: describe(reason), cause: reason });
      const data = values ? (sanitize(values, entity) as JsonValue) : null;
      return record(manager, [{ ...contextFields(entity, currentAuditContext(), true), resource: entity.resource, action, resourceId: null, data }]);
    }
    if (before.value.length === 0) return;
    let after = new Map<string, ReadRow>();
    let partial: unknown;
    if (action !== 'delete') {
      const reloaded = await attempt(manager, () => readByKeys(manager, metadata, before.value.map((row) => rawKeyOf(metadata.primaryColumns, row.raw))));
      if (reloaded.ok) after = byKey(metadata.primaryColumns, reloaded.value);
      else partial = reloaded.error;
    }
    let lost = 0;
    const drafts = before.value.map((row) => {
      if (action === 'delete') return safeDraft(entity, metadata, action, row.image, undefined);
      const next = after.get(keyString(metadata.primaryColumns, row.raw))?.image;
      if (!next && partial === undefined) lost++; // its key changed, most likely: the entry says what is known
      return safeDraft(entity, metadata, action, row.image, next, next ? partial : (partial ?? true));
    });
    if (partial !== undefined) warn({ resource: entity.resource, action, message: describe(partial), cause: partial });
    if (lost > 0) warn({ resource: entity.resource, action, message: `${lost} row(s) could not be read back by their primary key after the write` });
    await record(manager, drafts);
    const links = action === 'delete' ? await (current?.shared.get('links') as Promise<CascadedLinks> | undefined) : undefined;
    if (links) await recordCascadedLinks(manager, links);
  }

  /** An INSERT statement (plain, upsert or or-ignore): one entry per row it stored or changed. */
  async function recordInsertStatement(manager: EntityManager, metadata: EntityMetadata, entity: ResolvedEntityOptions, current: BuilderScope): Promise<void> {
    const sets = valueSets(current);
    const before = overwrites(current) ? await (current.shared.get('before') as Promise<Outcome<ReadRow[]>>) : ({ ok: true, value: [] } as Outcome<ReadRow[]>);
    const given = ((await (current.shared.get('keys') as Promise<KeySet[]> | undefined)) ?? []) as KeySet[];
    // The rows the value sets name now (ids generated by the insert), and those they named before the write.
    const after = await attempt(manager, () => readByKeySets(manager, metadata, [...insertTargetKeys(manager, metadata, current), ...given]));
    if (!after.ok || !before.ok) {
      const reason = after.ok ? (before as { error: unknown }).error : after.error;
      warn({ resource: entity.resource, action: 'create', message: describe(reason), cause: reason });
      return record(
        manager,
        sets.map((set) => {
          const image = columnValues(metadata, set);
          return { ...contextFields(entity, currentAuditContext(), true), resource: entity.resource, action: 'create', resourceId: recordId(metadata, image, entity), data: sanitize(image, entity) };
        }),
      );
    }
    const previous = byKey(metadata.primaryColumns, before.value);
    const drafts: Array<AuditEntryDraft | null> = [];
    const found = new Set<string>();
    for (const row of after.value) {
      const key = keyString(metadata.primaryColumns, row.raw);
      found.add(key);
      const old = previous.get(key);
      drafts.push(safeDraft(entity, metadata, old ? 'update' : 'create', old?.image, row.image));
    }
    // A value set that names no row: no key came back for it (and, for an upsert or or-ignore insert, it has
    // no unique key either), or a plain insert whose row is not there to be read.
    const keySets = insertKeySets(metadata, current);
    const unseen = sets.filter((set) => {
      const primary = keyOf(manager, metadata.primaryColumns, set);
      if (!overwrites(current)) return !primary || !found.has(keyString(metadata.primaryColumns, primary));
      return keySets.every((columns) => !keyOf(manager, columns, set));
    });
    if (unseen.length > 0) {
      warn({ resource: entity.resource, action: 'create', message: `${unseen.length} inserted row(s) could not be read back by a key` });
      for (const set of unseen) drafts.push(safeDraft(entity, metadata, 'create', undefined, columnValues(metadata, set), true));
    }
    return record(manager, drafts);
  }

  /** The entry for one row, or `null` for a change that changes nothing once ignored fields are left out. */
  function draft(
    entity: ResolvedEntityOptions,
    metadata: EntityMetadata,
    action: CapturedAction,
    before: Image | undefined,
    after: Image | undefined,
    partial?: unknown,
    id?: string | null,
    context = currentAuditContext(),
  ): AuditEntryDraft | null {
    const previousData = before ? (sanitize(before, entity) as JsonObject) : null;
    const data = after ? (sanitize(after, entity) as JsonObject) : null;
    let redactedChanges: string[] = [];
    if (before && after) {
      // Change detection compares unredacted values (never stored), so a changed secret still shows as changed.
      const plain = unredacted(entity);
      const a = sanitize(before, plain);
      const b = sanitize(after, plain);
      if (!isJsonObject(a) || !isJsonObject(b)) return null;
      const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((key) => !isDeepStrictEqual(a[key] ?? null, b[key] ?? null));
      if (changed.length === 0) return null;
      redactedChanges = changed.filter((key) => isDeepStrictEqual(previousData?.[key] ?? null, data?.[key] ?? null));
    }
    // Written out rather than spread from contextFields(): this runs once per captured row (see writer.ts on spreads).
    return {
      resource: entity.resource,
      resourceId: id !== undefined ? id : (recordId(metadata, after, entity) ?? recordId(metadata, before, entity)),
      action,
      data,
      previousData,
      redactedChanges,
      author: context?.author ?? null,
      ip: context?.ip ?? null,
      userAgent: context?.userAgent ?? null,
      tenantId: context?.tenantId,
      meta: partial !== undefined ? partialMeta(entity) : sanitizeMeta(entity, context?.meta),
    };
  }

  /** Who, where and why, fixed when the change is seen (entries may be written a moment later, in a batch). */
  function contextFields(entity: ResolvedEntityOptions, context: AuditContext | undefined, partial = false) {
    return {
      author: context?.author ?? null,
      ip: context?.ip ?? null,
      userAgent: context?.userAgent ?? null,
      tenantId: context?.tenantId,
      meta: partial ? partialMeta(entity) : sanitizeMeta(entity, context?.meta),
    };
  }

  function partialMeta(entity: ResolvedEntityOptions): JsonValue {
    const meta = sanitizeMeta(entity, currentAuditContext()?.meta);
    return { ...(isJsonObject(meta) ? meta : {}), ...PARTIAL_CAPTURE };
  }

  /** Queues the entry of one `save()`/`remove()` subject; the round's entries are built and written together. */
  function recordDraft(manager: EntityManager, metadata: EntityMetadata, entity: ResolvedEntityOptions, action: CapturedAction, before: Image | undefined, after: Image | undefined, partial?: unknown, id?: string | null): Promise<void> {
    if (partial !== undefined) warn({ resource: entity.resource, action, message: describe(partial), cause: partial });
    const context = currentAuditContext();
    return roundOf(manager).add(() => safeDraft(entity, metadata, action, before, after, partial, id, context));
  }

  /** `draft`, and for a value nobody foresaw (a getter that throws, say) the change still recorded, as partial: never an error for the app. */
  function safeDraft(...args: Parameters<typeof draft>): AuditEntryDraft | null {
    try {
      return draft(...args);
    } catch (error) {
      const [entity, metadata, action, before, after, , id, context = currentAuditContext()] = args;
      warn({ resource: entity.resource, action, message: describe(error), cause: error });
      let resourceId: string | null = id ?? null;
      try {
        resourceId ??= recordId(metadata, after ?? before, entity);
      } catch {
        // The key itself cannot be read: the entry says so by having none.
      }
      return { ...contextFields(entity, context, true), resource: entity.resource, action, resourceId };
    }
  }

  return AuditSubscriber;
}

function sanitizeMeta(entity: ResolvedEntityOptions, meta: JsonValue | null | undefined): JsonValue | null {
  return meta === null || meta === undefined ? null : sanitize(meta, { ...entity, isIgnored: () => false });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function attempt<T>(manager: EntityManager, read: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (error) {
    return { ok: false, error };
  }
}

function valueSets(current: BuilderScope): Row[] {
  const set = internals(current.builder).valuesSet;
  return Array.isArray(set) ? set : set ? [set] : [];
}

/** An upsert or an insert that ignores conflicts: rows it touches may exist already. */
function overwrites(current: BuilderScope): boolean {
  const map = internals(current.builder);
  return map.onUpdate !== undefined || !!map.onIgnore;
}

/** The key columns an upsert conflicts on, by database name or property path. */
function conflictColumns(metadata: EntityMetadata, current: BuilderScope): ColumnMetadata[] {
  const conflict = internals(current.builder).onUpdate?.conflict;
  const names = conflict === undefined ? [] : Array.isArray(conflict) ? conflict : [conflict];
  return metadata.columns.filter((c) => names.includes(c.databaseName) || names.includes(c.propertyPath));
}

/**
 * The keys that name the rows of an insert statement: the primary key and, for an upsert or an or-ignore
 * insert, every unique key as well (its conflict may be on any of them, and the ids a driver reports for such
 * a statement need not match its value sets: PostgreSQL returns only the rows it inserted).
 */
function insertKeySets(metadata: EntityMetadata, current: BuilderScope): ColumnMetadata[][] {
  const sets = [metadata.primaryColumns];
  if (overwrites(current)) {
    sets.push(conflictColumns(metadata, current));
    for (const unique of metadata.uniques) sets.push(unique.columns);
    for (const index of metadata.indices) if (index.isUnique && !index.where) sets.push(index.columns);
  }
  const seen = new Set<string>();
  return sets.filter((columns) => {
    const id = columns.map((c) => c.databaseName).sort().join('\u0000');
    if (columns.length === 0 || seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Keys of one key set (see `insertKeySets`), in database form. */
type KeySet = { columns: ColumnMetadata[]; keys: Row[] };

/** The keys an insert statement's value sets hold now, by each of its key sets (see `insertKeySets`). */
function insertTargetKeys(manager: EntityManager, metadata: EntityMetadata, current: BuilderScope): KeySet[] {
  const sets = valueSets(current);
  return insertKeySets(metadata, current).map((columns) => ({ columns, keys: sets.map((set) => keyOf(manager, columns, set)).filter((key): key is Row => key !== undefined) }));
}

/** The rows those keys name, each once. */
async function readByKeySets(manager: EntityManager, metadata: EntityMetadata, keySets: KeySet[]): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  for (const { columns, keys } of keySets) rows.push(...(await readByKeys(manager, metadata, keys, columns)));
  return [...byKey(metadata.primaryColumns, rows).values()];
}

function byKey(columns: ColumnMetadata[], rows: ReadRow[]): Map<string, ReadRow> {
  return new Map(rows.map((row) => [keyString(columns, row.raw), row]));
}

/**
 * The entries of one round of hooks. TypeORM announces a `save()` of many entities as one synchronous loop
 * over their subjects and then waits for all the hooks, so entries queued in that loop (and in the promise
 * jobs that follow it) are written once the loop is over: one multi-row insert per 500 entries instead of one
 * insert per entry. Entries are built chunk by chunk at that moment, so a save of 10,000 entities does not
 * hold 10,000 finished entries in memory at once. (DataLoader schedules its batches the same way; it is used
 * for the reads, but a promise per entry is all the entries need not.)
 */
class Round {
  /** Queued entries by the transaction (and savepoint) they were seen in; none for a write outside one. */
  private batches: Array<{ transaction: TransactionToken | undefined; queued: Array<() => AuditEntryDraft | null> }> = [];
  private written: Promise<void> | undefined;

  constructor(private readonly manager: EntityManager) {}

  add(build: () => AuditEntryDraft | null): Promise<void> {
    // On SQLite one runner serves every transaction: a round may still hold changes of a transaction that
    // was rolled back when the next one's arrive, and each must stay with its own.
    const transaction = currentTransaction(this.manager.queryRunner);
    let last = this.batches.at(-1);
    if (!last || last.transaction?.state !== transaction?.state || last.transaction?.depth !== transaction?.depth) this.batches.push((last = { transaction, queued: [] }));
    last.queued.push(build);
    this.written ??= Promise.resolve()
      .then(() => new Promise<void>((resolve) => process.nextTick(resolve)))
      .then(() => this.flush());
    return this.written;
  }

  /**
   * Builds the round's entries (now: the images are of this moment). Inside a transaction they are kept for
   * its commit (see `deferDrafts`), or dropped if it was rolled back meanwhile; outside one they are written.
   */
  private async flush(): Promise<void> {
    const batches = this.batches;
    this.batches = [];
    this.written = undefined;
    for (const { transaction, queued } of batches) {
      for (let start = 0; start < queued.length; start += ENTRIES_PER_WRITE) {
        const drafts: AuditEntryDraft[] = [];
        for (let i = start; i < Math.min(start + ENTRIES_PER_WRITE, queued.length); i++) {
          const entry = queued[i]!();
          if (entry) drafts.push(entry);
        }
        if (drafts.length === 0) continue;
        if (!transaction) await writeAuditEntries(this.manager, drafts);
        else if (!isOpen(this.manager.queryRunner!, transaction)) break;
        else if (!writesAtCommit(this.manager)) await writeAuditEntries(this.manager, drafts);
        else deferDrafts(this.manager.queryRunner!, transaction, drafts);
      }
    }
  }
}

/**
 * Where entries wait for the commit: on databases with row locks (PostgreSQL, MySQL), where claiming the
 * tenant's place in the chain at the first change would hold a lock across the app's own work. On SQLite the
 * app's transaction holds the only write lock from its first write anyway, and writing as the changes are
 * seen keeps a large save from holding every finished entry in memory until its commit.
 */
function writesAtCommit(manager: EntityManager): boolean {
  return dialectOf(manager.connection) !== 'sqlite';
}

/** Writes the transaction's captured entries, in its own transaction, just before the outermost commit. */
async function writeBeforeCommit(manager: EntityManager, runner: QueryRunner): Promise<void> {
  // Tenant by tenant (a stable sort keeps each tenant's entries in the order they were seen): written in
  // several batches, entries of several tenants then claim the tenants' locks in one order in every
  // transaction, so two transactions cannot deadlock on them.
  const fallback = currentAuditContext()?.tenantId ?? DEFAULT_TENANT; // as the writer resolves it
  const tenantOf = (draft: AuditEntryDraft) => draft.tenantId ?? fallback;
  const drafts = draftsToCommit<AuditEntryDraft>(runner).sort((a, b) => (tenantOf(a) < tenantOf(b) ? -1 : tenantOf(a) > tenantOf(b) ? 1 : 0));
  for (let start = 0; start < drafts.length; start += ENTRIES_PER_WRITE) await writeAuditEntries(manager, drafts.slice(start, start + ENTRIES_PER_WRITE));
}
const ENTRIES_PER_WRITE = 500;

/**
 * Per query runner (one per transaction, or TypeORM's one shared runner on SQLite). Neither holds anything
 * about a transaction once its round is written: the round empties itself, DataLoader (`cache: false`)
 * forgets each batch once it is dispatched.
 */
interface RunnerBatches {
  round: Round;
  rows: Map<EntityMetadata, DataLoader<Row, ReadRow | undefined>>;
}
const batches = new WeakMap<QueryRunner | EntityManager, RunnerBatches>();

function batchesFor(manager: EntityManager): RunnerBatches {
  const owner = manager.queryRunner ?? manager;
  let found = batches.get(owner);
  if (!found) {
    found = { round: new Round(manager), rows: new Map() };
    batches.set(owner, found);
  }
  return found;
}

function roundOf(manager: EntityManager): Round {
  return batchesFor(manager).round;
}

/** A row by the primary key in `image`, read together with every other row asked for in the same round. */
async function loadRow(manager: EntityManager, metadata: EntityMetadata, image: Image): Promise<Outcome<ReadRow | undefined>> {
  const key: Row = {};
  for (const column of metadata.primaryColumns) {
    const value: unknown = image[column.propertyPath];
    if (value === undefined || value === null) return { ok: false, error: new Error('the row has no primary key value to read it by') };
    key[column.databaseName] = manager.connection.driver.preparePersistentValue(value, column);
  }
  const rows = batchesFor(manager).rows;
  let loader = rows.get(metadata);
  if (!loader) {
    loader = new DataLoader<Row, ReadRow | undefined>(
      async (keys) => {
        const found = byKey(metadata.primaryColumns, await readByKeys(manager, metadata, [...keys]));
        return keys.map((k) => found.get(keyString(metadata.primaryColumns, k)));
      },
      { cache: false },
    );
    rows.set(metadata, loader);
  }
  try {
    return { ok: true, value: await loader.load(key) };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Entries built already (a statement's): queued in the round like any other, so that they keep their order. */
async function record(manager: EntityManager, drafts: Array<AuditEntryDraft | null>): Promise<void> {
  const round = roundOf(manager);
  const entries = drafts.filter((d): d is AuditEntryDraft => d !== null);
  if (entries.length > 0) await Promise.all(entries.map((entry) => round.add(() => entry)));
}

/** An entity's options with nothing redacted, for comparing the values before and after a change; made once per entity. */
const unredactedOptions = new WeakMap<ResolvedEntityOptions, ResolvedEntityOptions>();
function unredacted(entity: ResolvedEntityOptions): ResolvedEntityOptions {
  let plain = unredactedOptions.get(entity);
  if (!plain) unredactedOptions.set(entity, (plain = { ...entity, isRedacted: () => false }));
  return plain;
}

/** Audits every entity with the default settings; use `createAuditSubscriber(options)` to configure. */
export const AuditSubscriber: AuditSubscriberClass = createAuditSubscriber();
