import type { EntityManager } from 'typeorm';
import { AuditLog, COLUMN_LENGTH } from '../db/entities/audit-log.entity.js';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import { currentAuditContext, type AuditActor, type AuditContext } from './context.js';
import type { JsonValue } from '../shared/json.js';
import { dialectOf, exec, runInTransaction, type Dialect, type Work } from '../db/sql.js';
import type { ChainRow } from '../shared/chain/canonical.js';
import { linkEntries, type UnlinkedEntry } from '../shared/chain/link.js';
import { personalPathsColumn } from '../shared/chain/rows.js';
import { claimHeads, saveHeads } from './chain/head.js';
import { chainSettings, type ChainSettings } from './chain/settings.js';
import { ensureTransactionTracking, publishAfterCommit } from './publish.subscriber.js';
import { transactionIdFor } from './transaction-state.js';
import { claimTenants, setPrecedingPosition, type LogPoint } from '../db/tenant-order.js';
import { rollupIncrements } from '../db/activity-rollups.js';

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
  /**
   * JSON pointers of values inside data, previousData or meta that are personal whatever their names, and
   * may be someone other than the author's (the filter of a read of the log): hashed so that they can be
   * erased on their own (hash version 2).
   */
  personal?: readonly string[];
}

/** The pointers a draft declared personal, by the row made from it (not a column of the entity). */
const declaredPersonal = new WeakMap<AuditLog, readonly string[]>();

const lastCreatedAt = new WeakMap<object, number>();

/**
 * createdAt never goes backwards (a clock step back would otherwise break the (createdAt, id) order that
 * cursors and the resumable stream rely on). Kept per database (its DataSource or connection).
 */
export function nextTimestamp(database: object): number {
  const now = Math.max(Date.now(), lastCreatedAt.get(database) ?? 0);
  lastCreatedAt.set(database, now);
  return now;
}

/**
 * Values that come from request headers (or a peer address) are cut to their column's size: SQLite would
 * store a 15,000-character User-Agent as it is, PostgreSQL would fail the whole write (and with it the app's
 * own change). Cut by code points (what a varchar(n) counts), so a surrogate pair is never split in half.
 */
function fitToColumn(value: string | null, length: number): string | null {
  if (value === null || value.length <= length) return value;
  return Array.from(value).slice(0, length).join('');
}

/** The rows for `drafts`, filled in from the acting context where a draft leaves a fact out. */
export function entryRows(drafts: AuditEntryDraft[], shared: { transactionId: string; createdAt: Date; context?: AuditContext }): AuditLog[] {
  const { context } = shared;
  return drafts.map((draft) => {
    const author = draft.author !== undefined ? draft.author : (context?.author ?? null);
    // Set one by one on the entity rather than Object.assign from a literal: one object per entry, not two.
    const row = new AuditLog();
    row.tenantId = draft.tenantId ?? context?.tenantId ?? DEFAULT_TENANT;
    row.resource = draft.resource;
    row.resourceId = draft.resourceId ?? null;
    row.action = draft.action;
    row.name = draft.name ?? null;
    row.authorId = author?.id ?? null;
    row.authorName = author?.name ?? null;
    row.authorType = author?.type ?? null;
    row.data = draft.data ?? null;
    row.previousData = draft.previousData ?? null;
    row.meta = draft.meta !== undefined ? draft.meta : (context?.meta ?? null);
    row.ip = fitToColumn(draft.ip !== undefined ? draft.ip : (context?.ip ?? null), COLUMN_LENGTH.ip);
    row.userAgent = fitToColumn(draft.userAgent !== undefined ? draft.userAgent : (context?.userAgent ?? null), COLUMN_LENGTH.userAgent);
    row.transactionId = draft.transactionId ?? shared.transactionId;
    row.idempotencyKey = draft.idempotencyKey ?? null;
    row.redactedChanges = draft.redactedChanges?.length ? draft.redactedChanges : null;
    row.recordedBy = draft.recordedBy ?? null;
    row.createdAt = shared.createdAt;
    if (draft.personal?.length) declaredPersonal.set(row, draft.personal);
    return row;
  });
}

const tails = new WeakMap<object, Promise<unknown>>();

/**
 * One append at a time per connection. TypeORM runs the subscriber hooks of one statement concurrently,
 * and two appends interleaved on one connection would both claim the same chain head. SQLite has one
 * connection per DataSource; elsewhere each transaction has its own query runner, and the database's row
 * lock on the head orders them.
 */
