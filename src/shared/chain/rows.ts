/** Reading chain rows out of the `audit_log` table (the server, the CLI, the migration). */
import type { ChainRow } from './canonical.js';

/** Columns of `audit_log` a ChainRow is made of, as a SELECT list. */
export const CHAIN_COLUMNS =
  '"tenant_id", "sequence", "hash", "previous_hash", "hash_version", "salt", "personal_paths", "erased_digests", "created_at", ' +
  '"resource", "resource_id", "action", "author_id", "author_name", "author_type", "data", "previous_data", "meta", "ip", ' +
  '"user_agent", "transaction_id", "idempotency_key", "redacted_changes", "recorded_by"';

export interface RawChainRow {
  id?: number | string;
  tenant_id: string;
  sequence: number | string | null;
  hash: string | null;
  previous_hash: string | null;
  hash_version: number | string | null;
  salt: string | null;
  personal_paths: string | null;
  erased_digests: string | null;
  created_at: number | string;
  resource: string;
  resource_id: string | null;
  action: string;
  author_id: string | null;
  author_name: string | null;
  author_type: string | null;
  data: string | null;
  previous_data: string | null;
  meta: string | null;
  ip: string | null;
  user_agent: string | null;
  transaction_id: string | null;
  idempotency_key: string | null;
  redacted_changes: string | null;
  recorded_by: string | null;
}

function parseJson<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    // Left for the verifier to report: an unparsable value cannot be what was hashed.
    return fallback;
  }
}

/**
 * Most entries share one of a few lists of personal paths (`["/authorName","/ip","/userAgent"]`): parsed
 * once per text. The arrays are shared between rows, which only read them.
 */
const pathLists = new Map<string, string[]>();
const NO_PATHS: string[] = [];

function personalPaths(text: string | null): string[] {
  if (text === null) return NO_PATHS;
  let paths = pathLists.get(text);
  if (paths === undefined) {
    paths = parseJson<string[]>(text, []);
    if (pathLists.size >= 256) pathLists.clear();
    pathLists.set(text, paths);
  }
  return paths;
}

export function chainRowFromDb(raw: RawChainRow): ChainRow {
  return {
    tenantId: raw.tenant_id,
    sequence: Number(raw.sequence),
    hash: raw.hash ?? '',
    previousHash: raw.previous_hash ?? '',
    hashVersion: Number(raw.hash_version),
    salt: raw.salt,
    personalPaths: personalPaths(raw.personal_paths),
    erasedDigests: parseJson<Record<string, string> | null>(raw.erased_digests, null),
    createdAt: Number(raw.created_at),
    resource: raw.resource,
    resourceId: raw.resource_id,
    action: raw.action,
    authorId: raw.author_id,
    authorName: raw.author_name,
    authorType: raw.author_type,
    data: raw.data,
    previousData: raw.previous_data,
    meta: raw.meta,
    ip: raw.ip,
    userAgent: raw.user_agent,
    transactionId: raw.transaction_id,
    idempotencyKey: raw.idempotency_key,
    redactedChanges: parseJson<string[] | null>(raw.redacted_changes, null),
    recordedBy: raw.recorded_by,
  };
}

/** Stored form of the personal paths: NULL for none. */
export const personalPathsColumn = (paths: string[]) => (paths.length === 0 ? null : JSON.stringify(paths));

/** Rows as objects (TypeORM), or as arrays in SELECT order (better-sqlite3's raw mode, ~2× faster to read). */
export type RowQuery = (sql: string, params: unknown[]) => Promise<RawChainRow[] | unknown[][]> | RawChainRow[] | unknown[][];

/**
 * A row read in raw mode (`SELECT "id", CHAIN_COLUMNS`, values in that order) as a ChainRow, without the
 * intermediate object keyed by column name.
 */
