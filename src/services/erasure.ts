import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { AuditActor } from '../audit/context.js';
import { chainSettings } from '../audit/chain/settings.js';
import { entryRows, insertEntries, nextTimestamp } from '../audit/writer.js';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import type { WalMaintenance } from '../db/store-types.js';
import { mergeSearchIndexStep, reindexEntries } from '../db/search-index.js';
import { truncateWal, withSecureDelete } from '../db/secure-delete.js';
import { exec, type Work } from '../db/sql.js';
import { canonicalJson } from '../shared/chain/canonical.js';
import { eraseRow, type ErasedColumns } from '../shared/chain/erase.js';
import { CHAIN_COLUMNS, chainRowFromDb, type RawChainRow } from '../shared/chain/rows.js';
import { badUserInput } from '../shared/errors.js';
import type { ServiceDeps } from './deps.js';
import { eraseInArchives } from './archive-erasure.js';
import { eraseOthersBatch, findOthers, othersEraser, type OthersKind, type OthersTarget, type RecordRef } from './erasure-others.js';

/** Entries erased per transaction: each is short, so writes of others go on between them. */
export const ERASURE_BATCH = 200;
const MAX_AUTHOR_ID = 255;
const MAX_REASON = 1000;
const MAX_RECORDS = 100;
const SECRET_NAME = 'erasure-pseudonym-hmac';

export interface ErasureDeps extends Pick<ServiceDeps, 'dataSource' | 'store'> {
  /** Hands the erasure's own entry to live subscribers once it has committed. */
  publish?(entry: AuditLog): void;
  /** Retention's archive folder (RETENTION_ARCHIVE_DIR): the archived entries of the author are erased too. */
  archiveDir?: string;
  /** Called when another process is rewriting the archive folder and the erasure waits for it to finish. */
  onArchiveLockWait?: () => void;
}

export interface EraseActorInput {
  tenantId: string;
  /** The author whose entries are erased (`author_id`). */
  authorId: string;
  /** Why (the request's reference, the legal ground): stored in the erasure's entry as written. */
  reason: string;
  /** Who erases: the author of the erasure's entry. */
  by: AuditActor;
  ip?: string | null;
  userAgent?: string | null;
  /**
   * The person's own records (their user record): personal values inside entries about them are erased too,
   * whoever wrote them (version-2 entries; README, "Erasure").
   */
  records?: readonly RecordRef[];
  /** The operation recorded in the entry's meta: `eraseActor`, `auditql erase`. */
  operation: string;
}

export interface ErasureResult {
  /** Entries whose personal values were erased now. */
  erasedEntries: number;
  /**
   * Others' reads of the log (views, streams, exports) whose recorded filter named the person (their author
   * id, or the id of one of their records), erased now: the filter's values erased, the reader's own kept.
   */
  erasedMentions: number;
  /** Entries others wrote about the person's records (`records`), whose values inside JSON were erased now. */
  erasedRecordEntries: number;
  /**
   * Entries others wrote about those records that hold personal values but were hashed with version 1 (by an
   * earlier auditql: one salt for the author's values and the record's), left as they are.
   */
  recordEntriesLeft: number;
  /** What the author's id became in those entries. */
  pseudonym: string;
  /** The entry that records the erasure (resource `audit_log`, action `erase`). */
  entry: AuditLog;
  /** Archived entries (retention archives) erased now, and the archive files rewritten for them. */
  erasedArchivedEntries: number;
  archiveFiles: number;
  /**
   * SQLite: the write-ahead log was truncated after the erasure, so the erased bytes are left nowhere in the
   * database's files. False on PostgreSQL (old row versions stay until VACUUM FULL) or when readers kept the
   * log in use for the whole wait.
   */
  storageCleared: boolean;
}

/** The server's key for pseudonyms, made on first use and kept in the database (every instance shares it). */
function* pseudonymKey(): Work<string> {
  yield* exec(`INSERT INTO "audit_server_secret" ("name", "value", "created_at") VALUES (?, ?, ?) ON CONFLICT ("name") DO NOTHING`, [
    SECRET_NAME,
    randomBytes(32).toString('base64url'),
    Date.now(),
  ]);
  const { rows } = yield* exec<{ value: string }>(`SELECT "value" FROM "audit_server_secret" WHERE "name" = ?`, [SECRET_NAME]);
  return rows[0]!.value;
}

/**
 * The pseudonym of an author in a tenant: `erased:` and 32 hex characters of HMAC-SHA256 under the server's
 * key. The same person gets the same pseudonym in every erasure, so their erased entries still read as one
 * actor's; without the key, it cannot be traced back to the id.
 */
export function pseudonymOf(key: string, tenantId: string, authorId: string): string {
  return `erased:${createHmac('sha256', key).update(canonicalJson([tenantId, authorId])).digest('hex').slice(0, 32)}`;
}

