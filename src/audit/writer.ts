import type { DataSource, EntityManager, ObjectLiteral } from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { currentAuditContext, DEFAULT_TENANT, type AuditActor } from './context.js';
import type { JsonValue } from './json.js';
import { publishAfterCommit, transactionIdFor } from './publish.subscriber.js';

/** What a caller knows about an entry; the writer fills in time, transaction and context. */
export interface AuditEntryDraft {
  resource: string;
  action: string;
  resourceId?: string | null;
  name?: string | null;
  author?: AuditActor | null;
  data?: JsonValue | null;
  previousData?: JsonValue | null;
  meta?: JsonValue | null;
  ip?: string | null;
  userAgent?: string | null;
  tenantId?: string;
  idempotencyKey?: string | null;
  /** Redacted fields whose value changed (both sides are stored masked). */
  redactedChanges?: string[] | null;
}

const lastCreatedAt = new WeakMap<DataSource, number>();

/**
 * createdAt never goes backwards (a clock step back would otherwise break the (createdAt, id) order that
 * cursors and the resumable stream rely on).
 */
function nextTimestamp(dataSource: DataSource): number {
  const now = Math.max(Date.now(), lastCreatedAt.get(dataSource) ?? 0);
  lastCreatedAt.set(dataSource, now);
  return now;
}

/**
 * Writes entries through `manager`, so they commit or roll back with the caller's transaction, and
 * hands them to the after-commit publisher.
 */
export async function writeAuditEntries(manager: EntityManager, drafts: AuditEntryDraft[]): Promise<AuditLog[]> {
  if (drafts.length === 0) return [];
  const context = currentAuditContext();
  const runner = manager.queryRunner;
  const transactionId = transactionIdFor(runner);
  const createdAt = new Date(nextTimestamp(manager.connection));
  const rows = drafts.map((draft) => {
    const author = draft.author !== undefined ? draft.author : (context?.author ?? null);
    return Object.assign(new AuditLog(), {
      tenantId: draft.tenantId ?? context?.tenantId ?? DEFAULT_TENANT,
      resource: draft.resource,
      resourceId: draft.resourceId ?? null,
      action: draft.action,
      name: draft.name ?? null,
      authorId: author?.id ?? null,
      authorName: author?.name ?? null,
      authorType: author?.type ?? null,
      data: draft.data ?? null,
      previousData: draft.previousData ?? null,
      meta: draft.meta !== undefined ? draft.meta : (context?.meta ?? null),
      ip: draft.ip !== undefined ? draft.ip : (context?.ip ?? null),
      userAgent: draft.userAgent !== undefined ? draft.userAgent : (context?.userAgent ?? null),
      transactionId,
      idempotencyKey: draft.idempotencyKey ?? null,
      redactedChanges: draft.redactedChanges?.length ? draft.redactedChanges : null,
      createdAt,
    });
  });
  // Cast: TypeORM's deep-partial type recurses without end on the recursive JsonValue type.
  await manager.createQueryBuilder().insert().into(AuditLog).values(rows as ObjectLiteral[]).execute();
  publishAfterCommit(manager.connection, runner, rows);
  return rows;
}
