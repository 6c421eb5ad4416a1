import { isDeepStrictEqual } from 'node:util';
import {
  EventSubscriber,
  type EntityManager,
  type EntityMetadata,
  type EntitySubscriberInterface,
  type InsertEvent,
  type ObjectLiteral,
  type RecoverEvent,
  type RemoveEvent,
  type SoftRemoveEvent,
  type UpdateEvent,
} from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { currentAuditContext } from './context.js';
import { currentBuilderScope, installCriteriaCapture, internals, reloadByIds, selectByBuilderCriteria, type BuilderScope } from './criteria-capture.js';
import { isJsonObject, type JsonObject } from '../shared/json.js';
import { resolveEntityOptions, type AuditCaptureOptions, type ResolvedEntityOptions } from './options.js';
import { columnValues, recordId, sanitize } from './snapshot.js';
import { writeAuditEntries, type AuditEntryDraft } from './writer.js';

export type CapturedAction = 'create' | 'update' | 'delete' | 'softDelete' | 'restore';

/** Marks entries written when TypeORM gave no way to know the affected rows (see README, "Capture"). */
export const PARTIAL_CAPTURE = { auditCapture: 'partial' } as const;

type Row = ObjectLiteral;

/**
 * Records every insert, update, remove, soft-remove and recover of every entity (except the audit log
 * itself) as an audit entry, written through the event's own EntityManager so that it commits or rolls
 * back with the change. Publishing waits for the commit (see publish.subscriber.ts).
 *
 * `save()`/`remove()` give the subscriber the entity and its database state. `update()`, `delete()`,
 * `softDelete()`, `restore()`, `insert()`, `upsert()` and query-builder writes do not; for those the
 * affected rows are selected by the builder's own criteria before the write and reloaded after it
 * (criteria-capture.ts), so every path yields one full entry per affected row.
 */
export function createAuditSubscriber(options: AuditCaptureOptions = {}) {
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
  const audited = (metadata: EntityMetadata) => optionsFor(metadata) !== undefined;

  @EventSubscriber()
  class AuditSubscriber implements EntitySubscriberInterface {
    constructor() {
      installCriteriaCapture(audited);
    }

    async beforeInsert(event: InsertEvent<Row>): Promise<void> {
      const scope = optionsFor(event.metadata) && currentBuilderScope(event.metadata);
      if (scope && isUpsert(scope) && !scope.before) scope.before = await selectUpsertTargets(event.manager, event.metadata, scope);
    }

    async afterInsert(event: InsertEvent<Row>): Promise<void> {
      const entity = optionsFor(event.metadata);
      if (!entity) return;
      const scope = currentBuilderScope(event.metadata);
      if (!scope) return record(event.manager, [draft(entity, event.metadata, 'create', undefined, columnValues(event.metadata, event.entity))]);
      // A builder insert knows only the values it was given: reload its rows, once for all of them, for
      // their stored state (TypeORM has merged the generated ids into every value set by now).
      scope.inserted ??= byRecordId(event.metadata, await reloadByIds(event.manager, event.metadata, valueSets(scope)));
      const after = scope.inserted.get(recordId(event.metadata, event.entity));
      if (isUpsert(scope)) {
        const stored = after ?? (await selectUpsertTargets(event.manager, event.metadata, scope, [event.entity]))[0];
        const before = stored && scope.before?.find((row) => sameRow(event.metadata, row, stored));
        return record(event.manager, [
          draft(entity, event.metadata, before ? 'update' : 'create', columnValuesOf(event.metadata, before), columnValues(event.metadata, stored ?? event.entity)),
        ]);
      }
      return record(event.manager, [draft(entity, event.metadata, 'create', undefined, columnValues(event.metadata, after ?? event.entity))]);
    }

    beforeUpdate(event: UpdateEvent<Row>) {
      return captureBefore(event.manager, event.metadata, event.databaseEntity);
    }

    async afterUpdate(event: UpdateEvent<Row>): Promise<void> {
      const entity = optionsFor(event.metadata);
      if (!entity) return;
      if (event.databaseEntity && event.entity) {
        const before = columnValues(event.metadata, event.databaseEntity);
        const after = columnValues(event.metadata, event.entity, event.databaseEntity);
        return record(event.manager, [draft(entity, event.metadata, 'update', before, after)]);
      }
      return recordScoped(event.manager, event.metadata, entity, 'update', event.entity);
    }

    beforeRemove(event: RemoveEvent<Row>) {
      return captureBefore(event.manager, event.metadata, event.databaseEntity);
    }

    async afterRemove(event: RemoveEvent<Row>): Promise<void> {
      const entity = optionsFor(event.metadata);
      if (!entity) return;
      if (event.databaseEntity) {
        const before = columnValues(event.metadata, event.databaseEntity);
        const id = recordId(event.metadata, before) ?? (event.entityId === undefined ? null : recordId(event.metadata, event.entityId as Row));
        return record(event.manager, [{ ...draft(entity, event.metadata, 'delete', before, undefined)!, resourceId: id }]);
      }
      return recordScoped(event.manager, event.metadata, entity, 'delete');
    }

    beforeSoftRemove(event: SoftRemoveEvent<Row>) {
      return captureBefore(event.manager, event.metadata, event.databaseEntity);
    }

    afterSoftRemove(event: SoftRemoveEvent<Row>) {
      return recordStateChange(event, 'softDelete');
    }

    beforeRecover(event: RecoverEvent<Row>) {
      return captureBefore(event.manager, event.metadata, event.databaseEntity);
    }

    afterRecover(event: RecoverEvent<Row>) {
      return recordStateChange(event, 'restore');
    }
  }

  /** Without a database entity, the write came from a builder: select its rows now, before they change. */
  async function captureBefore(manager: EntityManager, metadata: EntityMetadata, databaseEntity: Row | undefined): Promise<void> {
    if (databaseEntity || !optionsFor(metadata)) return;
    const scope = currentBuilderScope(metadata);
    if (scope && !scope.before) scope.before = await selectByBuilderCriteria(manager, metadata, scope.builder);
  }

  /** One entry per row a builder touched, or, where the rows could not be known, one marked partial entry. */
  async function recordScoped(manager: EntityManager, metadata: EntityMetadata, entity: ResolvedEntityOptions, action: CapturedAction, values?: Row): Promise<void> {
    const before = currentBuilderScope(metadata)?.before;
    if (!before) {
      const data = values ? sanitize(values, entity) : null;
      return record(manager, [{ resource: entity.resource, action, resourceId: null, data, meta: { ...currentAuditContext()?.meta, ...PARTIAL_CAPTURE } }]);
    }
    const after = byRecordId(metadata, action === 'delete' ? [] : await reloadByIds(manager, metadata, before));
    return record(
      manager,
      before.map((row) => draft(entity, metadata, action, columnValues(metadata, row), columnValuesOf(metadata, after.get(recordId(metadata, row))))),
    );
  }

  async function recordStateChange(event: SoftRemoveEvent<Row> | RecoverEvent<Row>, action: CapturedAction): Promise<void> {
    const entity = optionsFor(event.metadata);
    if (!entity) return;
    if (!event.databaseEntity) return recordScoped(event.manager, event.metadata, entity, action);
    const [after] = await reloadByIds(event.manager, event.metadata, [event.databaseEntity]);
    return record(event.manager, [draft(entity, event.metadata, action, columnValues(event.metadata, event.databaseEntity), after && columnValues(event.metadata, after))]);
  }

  return AuditSubscriber;
}

