import type { DataSource, EntityManager } from 'typeorm';
import { exec, runAsync, statement, type Work } from './sql.js';
import type { AuditStore } from './store.js';

/**
 * The substring-search index over entries (SQLite FTS5, trigram tokenizer; created by the SearchIndex
 * migration). Kept outside the write path: entries are added in batches by `startSearchIndexer`, which
 * records the last id it indexed (the watermark). A search combines the index, for entries up to the
 * watermark, with a scan of the entries after it, so an entry is found as soon as its write is
 * acknowledged. Entry ids grow in commit order (AUTOINCREMENT, one writer at a time), so "after the
 * watermark" is exactly "not indexed yet".
 */
export const SEARCH_TABLE = 'audit_log_search';
export const SEARCH_STATE_TABLE = 'audit_log_search_state';

/** Entries indexed per transaction: a batch holds the write lock for ~20 ms (≈35 µs per entry, measured). */
export const SEARCH_INDEX_BATCH = 500;

const SEARCHED_COLUMNS = ['name', 'resource', 'resource_id', 'action', 'author_name'] as const;
const COLUMN_LIST = SEARCHED_COLUMNS.map((c) => `"${c}"`).join(', ');

/** Marks the indexer's own statements in query logs (and keeps them out of per-request statement counts). */
const TAG = '/* auditql search indexer */ ';

const available = new WeakMap<DataSource, boolean>();

/** Whether this database has the index (known once `detectSearchIndex` has run; until then, searches scan). */
export function searchIndexAvailable(dataSource: DataSource): boolean {
  return available.get(dataSource) === true;
}

export async function detectSearchIndex(dataSource: DataSource, store: AuditStore): Promise<boolean> {
  let found = false;
  if (store.dialect === 'sqlite') {
    const rows = await store.read(statement(`${TAG}SELECT "name" FROM "sqlite_master" WHERE "name" IN (?, ?)`, [SEARCH_TABLE, SEARCH_STATE_TABLE]));
    found = rows.length === 2;
  }
  available.set(dataSource, found);
  return found;
}

/** Adds up to `limit` entries after the watermark to the index and moves the watermark; returns how many. */
export function indexPendingEntries(store: AuditStore, limit = SEARCH_INDEX_BATCH): Promise<number> {
  return store.write(function* () {
    const { rows } = yield* exec(
      `${TAG}SELECT "id", ${COLUMN_LIST} FROM "audit_log" WHERE "id" > (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}" WHERE "id" = 1) ORDER BY "id" LIMIT ?`,
      [limit],
    );
    if (rows.length === 0) return 0;
    const params: unknown[] = [];
    for (const row of rows) params.push(row.id, ...SEARCHED_COLUMNS.map((c) => row[c]));
    const tuples = rows.map(() => `(${['?', ...SEARCHED_COLUMNS.map(() => '?')].join(', ')})`).join(', ');
    yield* exec(`${TAG}INSERT INTO "${SEARCH_TABLE}" ("rowid", ${COLUMN_LIST}) VALUES ${tuples}`, params);
    yield* exec(`${TAG}UPDATE "${SEARCH_STATE_TABLE}" SET "indexed_through" = ? WHERE "id" = 1`, [rows[rows.length - 1]!.id]);
    return rows.length;
  }, { background: true });
}

/** Entries after the watermark, waiting to be indexed (and scanned by searches meanwhile). */
export async function pendingSearchEntries(store: AuditStore): Promise<number> {
  const [row] = await store.read<{ n: number }>(
    statement(`SELECT COUNT(*) AS "n" FROM "audit_log" WHERE "id" > (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}")`),
  );
  return Number(row?.n ?? 0);
}

function idList(ids: readonly number[]): string {
  return ids.map(() => '?').join(', ');
}

function* hasIndex(): Work<boolean> {
  const { rows } = yield* exec(`SELECT "name" FROM "sqlite_master" WHERE "type" = 'table' AND "name" = ?`, [SEARCH_TABLE]);
  return rows.length === 1;
}

/**
 * Takes deleted entries out of the index, inside the transaction that deletes them (retention):
 * `yield* removeFromSearchIndex(ids)` in a `store.write` work. (Were it skipped, searches would still be
 * right, since every match is checked against the entry itself; the index would only keep dead weight.)
 * SQLite only: elsewhere it does nothing.
 */
export function* removeFromSearchIndex(ids: readonly number[]): Work<void> {
  if (ids.length === 0 || !(yield* hasIndex())) return;
  yield* exec(`DELETE FROM "${SEARCH_TABLE}" WHERE "rowid" IN (${idList(ids)})`, [...ids]);
}

/**
 * Indexes entries again after their searched fields changed (a rename, an erased author name), inside the
 * transaction that changes them. Entries after the watermark are left to the indexer.
 */
export function* reindexEntries(ids: readonly number[]): Work<void> {
  if (ids.length === 0 || !(yield* hasIndex())) return;
  yield* exec(`DELETE FROM "${SEARCH_TABLE}" WHERE "rowid" IN (${idList(ids)})`, [...ids]);
  yield* exec(
    `INSERT INTO "${SEARCH_TABLE}" ("rowid", ${COLUMN_LIST}) SELECT "id", ${COLUMN_LIST} FROM "audit_log" ` +
      `WHERE "id" IN (${idList(ids)}) AND "id" <= (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}")`,
    [...ids],
  );
}