function oneAtATime<T>(manager: EntityManager, work: () => Promise<T>): Promise<T> {
  const key: object = dialectOf(manager.connection) === 'sqlite' || !manager.queryRunner ? manager.connection : manager.queryRunner;
  const result = (tails.get(key) ?? Promise.resolve()).then(work, work);
  tails.set(key, result.catch(() => undefined));
  return result;
}

/**
 * Writes entries through `manager`, so they commit or roll back with the caller's transaction, and
 * hands them to the after-commit publisher. Outside a transaction (a query-builder write with none) it
 * opens one, so that claiming the chain head, inserting and moving the head are never split.
 */
export async function writeAuditEntries(manager: EntityManager, drafts: AuditEntryDraft[]): Promise<AuditLog[]> {
  if (drafts.length === 0) return [];
  const connection = manager.connection;
  ensureTransactionTracking(connection);
  const context = currentAuditContext();
  const work = (transactional: EntityManager) => {
    const rows = entryRows(drafts, { transactionId: transactionIdFor(transactional.queryRunner), createdAt: new Date(nextTimestamp(connection)), context });
    return runInTransaction(transactional, insertEntries(dialectOf(connection), rows, chainSettings(connection))).then(() => {
      publishAfterCommit(connection, transactional.queryRunner, rows);
      return rows;
    });
  };
  return oneAtATime(manager, () => (manager.queryRunner?.isTransactionActive ? work(manager) : manager.transaction(work)));
}

/** A row as it is inserted: the chained facts (JSON columns as stored text); the label comes from the entry. */
type StoredRow = ChainRow;