function columnValuesOf(metadata: EntityMetadata, row: Row | undefined): Row | undefined {
  return row && columnValues(metadata, row);
}

/** Rows keyed by record id, so that bulk writes pair before and after images without a quadratic search. */
function byRecordId(metadata: EntityMetadata, rows: Row[]): Map<string | null, Row> {
  return new Map(rows.map((row) => [recordId(metadata, row), row]));
}

function valueSets(scope: BuilderScope): Row[] {
  const set = internals(scope.builder).valuesSet;
  return Array.isArray(set) ? set : set ? [set] : [];
}

function sameRow(metadata: EntityMetadata, a: Row, b: Row): boolean {
  return recordId(metadata, a) === recordId(metadata, b);
}

function isUpsert(scope: BuilderScope): boolean {
  return internals(scope.builder).onUpdate !== undefined;
}

/** The rows an upsert may overwrite: those matching its conflict columns (or primary key) for each value set. */
async function selectUpsertTargets(manager: EntityManager, metadata: EntityMetadata, scope: BuilderScope, only?: Row[]): Promise<Row[]> {
  const map = internals(scope.builder);
  const sets = only ?? valueSets(scope);
  const conflict = map.onUpdate?.conflict;
  const names = conflict === undefined ? [] : Array.isArray(conflict) ? conflict : [conflict];
  const columns = names.length > 0 ? metadata.columns.filter((c) => names.includes(c.databaseName) || names.includes(c.propertyPath)) : metadata.primaryColumns;
  const wheres = sets
    .map((set) => Object.fromEntries(columns.map((c) => [c.propertyPath, c.getEntityValue(set)])))
    .filter((where) => Object.values(where).every((v) => v !== undefined && v !== null));
  if (wheres.length === 0) return [];
  return manager.getRepository(metadata.target).find({ where: wheres, withDeleted: true });
}

/**
 * The entry for one row, or `null` for an update that changes nothing once ignored fields are left out.
 * Change detection compares unredacted values (never stored), so a changed secret still shows as changed.
 */
function draft(entity: ResolvedEntityOptions, metadata: EntityMetadata, action: CapturedAction, before: Row | undefined, after: Row | undefined): AuditEntryDraft | null {
  const previousData = before ? (sanitize(before, entity) as JsonObject) : null;
  const data = after ? (sanitize(after, entity) as JsonObject) : null;
  let redactedChanges: string[] = [];
  if (action === 'update' && before && after) {
    const plain = { ...entity, isRedacted: () => false };
    const a = sanitize(before, plain);
    const b = sanitize(after, plain);
    if (!isJsonObject(a) || !isJsonObject(b)) return null;
    const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((key) => !isDeepStrictEqual(a[key] ?? null, b[key] ?? null));
    if (changed.length === 0) return null;
    redactedChanges = changed.filter((key) => isDeepStrictEqual(previousData?.[key] ?? null, data?.[key] ?? null));
  }
  return {
    resource: entity.resource,
    resourceId: recordId(metadata, after ?? {}, before ?? {}),
    action,
    data,
    previousData,
    redactedChanges,
  };
}

async function record(manager: EntityManager, drafts: Array<AuditEntryDraft | null>): Promise<void> {
  const entries = drafts.filter((d): d is AuditEntryDraft => d !== null);
  if (entries.length > 0) await writeAuditEntries(manager, entries);
}

/** Audits every entity with the default settings; use `createAuditSubscriber(options)` to configure. */
export const AuditSubscriber = createAuditSubscriber();