export function chainRowFromArray(raw: readonly unknown[]): ChainRow {
  return {
    tenantId: raw[1] as string,
    sequence: Number(raw[2]),
    hash: (raw[3] as string | null) ?? '',
    previousHash: (raw[4] as string | null) ?? '',
    hashVersion: Number(raw[5]),
    salt: raw[6] as string | null,
    personalPaths: personalPaths(raw[7] as string | null),
    erasedDigests: raw[8] === null ? null : parseJson<Record<string, string> | null>(raw[8] as string, null),
    createdAt: Number(raw[9]),
    resource: raw[10] as string,
    resourceId: raw[11] as string | null,
    action: raw[12] as string,
    authorId: raw[13] as string | null,
    authorName: raw[14] as string | null,
    authorType: raw[15] as string | null,
    data: raw[16] as string | null,
    previousData: raw[17] as string | null,
    meta: raw[18] as string | null,
    ip: raw[19] as string | null,
    userAgent: raw[20] as string | null,
    transactionId: raw[21] as string | null,
    idempotencyKey: raw[22] as string | null,
    redactedChanges: raw[23] === null ? null : parseJson<string[] | null>(raw[23] as string, null),
    recordedBy: raw[24] as string | null,
  };
}

const rowOf = (row: RawChainRow | unknown[]): ChainRow => (Array.isArray(row) ? chainRowFromArray(row) : chainRowFromDb(row));
const keyOf = (row: RawChainRow | unknown[]): [number, number] => (Array.isArray(row) ? [Number(row[2]), Number(row[0])] : [Number(row.sequence), Number(row.id)]);

/** One batch of a tenant's entries after (sequence, id), up to a sequence: [tenant, sequence, id, upTo, limit]. */
export const CHAIN_BATCH_SQL = `SELECT "id", ${CHAIN_COLUMNS} FROM "audit_log" WHERE "tenant_id" = ? AND ("sequence", "id") > (?, CAST(? AS BIGINT)) AND "sequence" <= CAST(? AS BIGINT) ORDER BY "sequence", "id" LIMIT ?`;

/**
 * A tenant's entries in sequence order, `batchSize` at a time, from `from` through `to`, each batch read by
 * `query` (a keyset range on the unique (tenant_id, sequence) index, so every batch costs the same; the id
 * breaks ties, so that a duplicated sequence is seen twice, as it is). Between batches it yields to the event
 * loop, so that a long verification never holds up the requests around it.
 */
export async function* chainBatches(query: RowQuery, tenant: string, from: number, to: number, batchSize = 2000): AsyncGenerator<ChainRow[]> {
  let after: [number, number] = [from - 1, Number.MAX_SAFE_INTEGER];
  const upTo = Number.isFinite(to) ? to : Number.MAX_SAFE_INTEGER;
  for (;;) {
    const raw = await query(CHAIN_BATCH_SQL, [tenant, after[0], after[1], upTo, batchSize]);
    if (raw.length > 0) yield raw.map(rowOf);
    if (raw.length < batchSize) return;
    after = keyOf(raw[raw.length - 1]!);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The fields of an entry that an export line carries for offline verification (README, "Evidence"): the
 * hashed facts with JSON values as JSON, createdAt in epoch milliseconds, and the chain's own fields.
 */
export function chainExportFields(row: ChainRow): Record<string, unknown> {
  const json = (text: string | null) => (text === null ? null : (JSON.parse(text) as unknown));
  return {
    tenantId: row.tenantId,
    sequence: row.sequence,
    createdAt: row.createdAt,
    resource: row.resource,
    resourceId: row.resourceId,
    action: row.action,
    authorId: row.authorId,
    authorName: row.authorName,
    authorType: row.authorType,
    data: json(row.data),
    previousData: json(row.previousData),
    meta: json(row.meta),
    ip: row.ip,
    userAgent: row.userAgent,
    transactionId: row.transactionId,
    idempotencyKey: row.idempotencyKey,
    redactedChanges: row.redactedChanges,
    recordedBy: row.recordedBy,
    hashVersion: row.hashVersion,
    personalPaths: row.personalPaths,
    salt: row.salt,
    erasedDigests: row.erasedDigests,
    previousHash: row.previousHash,
    hash: row.hash,
  };
}