function validateRecords(records: readonly RecordRef[]): RecordRef[] {
  if (records.length > MAX_RECORDS) throw badUserInput(`records takes at most ${MAX_RECORDS} records`, 'records');
  return records.map((record, i) => {
    for (const field of ['resource', 'resourceId'] as const) {
      const value = record[field];
      if (value.trim() === '') throw badUserInput(`records[${i}].${field} must not be empty`, 'records');
      if (value.length > MAX_AUTHOR_ID) throw badUserInput(`records[${i}].${field} takes at most ${MAX_AUTHOR_ID} characters`, 'records');
    }
    return { resource: record.resource, resourceId: record.resourceId };
  });
}

function validate(input: EraseActorInput): { authorId: string; reason: string; records: RecordRef[] } {
  const authorId = input.authorId.trim();
  if (authorId === '') throw badUserInput('authorId must not be empty', 'authorId');
  if (input.authorId.length > MAX_AUTHOR_ID) throw badUserInput(`authorId takes at most ${MAX_AUTHOR_ID} characters`, 'authorId');
  const reason = input.reason.trim();
  if (reason === '') throw badUserInput('reason must not be empty: say why (a request reference, the legal ground)', 'reason');
  if (reason.length > MAX_REASON) throw badUserInput(`reason takes at most ${MAX_REASON} characters`, 'reason');
  return { authorId: input.authorId, reason, records: validateRecords(input.records ?? []) };
}

/**
 * Erases up to ERASURE_BATCH of the author's entries after id `after`: personal values replaced by their
 * digests, salt dropped, the author's id replaced by the pseudonym; the search index takes the new values.
 */
function* eraseBatch(dialect: ErasureDeps['store']['dialect'], tenantId: string, authorId: string, pseudonym: string, after: number): Work<{ found: number; erased: number; last: number }> {
  const { rows } = yield* exec<RawChainRow & { id: number | string }>(
    `SELECT "id", ${CHAIN_COLUMNS} FROM "audit_log" WHERE "tenant_id" = ? AND "author_id" = ? AND "id" > CAST(? AS BIGINT) ORDER BY "id" LIMIT ?`,
    [tenantId, authorId, after, ERASURE_BATCH],
  );
  const changed: number[] = [];
  for (const raw of rows) {
    const erased = eraseRow(chainRowFromDb(raw), pseudonym);
    if (!erased) continue;
    yield* updateErased(raw.id, erased);
    changed.push(Number(raw.id));
  }
  // PostgreSQL's search expression is an index over the row: the update keeps it.
  if (dialect === 'sqlite') yield* reindexEntries(changed);
  return { found: rows.length, erased: changed.length, last: rows.length > 0 ? Number(rows[rows.length - 1]!.id) : after };
}

function* updateErased(id: number | string, erased: ErasedColumns): Work<void> {
  yield* exec(
    `UPDATE "audit_log" SET "author_id" = ?, "author_name" = ?, "ip" = ?, "user_agent" = ?, "data" = ?, "previous_data" = ?, "meta" = ?, "salt" = ?, "erased_digests" = ? WHERE "id" = CAST(? AS BIGINT)`,
    [erased.authorId, erased.authorName, erased.ip, erased.userAgent, erased.data, erased.previousData, erased.meta, erased.salt, JSON.stringify(erased.erasedDigests), id],
  );
}

/**
 * GDPR Art. 17 erasure of one author in one tenant (README, "Erasure"). Every entry whose `author_id` is
 * theirs loses the author's name, IP address, user agent and the personal fields inside data,
 * previousData and meta (its `personalPaths`); its author id becomes a pseudonym. Each value's salted
 * digest stays in `erasedDigests`, so the chain verifies as before. Runs in short transactions of
 * ERASURE_BATCH entries; the last one also records the erasure as an entry (without the erased values),
 * so that once it commits no entry of the author is left unerased. Then, on SQLite, the search index is
 * rewritten and the write-ahead log truncated, so the erased bytes are gone from the files too.
 *
 * Before that, others' entries that name the person lose the values inside their JSON alone
 * (erasure-others.ts): reads of the log that filtered by their id, and entries about their own records.
 */
export async function eraseActor(deps: ErasureDeps, input: EraseActorInput): Promise<ErasureResult> {
  const { authorId, reason, records } = validate(input);
  const key = await deps.store.write(pseudonymKey);
  const pseudonym = pseudonymOf(key, input.tenantId, authorId);
  // Each batch rewrites pages all over the file (the entries, their index leaves, the search index): on a
  // SQLite file a thread of its own copies them back between batches, instead of the commit that crosses
  // the log's limit while holding the writer.
  const wal = deps.store.maintenance?.();
  try {
    const target: OthersTarget = { authorId, records, pseudonymFor: (id) => pseudonymOf(key, input.tenantId, id) };
    const others = await eraseOthers(deps, input.tenantId, target, wal);
    return await eraseInBatches(deps, input, { authorId, reason, pseudonym, others, target }, wal);
  } finally {
    await wal?.end();
  }
}

