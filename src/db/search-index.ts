import type { DataSource, EntityManager } from 'typeorm';
import { read, writeTransaction } from './transaction.js';

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

export async function detectSearchIndex(dataSource: DataSource): Promise<boolean> {
  const type: string = dataSource.options.type;
  let found = false;
  if (type === 'sqlite' || type === 'better-sqlite3') {
    const rows = (await read(dataSource, (manager) => manager.query(`${TAG}SELECT name FROM sqlite_master WHERE name IN (?, ?)`, [SEARCH_TABLE, SEARCH_STATE_TABLE]))) as unknown[];
    found = rows.length === 2;
  }
  available.set(dataSource, found);
  return found;
}

/** Adds up to `limit` entries after the watermark to the index and moves the watermark; returns how many. */
export function indexPendingEntries(dataSource: DataSource, limit = SEARCH_INDEX_BATCH): Promise<number> {
  return writeTransaction(dataSource, async (manager) => {
    const rows = (await manager.query(
      `${TAG}SELECT "id", ${COLUMN_LIST} FROM "audit_log" WHERE "id" > (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}" WHERE "id" = 1) ORDER BY "id" LIMIT ?`,
      [limit],
    )) as Array<Record<string, unknown>>;
    if (rows.length === 0) return 0;
    const params: unknown[] = [];
    for (const row of rows) params.push(row.id, ...SEARCHED_COLUMNS.map((c) => row[c]));
    const tuples = rows.map(() => `(${['?', ...SEARCHED_COLUMNS.map(() => '?')].join(', ')})`).join(', ');
    await manager.query(`${TAG}INSERT INTO "${SEARCH_TABLE}" ("rowid", ${COLUMN_LIST}) VALUES ${tuples}`, params);
    await manager.query(`${TAG}UPDATE "${SEARCH_STATE_TABLE}" SET "indexed_through" = ? WHERE "id" = 1`, [rows[rows.length - 1]!.id]);
    return rows.length;
  });
}

/** Entries after the watermark, waiting to be indexed (and scanned by searches meanwhile). */
export async function pendingSearchEntries(dataSource: DataSource): Promise<number> {
  const [row] = (await read(dataSource, (manager) =>
    manager.query(`SELECT COUNT(*) AS "n" FROM "audit_log" WHERE "id" > (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}")`),
  )) as Array<{ n: number }>;
  return Number(row?.n ?? 0);
}

function idList(ids: readonly number[]): string {
  return ids.map(() => '?').join(', ');
}

async function hasIndex(manager: EntityManager): Promise<boolean> {
  if (available.has(manager.connection)) return available.get(manager.connection)!;
  const type: string = manager.connection.options.type;
  if (type !== 'sqlite' && type !== 'better-sqlite3') return false;
  const rows = (await manager.query(`SELECT name FROM sqlite_master WHERE name = ?`, [SEARCH_TABLE])) as unknown[];
  return rows.length === 1;
}

/**
 * Takes deleted entries out of the index. Call it in the transaction that deletes them (retention).
 * (Were it skipped, searches would still be right, since every match is checked against the entry itself;
 * the index would only keep dead weight.)
 */
export async function removeFromSearchIndex(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length === 0 || !(await hasIndex(manager))) return;
  await manager.query(`DELETE FROM "${SEARCH_TABLE}" WHERE "rowid" IN (${idList(ids)})`, [...ids]);
}

/**
 * Indexes entries again after their searched fields changed (a rename, an erased author name). Call it in
 * the transaction that changes them. Entries after the watermark are left to the indexer.
 */
export async function reindexEntries(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length === 0 || !(await hasIndex(manager))) return;
  await manager.query(`DELETE FROM "${SEARCH_TABLE}" WHERE "rowid" IN (${idList(ids)})`, [...ids]);
  await manager.query(
    `INSERT INTO "${SEARCH_TABLE}" ("rowid", ${COLUMN_LIST}) SELECT "id", ${COLUMN_LIST} FROM "audit_log" ` +
      `WHERE "id" IN (${idList(ids)}) AND "id" <= (SELECT "indexed_through" FROM "${SEARCH_STATE_TABLE}")`,
    [...ids],
  );
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
export function startSearchIndexer(dataSource: DataSource, options: { intervalMs?: number; onError?: (error: unknown) => void } = {}): SearchIndexer {
  let stopped = false;
  let running: Promise<void> | undefined;
  const ready = detectSearchIndex(dataSource).catch((error) => {
    options.onError?.(error);
    return false;
  });
  const catchUp = async () => {
    if (!(await ready)) return;
    while (!stopped && dataSource.isInitialized) {
      const indexed = await indexPendingEntries(dataSource);
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