/**
 * One step of merging the index's segments into one (FTS5 `merge` with a negative page count: segments of
 * any level are merged, at most `pages` pages written). Deleting from FTS5 only marks rows deleted; their
 * terms stay in the segments until those are merged. Run step by step in short transactions until a step
 * does no work, this ends where `optimize` ends without holding the write lock for the whole index.
 * Resolves whether the step did any work. SQLite only: elsewhere it does nothing.
 */
export function* mergeSearchIndexStep(pages = 64): Work<boolean> {
  if (!(yield* hasIndex())) return false;
  const changes = function* () {
    const { rows } = yield* exec<{ n: number }>(`SELECT total_changes() AS "n"`);
    return Number(rows[0]!.n);
  };
  const before = yield* changes();
  yield* exec(`${TAG}INSERT INTO "${SEARCH_TABLE}" ("${SEARCH_TABLE}", "rank") VALUES ('merge', ?)`, [-Math.max(1, pages)]);
  // The merge command itself counts one change; more means it wrote pages.
  return (yield* changes()) - before > 1;
}

/**
 * Rewrites the index as one segment (FTS5 `optimize`). Deleting from FTS5 only marks entries deleted: their
 * tokens stay in the index's segments until those are merged. Erasure runs this so that nothing of an
 * erased author name can be read back from the index's shadow tables. It rewrites the whole index, so it
 * costs time in proportion to its size; erasures are rare. SQLite only: elsewhere it does nothing.
 */
export function* optimizeSearchIndex(): Work<void> {
  if (!(yield* hasIndex())) return;
  yield* exec(`${TAG}INSERT INTO "${SEARCH_TABLE}" ("${SEARCH_TABLE}") VALUES ('optimize')`);
}

/**
 * FTS5 `automerge`: how many segments of one level make a write merge them (default 4; 0: never). Every
 * statement that writes to the index does its share of a pending merge when its savepoint closes, and with
 * `contentless_delete` each deleted row counts as a page of that share: during a large purge, once the
 * indexer's new segments filled a level, every purge batch's DELETE did 20–50 ms of merging (traced with
 * perf at 1M entries while serving). A purge sets it to 0 for its run and puts the earlier value back
 * (`retention.ts`); segments are merged again by the writes after it. Resolves the value before, or null
 * where there is no index.
 */
export function* setSearchAutomerge(value: number | null): Work<number | null> {
  if (!(yield* hasIndex())) return null;
  const { rows } = yield* exec<{ v: number | string }>(`SELECT "v" FROM "${SEARCH_TABLE}_config" WHERE "k" = 'automerge'`);
  const before = rows[0] === undefined ? DEFAULT_AUTOMERGE : Number(rows[0].v);
  // A literal: FTS5 refuses a bound value here ("SQL logic error").
  const setting = Math.trunc(value ?? DEFAULT_AUTOMERGE);
  yield* exec(`${TAG}INSERT INTO "${SEARCH_TABLE}" ("${SEARCH_TABLE}", "rank") VALUES ('automerge', ${setting})`);
  return before;
}
const DEFAULT_AUTOMERGE = 4;

/** At start: a purge that did not finish (a crash) leaves automerge off; nothing else sets it to 0. */
async function restoreSearchAutomerge(store: AuditStore): Promise<void> {
  const rows = await store.read<{ v: number | string }>(statement(`${TAG}SELECT "v" FROM "${SEARCH_TABLE}_config" WHERE "k" = 'automerge'`));
  if (rows[0] !== undefined && Number(rows[0].v) === 0) await store.write(() => setSearchAutomerge(null), { background: true });
}

/** The same, through a transactional TypeORM EntityManager (for code still written on TypeORM transactions). */
export function reindexEntriesIn(manager: EntityManager, ids: readonly number[]): Promise<void> {
  const type: string = manager.connection.options.type;
  if (type !== 'sqlite' && type !== 'better-sqlite3') return Promise.resolve();
  return runAsync(manager, reindexEntries(ids));
}

export interface SearchIndexer {
  /** Indexes everything written so far; resolves when caught up. */
  flush(): Promise<void>;
  /** Stops it; resolves once a batch under way has committed. */
  stop(): Promise<void>;
}

/**
 * Keeps the index caught up: every `intervalMs` it indexes what was written since, batch after batch,
 * yielding between batches so that requests and writes go on. Does nothing where there is no index.
 */
export function startSearchIndexer(dataSource: DataSource, store: AuditStore, options: { intervalMs?: number; onError?: (error: unknown) => void } = {}): SearchIndexer {
  let stopped = false;
  let running: Promise<void> | undefined;
  const ready = (async () => {
    try {
      if (!(await detectSearchIndex(dataSource, store))) return false;
    } catch (error) {
      options.onError?.(error);
      return false;
    }
    // Not being able to put merging back stops no indexing.
    await restoreSearchAutomerge(store).catch((error: unknown) => options.onError?.(error));
    return true;
  })();
  const catchUp = async () => {
    if (!(await ready)) return;
    while (!stopped && dataSource.isInitialized) {
      const indexed = await indexPendingEntries(store);
      if (indexed < SEARCH_INDEX_BATCH) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const run = () => {
    running ??= catchUp()
      .catch((error) => options.onError?.(error))
      .finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void run(), options.intervalMs ?? 250);
  timer.unref();
  void run();
  return {
    async flush() {
      // A run already under way may have read its batch before the latest writes: run once more after it.
      await run();
      await run();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