/** What the erasure did to entries others wrote (erasure-others.ts). */
interface OthersErased {
  mentions: number;
  records: number;
  left: number;
}

/**
 * Others' entries that name the target (reads that filtered by them, entries about their records): found
 * on the read path, then erased ERASURE_BATCH at a time.
 */
async function eraseOthers(deps: ErasureDeps, tenantId: string, target: OthersTarget, wal: WalMaintenance | undefined): Promise<OthersErased> {
  const found = await findOthers(deps.store, tenantId, target);
  const erase = othersEraser(target);
  const dialect = deps.store.dialect;
  const done: OthersErased = { mentions: 0, records: 0, left: found.left };
  for (let start = 0; start < found.ids.length; start += ERASURE_BATCH) {
    const ids = found.ids.slice(start, start + ERASURE_BATCH);
    const changed = await deps.store.write(() =>
      withSecureDelete(
        dialect,
        (function* (): Work<Array<{ id: number; kind: OthersKind }>> {
          const erased = yield* eraseOthersBatch(ids, erase);
          for (const { id, columns } of erased) yield* updateErased(id, columns);
          if (dialect === 'sqlite') yield* reindexEntries(erased.map((e) => e.id));
          return erased;
        })(),
      ),
    );
    for (const { kind } of changed) done[kind === 'mention' ? 'mentions' : 'records']++;
    await between(wal);
  }
  return done;
}

async function eraseInBatches(
  deps: ErasureDeps,
  input: EraseActorInput,
  { authorId, reason, pseudonym, others, target }: { authorId: string; reason: string; pseudonym: string; others: OthersErased; target: OthersTarget },
  wal: WalMaintenance | undefined,
): Promise<ErasureResult> {
  const { dataSource, store } = deps;
  const dialect = store.dialect;
  let erasedEntries = 0;
  let after = 0;
  for (;;) {
    const step = await store.write(() =>
      withSecureDelete(
        dialect,
        (function* (): Work<{ done: boolean; last: number; erased: number; entry?: AuditLog }> {
          const batch = yield* eraseBatch(dialect, input.tenantId, authorId, pseudonym, after);
          if (batch.found === ERASURE_BATCH) return { done: false, last: batch.last, erased: batch.erased };
          // The last batch: the record commits with it.
          const [entry] = entryRows(
            [{
              tenantId: input.tenantId,
              resource: 'audit_log',
              action: 'erase',
              resourceId: pseudonym,
              author: input.by,
              ip: input.ip ?? null,
              userAgent: input.userAgent ?? null,
              meta: { operation: input.operation, reason, pseudonym, erasedEntries: erasedEntries + batch.erased, erasedMentions: others.mentions, erasedRecordEntries: others.records },
            }],
            { transactionId: randomUUID(), createdAt: new Date(nextTimestamp(dataSource)) },
          );
          yield* insertEntries(dialect, [entry!], chainSettings(dataSource));
          return { done: true, last: batch.last, erased: batch.erased, entry };
        })(),
      ),
    );
    erasedEntries += step.erased;
    after = step.last;
    if (step.done) {
      deps.publish?.(step.entry!);
      const storageCleared = dialect === 'sqlite' ? await clearSqliteStorage(deps, erasedEntries + others.mentions + others.records > 0, wal) : false;
      // After the live table: an archive rewritten, then a crash, and the erasure run again finds nothing
      // left to erase there; the other way round is the same. Hashes do not change either way.
      const archived = deps.archiveDir
        ? await eraseInArchives(deps.archiveDir, input.tenantId, authorId, pseudonym, deps.onArchiveLockWait, target)
        : { files: 0, entries: 0 };
      return {
        erasedEntries,
        erasedMentions: others.mentions,
        erasedRecordEntries: others.records,
        recordEntriesLeft: others.left,
        pseudonym,
        entry: step.entry!,
        storageCleared,
        erasedArchivedEntries: archived.entries,
        archiveFiles: archived.files,
      };
    }
    // Other writes go on between the batches.
    await between(wal);
  }
}

/** Between two batches: until the log is copied back, where a thread does that; one turn of the event loop at least. */
async function between(wal: WalMaintenance | undefined): Promise<void> {
  await Promise.all([new Promise((resolve) => setImmediate(resolve)), wal?.settle()]);
}

/**
 * The search index's segments are merged (deleted FTS5 rows keep their terms until their segment is merged),
 * step by step in short transactions so that other writes go on, and then the write-ahead log, which holds
 * pages as they were, is truncated.
 */
async function clearSqliteStorage(deps: ErasureDeps, erased: boolean, wal: WalMaintenance | undefined): Promise<boolean> {
  while (erased && (await deps.store.write(() => withSecureDelete('sqlite', mergeSearchIndexStep())))) {
    await between(wal);
  }
  // The commits copy the log back again before it is truncated.
  await wal?.end();
  return truncateWal(deps.dataSource);
}