/** Columns in insert order, with how each is bound. */
const COLUMNS: Array<[string, (row: StoredRow, entry: AuditLog) => unknown]> = [
  ['tenant_id', (r) => r.tenantId],
  ['resource', (r) => r.resource],
  ['resource_id', (r) => r.resourceId],
  ['action', (r) => r.action],
  ['name', (_, entry) => entry.name],
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
const statements = new Map<string, string>();

/** The INSERT for `rowCount` entries, built once per size (a bulk write reuses the same text, and driver caches key on it). */
function insertStatement(dialect: Dialect, rowCount: number): string {
  const key = `${dialect}:${rowCount}`;
  let sql = statements.get(key);
  if (!sql) {
    const quote = (name: string) => (dialect === 'mysql' ? `\`${name}\`` : `"${name}"`);
    const tuple = `(${COLUMNS.map(() => '?').join(', ')})`;
    sql = `INSERT INTO ${quote('audit_log')} (${COLUMNS.map(([name]) => quote(name)).join(', ')}) VALUES ${Array.from({ length: rowCount }, () => tuple).join(', ')}`;
    if (statements.size >= 32) statements.clear(); // sizes other than the full chunk are rare; keep the memo small
    statements.set(key, sql);
  }
  return sql;
}

/**
 * Stores the rows and sets their ids and their place in their tenants' chains (README, "Evidence"):
 * claim each tenant's chain head (a write, so concurrent writers queue behind it), link the entries onto
 * it, insert them, move the head — all inside the caller's transaction, so a rollback leaves no hole.
 *
 * The insert is one plain multi-row INSERT per 500 entries. Audit rows ride on every audited save, so this
 * path is hot: TypeORM's insert builder (events, entity merging) cost more than the insert itself
 * (measured: audited saves at 0.2–0.5× the unaudited rate with it). SQLite hands back the last id and
 * MySQL the first (the ids of one statement are consecutive); PostgreSQL returns them.
 */
export function* insertEntries(dialect: Dialect, rows: AuditLog[], chain: ChainSettings, options: { keepTimes?: boolean } = {}): Work<void> {
  // PostgreSQL: one writer per tenant from here to the commit, and the time taken under that lock from the
  // database's clock, before anything is hashed (db/tenant-order.ts; README, "Order on PostgreSQL").
  // `keepTimes` (imports, test data with chosen times) keeps the rows' own times: their order is theirs.
  const claims = yield* claimTenants(dialect, rows.map((row) => row.tenantId));
  if (!options.keepTimes) {
    for (const row of rows) {
      const claim = claims.get(row.tenantId);
      if (claim) row.createdAt = new Date(Math.max(claim.now, claim.head?.createdAt ?? 0));
    }
  }
  let stored: StoredRow[];
  if (chain.chained) {
    const heads = yield* claimHeads(dialect, [...new Set(rows.map((row) => row.tenantId))]);
    const linked = linkEntries(heads, rows.map(unlinked), chain.personal);
    stored = linked.rows;
    yield* insertStored(dialect, rows, stored);
    yield* saveHeads(dialect, linked.heads);
    linked.rows.forEach((row, i) => setChainFields(rows[i]!, row));
  } else {
    stored = rows.map(unchained);
    yield* insertStored(dialect, rows, stored);
  }
  // SQLite's rollups are counted here, once per distinct key (migration 1763800000330); PostgreSQL's by its triggers.
  if (dialect === 'sqlite') {
    for (const increment of rollupIncrements(rows)) yield* exec(increment.sql, increment.params);
  }
  // Each entry learns the position it follows in its tenant's log: a live relay that delivered exactly
  // that one delivers this one without asking the database (pubsub/relay.ts).
  if (claims.size > 0) {
    const last = new Map<string, LogPoint | null>([...claims].map(([tenant, claim]) => [tenant, claim.head]));
    for (const row of rows) {
      setPrecedingPosition(row, last.get(row.tenantId) ?? null);
      last.set(row.tenantId, { createdAt: row.createdAt.getTime(), id: row.id });
    }
  }
}

function* insertStored(dialect: Dialect, rows: AuditLog[], stored: StoredRow[]): Work<void> {
  for (let start = 0; start < stored.length; start += ROWS_PER_STATEMENT) {
    const chunk = stored.slice(start, start + ROWS_PER_STATEMENT);
    const params: unknown[] = [];
    chunk.forEach((row, i) => {
      for (const [, value] of COLUMNS) params.push(value(row, rows[start + i]!));
    });
    const sql = insertStatement(dialect, chunk.length);
    if (dialect === 'postgres') {
      const { rows: returned } = yield* exec<{ id: number | string }>(`${sql} RETURNING "id"`, params);
      returned.forEach((r, i) => (rows[start + i]!.id = Number(r.id)));
    } else {
      const { lastInsertId } = yield* exec(sql, params);
      const first = dialect === 'mysql' ? lastInsertId! : lastInsertId! - chunk.length + 1;
      chunk.forEach((_, i) => (rows[start + i]!.id = first + i));
    }
  }
}

function setChainFields(entry: AuditLog, row: ChainRow): void {
  entry.sequence = row.sequence;
  entry.hash = row.hash;
  entry.previousHash = row.previousHash;
  entry.hashVersion = row.hashVersion;
  entry.salt = row.salt;
  entry.personalPaths = row.personalPaths.length > 0 ? row.personalPaths : null;
  entry.erasedDigests = null;
}

/**
 * The entry as the chain links it. Written out field by field, here and below: a spread with overrides
 * (`{ ...row, data: … }`) makes a dictionary-mode object that cost ~10 µs per entry (measured).
 */
function unlinked(row: AuditLog): UnlinkedEntry {
  return {
    tenantId: row.tenantId,
    createdAt: row.createdAt.getTime(),
    resource: row.resource,
    resourceId: row.resourceId,
    action: row.action,
    authorId: row.authorId,
    authorName: row.authorName,
    authorType: row.authorType,
    data: row.data as JsonValue | null,
    previousData: row.previousData as JsonValue | null,
    meta: row.meta as JsonValue | null,
    ip: row.ip,
    userAgent: row.userAgent,
    transactionId: row.transactionId,
    idempotencyKey: row.idempotencyKey,
    redactedChanges: row.redactedChanges,
    recordedBy: row.recordedBy,
    declaredPersonal: declaredPersonal.get(row) ?? null,
  };
}

/** The benchmark's unchained variant: the row without a place in the chain. */
function unchained(row: AuditLog): StoredRow {
  const entry = unlinked(row);
  return {
    tenantId: entry.tenantId,
    createdAt: entry.createdAt,
    resource: entry.resource,
    resourceId: entry.resourceId,
    action: entry.action,
    authorId: entry.authorId,
    authorName: entry.authorName,
    authorType: entry.authorType,
    ip: entry.ip,
    userAgent: entry.userAgent,
    transactionId: entry.transactionId,
    idempotencyKey: entry.idempotencyKey,
    redactedChanges: entry.redactedChanges,
    recordedBy: entry.recordedBy,
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
