import type { DataSource, EntityManager } from 'typeorm';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import { currentAuditContext, type AuditActor } from './context.js';
import type { JsonValue } from '../shared/json.js';
import { publishAfterCommit, transactionIdFor } from './publish.subscriber.js';
import type { ChainRow } from '../shared/chain/canonical.js';
import { personalPathsColumn } from '../shared/chain/rows.js';
import { appendToChain } from './chain/append.js';
import { chainSettings } from './chain/settings.js';

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
  /** The principal that wrote the entry in someone else's name. */
  recordedBy?: string | null;
  /** Overrides the id shared by the transaction's entries (group commit gives each entry its own). */
  transactionId?: string;
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
      transactionId: draft.transactionId ?? transactionId,
      idempotencyKey: draft.idempotencyKey ?? null,
      redactedChanges: draft.redactedChanges?.length ? draft.redactedChanges : null,
      recordedBy: draft.recordedBy ?? null,
      createdAt,
    });
  });
  const settings = chainSettings(manager.connection);
  if (!settings.chained) {
    const ids = await insertRows(manager, rows.map(unchained));
    ids.forEach((id, i) => (rows[i]!.id = id));
  } else {
    // The chain (README, "Evidence"): sequence and hash assigned in the transaction that inserts the entries.
    const unlinked = rows.map((row) => ({ ...row, createdAt: row.createdAt.getTime() }));
    const linked = await appendToChain(manager, unlinked, settings.personal, async (m, chained) => {
      const ids = await insertRows(m, chained.map((c, i) => ({ ...c, name: rows[i]!.name })));
      ids.forEach((id, i) => (rows[i]!.id = id));
    });
    linked.forEach((link, i) => Object.assign(rows[i]!, chainFields(link)));
  }
  publishAfterCommit(manager.connection, runner, rows);
  return rows;
}

/** A row as it is inserted: the chained facts (JSON columns as stored text) and the label. */
type StoredRow = ChainRow & { name: string | null };

const chainFields = (row: ChainRow) => ({
  sequence: row.sequence,
  hash: row.hash,
  previousHash: row.previousHash,
  hashVersion: row.hashVersion,
  salt: row.salt,
  personalPaths: row.personalPaths.length > 0 ? row.personalPaths : null,
  erasedDigests: null,
});

/** The benchmark's unchained variant: today's row without a place in the chain. */
function unchained(row: AuditLog): StoredRow {
  return {
    ...row,
    createdAt: row.createdAt.getTime(),
    data: json(row.data),
    previousData: json(row.previousData),
    meta: json(row.meta),
    sequence: null as unknown as number,
    hash: null as unknown as string,
    previousHash: null as unknown as string,
    hashVersion: null as unknown as number,
    salt: null,
    personalPaths: [],
    erasedDigests: null,
  };
}

/** Columns in insert order, with how each is bound. */
const COLUMNS: Array<[string, (row: StoredRow) => unknown]> = [
  ['tenant_id', (r) => r.tenantId],
  ['resource', (r) => r.resource],
  ['resource_id', (r) => r.resourceId],
  ['action', (r) => r.action],
  ['name', (r) => r.name],
  ['author_id', (r) => r.authorId],
  ['author_name', (r) => r.authorName],
  ['author_type', (r) => r.authorType],
  ['data', (r) => r.data],
  ['previous_data', (r) => r.previousData],
  ['meta', (r) => r.meta],
  ['ip', (r) => r.ip],
  ['user_agent', (r) => r.userAgent],
  ['transaction_id', (r) => r.transactionId],
  ['idempotency_key', (r) => r.idempotencyKey],
  ['redacted_changes', (r) => json(r.redactedChanges)],
  ['recorded_by', (r) => r.recordedBy],
  ['created_at', (r) => r.createdAt],
  ['sequence', (r) => r.sequence],
  ['hash', (r) => r.hash],
  ['previous_hash', (r) => r.previousHash],
  ['hash_version', (r) => r.hashVersion],
  ['salt', (r) => r.salt],
  ['personal_paths', (r) => personalPathsColumn(r.personalPaths)],
];
const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
const ROWS_PER_STATEMENT = 500;
const SQLITE = new Set(['sqlite', 'better-sqlite3']);

/**
 * One plain multi-row INSERT per 500 entries. Audit rows ride on every audited save, so this path is hot:
 * TypeORM's insert builder (events, entity merging) cost more than the insert itself (measured: audited
 * saves at 0.2–0.5× the unaudited rate with it). Returns the ids, in order: SQLite hands back the last id
 * and MySQL the first (the ids of one statement are consecutive); PostgreSQL returns them.
 */
async function insertRows(manager: EntityManager, rows: StoredRow[]): Promise<number[]> {
  const type = manager.connection.options.type;
  const postgres = type === 'postgres';
  const quote = (name: string) => (SQLITE.has(type) || postgres ? `"${name}"` : manager.connection.driver.escape(name));
  const columnList = COLUMNS.map(([name]) => quote(name)).join(', ');
  const ids: number[] = [];
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(start, start + ROWS_PER_STATEMENT);
    const params: unknown[] = [];
    const tuples = chunk.map((row) => {
      const marks = COLUMNS.map(([, value]) => {
        params.push(value(row));
        return postgres ? `$${params.length}` : '?';
      });
      return `(${marks.join(', ')})`;
    });
    const sql = `INSERT INTO ${quote('audit_log')} (${columnList}) VALUES ${tuples.join(', ')}`;
    if (postgres) {
      const returned = (await manager.query(`${sql} RETURNING "id"`, params)) as Array<{ id: number | string }>;
      ids.push(...returned.map((r) => Number(r.id)));
    } else if (SQLITE.has(type)) {
      const lastId = Number(await manager.query(sql, params));
      chunk.forEach((_, i) => ids.push(lastId - chunk.length + 1 + i));
    } else {
      const result = (await manager.query(sql, params)) as { insertId?: number | string };
      chunk.forEach((_, i) => ids.push(Number(result.insertId) + i));
    }
  }
  return ids;
}
