/**
 * Retention (README, "Retention"): entries older than their tenant's limit are removed from the start of
 * the tenant's chain, in small batches, and the chain is re-anchored past them so that it still verifies.
 *
 * Each batch is one short write transaction that, in this order and all or nothing:
 *   1. checks that the tenant's anchor is still where this run left it (another purge did not move it),
 *   2. reads the next expired entries after the anchor (oldest first, stopping at the first one that is not
 *      expired, at a hole in the sequence, or at a link that does not chain),
 *   3. takes them out of the search index and deletes them (the rollup triggers decrement the chart's counts
 *      in the same transaction), slice by slice, beginning no slice once the batch has used its time,
 *   4. signs a checkpoint at the last entry removed (Ed25519, synchronously: tens of microseconds) and stores it,
 *   5. moves the head's anchor to that checkpoint's sequence and hash: the new genesis of the chain.
 * A crash at any point leaves either the batch undone or all of it done: never entries gone without an anchor
 * past them, nor an anchor without its signed checkpoint. With an archive folder, a file with the entries
 * and the checkpoints at both ends is written, fsynced and renamed into place before the first of its
 * entries is deleted; a crash after the file and before the deletes leaves entries that are both archived
 * and live, which the next run archives again (verification skips the overlap).
 *
 * Between batches the purge leaves the event loop to others for as long as the batch held it, and the batch
 * size adapts so that a batch holds the write lock for about `batchTargetMs`.
 */
import type { DataSource } from 'typeorm';
import type { AuditActor } from '../audit/context.js';
import type { TenantDraft } from '../audit/group-commit.js';
import { ROLLUP_UNITS } from '../db/activity-rollups.js';
import { removeFromSearchIndex, setSearchAutomerge } from '../db/search-index.js';
import { exec, statement, type Work } from '../db/sql.js';
import type { AuditStore } from '../db/store.js';
import { canonicalJson, type ChainRow } from '../shared/chain/canonical.js';
import { signCheckpointSync, type CheckpointKey, type SignedCheckpoint } from '../shared/chain/checkpoint.js';
import type { ChainHead } from '../shared/chain/link.js';
import { CHAIN_COLUMNS, chainExportFields, chainRowFromDb, type RawChainRow } from '../shared/chain/rows.js';
import { entryFailure, verifyChain } from '../shared/chain/verify.js';
import { badUserInput } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { openArchive, removeStaleTemporaries } from './retention-archive.js';
import { eraseInArchives, replaceArchivedEntries } from './archive-erasure.js';
import { basename } from 'node:path';

const DAY_MS = 86_400_000;
/** Entries removed per statement inside a batch, between which the batch checks its time. */
const DELETE_SLICE = 20;

/** How entries expire and how they are removed. */
export interface RetentionSettings {
  /** Days an entry is kept unless its tenant has its own policy; 0 keeps entries forever. @default 0 */
  days: number;
  /** Removed entries are archived here first (gzip NDJSON). @default none: removed entries are gone */
  archiveDir?: string;
  /** The time one batch should hold the writer (its statements and its commit); batch sizes adapt to it. @default 8 */
  batchTargetMs?: number;
  /** Most entries one batch removes. @default 5000 */
  maxBatch?: number;
  /** Entries per archive file. @default 100000 */
  archiveEntries?: number;
}

export interface RetentionDeps {
  dataSource: DataSource;
  store: AuditStore;
  checkpointKey: CheckpointKey;
  /** Writes the `retention_purge` entry (the server's group commit, or the CLI's). */
  record(draft: TenantDraft): Promise<unknown>;
}

/** A tenant's policy as the API shows it. */
export interface RetentionPolicy {
  tenant: string;
  /** Days entries are kept; null: forever. */
  days: number | null;
  /** The tenant's own setting (0: forever); null: it follows the global RETENTION_DAYS. */
  tenantDays: number | null;
  /** RETENTION_DAYS; null when unset (forever). */
  defaultDays: number | null;
  updatedAt: number | null;
  updatedBy: string | null;
  /** Where the tenant's chain starts now: 0 until a purge re-anchors it. */
  anchorSequence: number;
}

export interface PurgeProgress {
  tenant: string;
  /** Entries removed so far in this run, for this tenant. */
  purged: number;
  anchorSequence: number;
  /** Entries the batch removed, and how long its transaction took (queueing behind other writes and the commit included). */
  batchEntries: number;
  batchMs: number;
  /** How long the batch's statements took, inside the transaction. */
  statementsMs: number;
  /** How long the batch held the writer: its statements and its commit. */
  heldMs: number;
}

export interface PurgeResult {
  tenant: string;
  days: number;
  /** Entries created before this instant (epoch ms) expired. */
  before: number;
  fromSequence: number;
  toSequence: number;
  count: number;
  anchorSequence: number;
  anchorHash: string;
  archives: string[];
  /**
   * Archived entries an erasure reached after the purge had read them (it could not see the unfinished
   * file): the purge erased them in the archives itself. Absent when there were none.
   */
  erasedInArchives?: number;
  batches: number;
  /** The longest batch transaction, in milliseconds (queueing behind other writes and the commit included). */
  longestBatchMs: number;
  /** The longest time one batch's statements took inside its transaction. */
  longestStatementsMs: number;
  /** The longest time one batch held the writer (statements and commit, without queueing). */
  longestHeldMs: number;
  /**
   * SQLite file: the longest time writes were held back between batches while the log was copied into the
   * database file, so that it could start over (see WalMaintenance); 0 elsewhere.
   */
  longestWritePauseMs: number;
  /** Why the tenant's purge stopped early (a broken link, a concurrent purge); its finished batches stand. */
  error?: string;
}

export interface PurgeOptions {
  /** @default Date.now() */
  now?: number;
  /** Only these tenants. @default every tenant with a chain */
  tenants?: readonly string[];
  onProgress?: (progress: PurgeProgress) => void;
  /** Stops between batches (shutdown); what was removed is recorded. */
  signal?: AbortSignal;
  /** Who ran it, for the `retention_purge` entry. @default the server */
  author?: AuditActor;
  /** The command or schedule that ran it, for the entry's meta. @default 'retention schedule' */
  operation?: string;
  /**
   * Called with each archive file once it is complete (fsynced, in the folder) and before any of its
   * entries is removed; the purge waits for it (to copy the file elsewhere first, say). A rejection stops
   * the purge with that file's entries still in the table.
   */
  onArchived?: (path: string) => void | Promise<void>;
  /** Called when another process is rewriting the archive folder and the purge waits for it (see archive-folder-lock.ts). */
  onArchiveLockWait?: () => void;
}

export const RETENTION_AUTHOR: AuditActor = { id: 'auditql:retention', name: null, type: 'system' };

class RetentionStop extends Error {}

function checkDays(days: number | null): void {
  if (days !== null && (!Number.isInteger(days) || days < 0 || days > 36_600)) throw badUserInput('days is a whole number from 0 (keep forever) to 36600, or null to follow RETENTION_DAYS', 'days');
}

interface PolicyRow {
  days: number | string;
  updated_at: number | string;
  updated_by: string | null;
}

export async function retentionPolicy(store: AuditStore, tenant: string, defaultDays: number): Promise<RetentionPolicy> {
  const [row] = await store.read<PolicyRow & { anchor_sequence: number | string | null }>(
    statement(
      `SELECT p."days", p."updated_at", p."updated_by", (SELECT h."anchor_sequence" FROM "audit_chain_head" h WHERE h."tenant_id" = ?) AS "anchor_sequence" FROM (SELECT 1 AS "one") o LEFT JOIN "audit_retention_policy" p ON p."tenant_id" = ?`,
      [tenant, tenant],
    ),
  );
  const tenantDays = row?.days == null ? null : Number(row.days);
  const effective = tenantDays ?? defaultDays;
  return {
    tenant,
    days: effective > 0 ? effective : null,
    tenantDays,
    defaultDays: defaultDays > 0 ? defaultDays : null,
    updatedAt: row?.updated_at == null ? null : Number(row.updated_at),
    updatedBy: row?.updated_by ?? null,
    anchorSequence: Number(row?.anchor_sequence ?? 0),
  };
}

/** Sets (days ≥ 1, or 0 to keep forever) or clears (null) the tenant's own policy. */
export async function setRetentionPolicy(store: AuditStore, tenant: string, days: number | null, by: string | null, defaultDays: number): Promise<RetentionPolicy> {
  checkDays(days);
  await store.write(function* () {
    if (days === null) yield* exec(`DELETE FROM "audit_retention_policy" WHERE "tenant_id" = ?`, [tenant]);
    else {
      yield* exec(
        `INSERT INTO "audit_retention_policy" ("tenant_id", "days", "updated_at", "updated_by") VALUES (?, ?, ?, ?) ` +
          `ON CONFLICT ("tenant_id") DO UPDATE SET "days" = excluded."days", "updated_at" = excluded."updated_at", "updated_by" = excluded."updated_by"`,
        [tenant, days, Date.now(), by],
      );
    }
  });
  return retentionPolicy(store, tenant, defaultDays);
}

/** Each tenant with a chain and the days its entries are kept (0: forever). */
async function tenantPolicies(store: AuditStore, defaultDays: number, only?: readonly string[]): Promise<Array<{ tenant: string; days: number }>> {
  const rows = await store.read<{ tenant: string; days: number | string | null }>(
    statement(`SELECT h."tenant_id" AS "tenant", p."days" FROM "audit_chain_head" h LEFT JOIN "audit_retention_policy" p ON p."tenant_id" = h."tenant_id" ORDER BY h."tenant_id"`),
  );
  return rows
    .filter((row) => !only || only.includes(row.tenant))
    .map((row) => ({ tenant: row.tenant, days: row.days == null ? defaultDays : Number(row.days) }));
}

interface BatchOutcome {
  /** When the transaction's first statement started (performance.now()): the writer is held from then to the commit. */
  began: number;
  /** Time spent on the batch's statements. */
  workMs: number;
  count: number;
  /** What removing one entry cost in the batch's last slice, in ms. */
  msPerEntry: number;
  anchor: ChainHead;
  checkpoint: SignedCheckpoint & { id: number };
  /** Why the purge stops after this batch: an entry it reached does not match its hash (kept, with all after it). */
  stopped?: string;
  /** Archiving: the entries this batch removed that had been erased by then (sequence, pseudonym). */
  erased: Array<{ sequence: number; pseudonym: string }>;
  /**
   * Archiving: entries this batch removed that were erased further than their archived lines (a part of
   * their values, such as a read's filter, erased after they were archived), as they are now.
   */
  erasedSince: ChainRow[];
}

interface BatchRequest {
  dialect: AuditStore['dialect'];
  tenant: string;
  anchor: ChainHead;
  upTo: number;
  before: number;
  limit: number;
  /** Time the batch's statements may take: no slice is begun after it. */
  budgetMs: number;
  /** What removing one entry cost at the end of the previous batch, in ms: the first slice's size. */
  msPerEntry: number;
  key: CheckpointKey;
  /** This run's previous batch checkpoint: superseded by this batch's, so dropped with it. */
  dropCheckpointId: number | null;
  merging: MergePause;
  /**
   * Archiving: the archived entries that still had personal values, by sequence, with how many of their
   * values were erased when archived (see erasedSince).
   */
  archivedErasures?: ReadonlyMap<number, number>;
  /** The entries' hashes were recomputed already (while archiving them): the batch need not do it again. */
  hashesChecked: boolean;
}

/**
 * The search index's segment merging (FTS5 `automerge`), turned off by the first batch of a purge that
 * removes anything, in that batch's transaction, and put back when the purge ends (see setSearchAutomerge).
 */
interface MergePause {
  /** The value before (null: not turned off, or no search index). */
  before: number | null;
}

function* pauseMerging(pause: MergePause): Work<void> {
  if (pause.before !== null) return;
  pause.before = yield* setSearchAutomerge(0);
}

/** One batch, as one transaction (see the file's comment for the order and why). Null when nothing after the anchor has expired. */
function* purgeBatch(request: BatchRequest): Work<BatchOutcome | null> {
  const began = performance.now();
  const { tenant, anchor } = request;
  const { rows: heads } = yield* exec<{ anchor_sequence: number | string }>(`SELECT "anchor_sequence" FROM "audit_chain_head" WHERE "tenant_id" = ?`, [tenant]);
  if (!heads[0] || Number(heads[0].anchor_sequence) !== anchor.sequence) throw new RetentionStop(`the anchor of tenant ${tenant} moved meanwhile (another purge is running)`);
  const { rows } = yield* exec<{ id: number | string; sequence: number | string; hash: string; previous_hash: string; created_at: number | string }>(
    `SELECT "id", "sequence", "hash", "previous_hash", "created_at" FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" > ? AND "sequence" <= ? ORDER BY "sequence" LIMIT ?`,
    [tenant, anchor.sequence, request.upTo, request.limit],
  );
  let count = 0;
  let previous = anchor.hash;
  for (const row of rows) {
    if (Number(row.created_at) >= request.before) break;
    // Never across a hole or a broken link: that is evidence of tampering, which a purge must not remove.
    if (Number(row.sequence) !== anchor.sequence + count + 1 || row.previous_hash !== previous) {
      if (count === 0) throw new RetentionStop(`entry ${anchor.sequence + 1} of tenant ${tenant} does not chain to the anchor; verify the chain (nothing was removed)`);
      break;
    }
    previous = row.hash;
    count++;
  }
  if (count === 0) return null;
  if (request.dialect === 'sqlite') yield* pauseMerging(request.merging);
  // Removed slice by slice, and no further once the batch has used its time: a single delete can still cost
  // ten times the usual (in the search index's tombstone pages, README "Retention"; the stretches of such
  // deletes were its segment merging, now off during a purge), and the batch size, adapted to the batch
  // before, would run into one whole (one batch of 356 entries took 150 ms).
  // A slice is as large as the time left allows at the latest cost per entry (at most DELETE_SLICE, at least 1).
  let removed = 0;
  let msPerEntry = request.msPerEntry;
  let stopped: string | undefined;
  const erased: BatchOutcome['erased'] = [];
  const erasedSince: ChainRow[] = [];
  while (removed < count) {
    const left = request.budgetMs - (performance.now() - began);
    const size = Math.max(1, Math.min(DELETE_SLICE, Math.floor(left / Math.max(msPerEntry, 0.001))));
    let slice = rows.slice(removed, Math.min(count, removed + size));
    const sliceBegan = performance.now();
    if (!request.hashesChecked) {
      const broken = yield* firstBrokenEntry(tenant, anchor.sequence + removed, Number(slice[slice.length - 1]!.sequence));
      if (broken) {
        const message = `entry ${broken.sequence} of tenant ${tenant}: ${broken.reason} (${broken.detail}); verify the chain`;
        if (removed === 0 && broken.sequence === anchor.sequence + 1) throw new RetentionStop(`${message} (nothing past the anchor was removed)`);
        stopped = `${message} (the purge stopped before it)`;
        slice = slice.slice(0, broken.sequence - anchor.sequence - removed - 1);
        if (slice.length === 0) break;
      }
    }
    if (request.hashesChecked) yield* erasedIn(request, anchor.sequence + removed, Number(slice[slice.length - 1]!.sequence), erased, erasedSince);
    if (request.dialect === 'sqlite') yield* removeFromSearchIndex(slice.map((row) => Number(row.id)));
    const deleted = yield* exec(`DELETE FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" > ? AND "sequence" <= ?`, [tenant, anchor.sequence + removed, Number(slice[slice.length - 1]!.sequence)]);
    if (deleted.changes !== slice.length) throw new Error(`retention: expected to remove ${slice.length} entries of tenant ${tenant}, removed ${deleted.changes}`);
    removed += slice.length;
    msPerEntry = (performance.now() - sliceBegan) / slice.length;
    if (stopped !== undefined || performance.now() - began >= request.budgetMs) break;
  }
  if (request.dialect !== 'mysql') yield* dropEmptyRollupRows(tenant, rows.slice(0, removed).map((row) => Number(row.created_at)));
  const last = rows[removed - 1]!;
  const signed = signCheckpointSync({ tenant, sequence: Number(last.sequence), hash: last.hash, createdAt: Date.now() }, request.key);
  const postgres = request.dialect === 'postgres';
  const inserted = yield* exec<{ id: number | string }>(
    `INSERT INTO "audit_checkpoint" ("tenant_id", "sequence", "hash", "created_at", "key_id", "jws") VALUES (?, ?, ?, ?, ?, ?)${postgres ? ' RETURNING "id"' : ''}`,
    [tenant, signed.sequence, signed.hash, signed.createdAt, signed.keyId, signed.jws],
  );
  const checkpointId = Number(postgres ? inserted.rows[0]!.id : inserted.lastInsertId);
  yield* exec(`UPDATE "audit_chain_head" SET "anchor_sequence" = ?, "anchor_hash" = ? WHERE "tenant_id" = ? AND "anchor_sequence" = ?`, [signed.sequence, signed.hash, tenant, anchor.sequence]);
  if (request.dropCheckpointId !== null) yield* exec(`DELETE FROM "audit_checkpoint" WHERE "id" = ?`, [request.dropCheckpointId]);
  return { began, workMs: performance.now() - began, count: removed, msPerEntry, anchor: { sequence: signed.sequence, hash: signed.hash }, checkpoint: { ...signed, id: checkpointId }, stopped, erased, erasedSince };
}

/**
 * The entries of (after, upTo] that an erasure has reached (their author id is its pseudonym), read in the
 * transaction that deletes them. An erasure that ran while their archive was being written may have missed
 * the file (it was not in the folder yet) after erasing them in the table: the purge then erases them in
 * the archive itself (purgeTenant). On PostgreSQL and MySQL the rows are locked until the deletes commit,
 * so an erasure cannot reach them between this read and the delete; one that comes later finds them gone
 * and the finished archive in the folder.
 */
function* erasedIn(request: BatchRequest, after: number, upTo: number, into: BatchOutcome['erased'], since: BatchOutcome['erasedSince']): Work<void> {
  const lock = request.dialect === 'sqlite' ? '' : ' FOR UPDATE';
  const { rows } = yield* exec<{ sequence: number | string; author_id: string | null; erased_digests: string | null }>(
    `SELECT "sequence", "author_id", "erased_digests" FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" > ? AND "sequence" <= ?${lock}`,
    [request.tenant, after, upTo],
  );
  const further: number[] = [];
  for (const row of rows) {
    if (row.erased_digests === null) continue;
    if (row.author_id !== null) into.push({ sequence: Number(row.sequence), pseudonym: row.author_id });
    const archived = request.archivedErasures?.get(Number(row.sequence));
    if (archived !== undefined && Object.keys(JSON.parse(row.erased_digests) as object).length > archived) further.push(Number(row.sequence));
  }
  if (further.length === 0) return;
  const { rows: whole } = yield* exec<RawChainRow>(
    `SELECT ${CHAIN_COLUMNS} FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" IN (${further.map(() => '?').join(', ')})`,
    [request.tenant, ...further],
  );
  for (const row of whole) since.push(chainRowFromDb(row));
}

/**
 * The first entry from `after` + 1 through `upTo` whose facts do not match its stored hash, or null. The
 * batch has checked the links already (each previousHash is the hash before it); this recomputes the
 * hashes, so that an entry edited in place (its hash left as it was) is never removed, and with it the
 * evidence of the edit, behind a checkpoint that would then vouch for the chain.
 */
function* firstBrokenEntry(tenant: string, after: number, upTo: number): Work<{ sequence: number; reason: string; detail: string } | null> {
  const { rows } = yield* exec<RawChainRow>(`SELECT ${CHAIN_COLUMNS} FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" > ? AND "sequence" <= ? ORDER BY "sequence"`, [tenant, after, upTo]);
  for (const raw of rows) {
    const row = chainRowFromDb(raw);
    const failure = entryFailure(row);
    if (failure) return { sequence: row.sequence, ...failure };
  }
  return null;
}

/**
 * The rollup rows this batch's deletes brought to zero (an hour, a quarter hour or a day whose entries are
 * all gone), so that the rollups shrink with the log. Only the periods of the removed entries are looked at:
 * a row reaches zero only in a batch that removes an entry of its period.
 */
function* dropEmptyRollupRows(tenant: string, createdAts: number[]): Work<void> {
  let first = Infinity;
  let last = -Infinity;
  for (const at of createdAts) {
    first = Math.min(first, at);
    last = Math.max(last, at);
  }
  // From the least to the greatest key the triggers gave those entries (a key grows with the time).
  const tables = [
    ['audit_activity_by', 'start', Object.values(ROLLUP_UNITS.audit_activity_by)],
    ['audit_activity_daily_by', 'day', [DAY_MS]],
    ['audit_activity_daily', 'day', [DAY_MS]],
  ] as const;
  for (const [table, time, units] of tables) {
    const low = Math.min(...units.map((unit) => first - (first % unit)));
    const high = Math.max(...units.map((unit) => last - (last % unit)));
    yield* exec(`DELETE FROM "${table}" WHERE "tenant_id" = ? AND "${time}" BETWEEN ? AND ? AND "entries" <= 0`, [tenant, low, high]);
  }
}

/** The stored checkpoint at the anchor, for an archive's start record; the bare anchor when there is none. */
async function anchorCheckpoint(store: AuditStore, tenant: string, anchor: ChainHead): Promise<SignedCheckpoint | ChainHead | null> {
  if (anchor.sequence === 0) return null;
  const [row] = await store.read<{ created_at: number | string; key_id: string; jws: string }>(
    statement(`SELECT "created_at", "key_id", "jws" FROM "audit_checkpoint" WHERE "tenant_id" = ? AND "sequence" = ? AND "hash" = ? ORDER BY "id" DESC LIMIT 1`, [tenant, anchor.sequence, anchor.hash]),
  );
  return row ? { tenant, sequence: anchor.sequence, hash: anchor.hash, createdAt: Number(row.created_at), keyId: row.key_id, jws: row.jws } : { sequence: anchor.sequence, hash: anchor.hash };
}

/**
 * Writes the next run of expired entries after `anchor` (at most `archiveEntries`) to an archive file,
 * recomputing their chain as it goes: a broken chain is not archived, nor then removed. Null when nothing
 * after the anchor has expired.
 */
async function archiveSegment(deps: RetentionDeps, settings: RetentionSettings, tenant: string, anchor: ChainHead, start: SignedCheckpoint | ChainHead | null, upTo: number, before: number) {
  const max = settings.archiveEntries ?? 100_000;
  const writer = await openArchive(settings.archiveDir!, deps.checkpointKey, tenant, anchor.sequence + 1, start);
  let count = 0;
  /** The authors of the archived entries that were not erased when read, by sequence. */
  const unerased = new Map<number, string>();
  /** The archived entries with personal values left, by sequence: how many of theirs were erased. */
  const erasures = new Map<number, number>();
  async function* expired() {
    let after = anchor.sequence;
    while (count < max && after < upTo) {
      const raw = await deps.store.read<RawChainRow & { name: string | null }>(
        statement(`SELECT "id", "name", ${CHAIN_COLUMNS} FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" > ? AND "sequence" <= ? ORDER BY "sequence" LIMIT ?`, [tenant, after, upTo, Math.min(2000, max - count)]),
      );
      const rows = raw.map((r) => ({ row: chainRowFromDb(r), id: Number(r.id), name: r.name }));
      const cut = rows.findIndex((r) => r.row.createdAt >= before);
      const taken = cut < 0 ? rows : rows.slice(0, cut);
      if (taken.length === 0) return;
      await writer.write(taken.map(({ row, id, name }) => JSON.stringify({ id, name, ...chainExportFields(row) })));
      for (const { row } of taken) {
        if (row.authorId !== null && row.erasedDigests === null) unerased.set(row.sequence, row.authorId);
        const erasedCount = row.erasedDigests === null ? 0 : Object.keys(row.erasedDigests).length;
        if (row.personalPaths.length > erasedCount) erasures.set(row.sequence, erasedCount);
      }
      count += taken.length;
      yield taken.map((r) => r.row);
      if (taken.length < rows.length || raw.length === 0) return;
      after = taken[taken.length - 1]!.row.sequence;
    }
  }
  try {
    const verified = await verifyChain(expired(), { anchor });
    if (!verified.valid) throw new RetentionStop(`tenant ${tenant}: ${verified.reason} at ${verified.firstInvalidSequence} (${verified.detail}); nothing past the anchor was archived or removed`);
    if (count === 0) {
      await writer.abandon();
      return null;
    }
    const end = signCheckpointSync({ tenant, sequence: verified.headSequence, hash: verified.headHash, createdAt: Date.now() }, deps.checkpointKey);
    return { path: await writer.finish(end, count), end: { sequence: end.sequence, hash: end.hash }, unerased, erasures };
  } catch (error) {
    await writer.abandon();
    throw error;
  }
}

const rest = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function purgeTenant(deps: RetentionDeps, settings: RetentionSettings, tenant: string, days: number, now: number, options: PurgeOptions, merging: MergePause): Promise<PurgeResult | null> {
  const before = now - days * DAY_MS;
  const [head] = await deps.store.read<{ sequence: number | string; anchor_sequence: number | string; anchor_hash: string }>(
    statement(`SELECT "sequence", "anchor_sequence", "anchor_hash" FROM "audit_chain_head" WHERE "tenant_id" = ?`, [tenant]),
  );
  if (!head) return null;
  let anchor: ChainHead = { sequence: Number(head.anchor_sequence), hash: head.anchor_hash };
  const limit = Number(head.sequence);
  const result: PurgeResult = { tenant, days, before, fromSequence: anchor.sequence + 1, toSequence: anchor.sequence, count: 0, anchorSequence: anchor.sequence, anchorHash: anchor.hash, archives: [], batches: 0, longestBatchMs: 0, longestStatementsMs: 0, longestHeldMs: 0, longestWritePauseMs: 0 };
  const target = settings.batchTargetMs ?? 8;
  const maxBatch = settings.maxBatch ?? 5000;
  let size = Math.min(50, maxBatch);
  let lastCheckpoint: (SignedCheckpoint & { id: number }) | null = null;
  let msPerEntry = 0.05;
  const wal = deps.store.maintenance?.();
  // An error (an archive folder that cannot be written, the disk full) ends the purge, but what its finished
  // batches removed is recorded first: the purge's entry is the evidence of every removal.
  let failure: unknown;
  /** Authors this run erased in the archives (see below), with their pseudonyms. */
  const erasedAuthors = new Set<string>();
  try {
    outer: while (anchor.sequence < limit && !options.signal?.aborted) {
      let segmentEnd = limit;
      let unerased = new Map<number, string>();
      let erasures: ReadonlyMap<number, number> | undefined;
      let archivePath: string | undefined;
      if (settings.archiveDir) {
        const start = lastCheckpoint ?? (await anchorCheckpoint(deps.store, tenant, anchor));
        const archived = await archiveSegment(deps, settings, tenant, anchor, start, limit, before);
        if (!archived) break;
        result.archives.push(archived.path);
        segmentEnd = archived.end.sequence;
        unerased = archived.unerased;
        erasures = archived.erasures;
        archivePath = archived.path;
        await options.onArchived?.(archived.path);
      }
      while (anchor.sequence < segmentEnd) {
        if (options.signal?.aborted) break outer;
        const request: BatchRequest = {
          dialect: deps.store.dialect, tenant, anchor, upTo: segmentEnd, before, limit: size, budgetMs: target, msPerEntry, key: deps.checkpointKey,
          dropCheckpointId: lastCheckpoint?.id ?? null, merging, hashesChecked: Boolean(settings.archiveDir), archivedErasures: erasures,
        };
        const started = performance.now();
        // A batch lost to a power cut is all undone (anchor, checkpoint and rows together) and simply purged
        // again, so it need not wait for the disk: that wait would hold the writer for most of the batch.
        const outcome = await deps.store.write(() => purgeBatch(request), { relaxed: true });
        const ended = performance.now();
        const ms = ended - started;
        if (!outcome) break outer;
        const held = ended - outcome.began;
        anchor = outcome.anchor;
        lastCheckpoint = outcome.checkpoint;
        msPerEntry = outcome.msPerEntry;
        result.count += outcome.count;
        result.batches++;
        result.longestBatchMs = Math.max(result.longestBatchMs, ms);
        result.longestStatementsMs = Math.max(result.longestStatementsMs, outcome.workMs);
        result.longestHeldMs = Math.max(result.longestHeldMs, held);
        options.onProgress?.({ tenant, purged: result.count, anchorSequence: anchor.sequence, batchEntries: outcome.count, batchMs: ms, statementsMs: outcome.workMs, heldMs: held });
        // Entries erased further after they were archived (an erasure that missed the unfinished file): their
        // lines in this segment's archive become what the rows are now, which hash the same.
        if (outcome.erasedSince.length > 0) {
          const done = await replaceArchivedEntries(settings.archiveDir!, archivePath!, outcome.erasedSince, options.onArchiveLockWait);
          result.erasedInArchives = (result.erasedInArchives ?? 0) + done;
        }
        // Entries erased after they were archived: erased in the archives too, as the erasure would have.
        const missed = new Map<string, { authorId: string; pseudonym: string }>();
        for (const { sequence, pseudonym } of outcome.erased) {
          const authorId = unerased.get(sequence);
          const key = `${authorId}\u0000${pseudonym}`;
          if (authorId !== undefined && authorId !== pseudonym && !erasedAuthors.has(key)) missed.set(key, { authorId, pseudonym });
        }
        // Each author once a run: the first pass erased all of their archived entries, in every file.
        // (A crash before it leaves them in the file: the erasure, run again, finds them there.)
        for (const [key, { authorId, pseudonym }] of missed) {
          const done = await eraseInArchives(settings.archiveDir!, tenant, authorId, pseudonym, options.onArchiveLockWait);
          erasedAuthors.add(key);
          result.erasedInArchives = (result.erasedInArchives ?? 0) + done.entries;
        }
        if (outcome.stopped !== undefined) throw new RetentionStop(outcome.stopped);
        // Aim the next batch at the target time, commit included (a commit writes the batch's pages to the
        // log, so it grows with the batch): grow at most 2× a step, shrink as far as needed.
        const work = held;
        if (outcome.count === size) size = Math.max(20, Math.min(maxBatch, size * 2, Math.round((size * target) / Math.max(work, 0.1))));
        else if (work > target) size = Math.max(20, Math.round((size * target) / work));
        // Rest as long as the batch held the writer: half the event loop's time is left to requests and to
        // the writes queued meanwhile (with one turn only, /live took twice as long during a purge). And
        // until the checkpoint thread has copied the batch's pages back into the file (the writes queued
        // meanwhile go on): otherwise a commit would do that while holding the writer.
        await Promise.all([rest(held), wal?.settle()]);
      }
    }
  } catch (error) {
    if (!(error instanceof RetentionStop)) failure = error;
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    result.longestWritePauseMs = wal?.longestPauseMs() ?? 0;
    await wal?.end();
  }
  result.toSequence = anchor.sequence;
  result.anchorSequence = anchor.sequence;
  result.anchorHash = anchor.hash;
  if (result.count > 0) {
    await deps.record({
      tenantId: tenant,
      resource: 'audit_log',
      action: 'retention_purge',
      author: options.author ?? RETENTION_AUTHOR,
      data: JSON.parse(
        canonicalJson({
          fromSequence: result.fromSequence,
          toSequence: result.toSequence,
          count: result.count,
          days,
          before: new Date(before).toISOString(),
          anchorHash: anchor.hash,
          archives: result.archives.map((path) => basename(path)),
        }),
      ),
      meta: { operation: options.operation ?? 'retention schedule', ...(failure !== undefined ? { stoppedBy: result.error } : {}) },
    });
  }
  if (failure !== undefined) throw failure;
  return result;
}

/** Removes every tenant's expired entries (those of `options.tenants`), tenant after tenant. */
export async function purgeExpired(deps: RetentionDeps, settings: RetentionSettings, options: PurgeOptions = {}): Promise<PurgeResult[]> {
  const now = options.now ?? Date.now();
  const results: PurgeResult[] = [];
  const merging: MergePause = { before: null };
  let failed = true;
  if (settings.archiveDir) await removeStaleTemporaries(settings.archiveDir);
  try {
    for (const { tenant, days } of await tenantPolicies(deps.store, settings.days, options.tenants)) {
      if (days <= 0 || options.signal?.aborted) continue;
      const result = await purgeTenant(deps, settings, tenant, days, now, options, merging);
      if (result && (result.count > 0 || result.error)) results.push(result);
    }
    failed = false;
  } finally {
    const before = merging.before;
    if (before !== null) {
      // 0 found means another purge (the CLI beside the server) had turned it off: the default comes back
      // when this one ends, and the other's deletes merge again (slower, not wrong). A failure here never
      // hides the purge's own error (and a start puts the default back).
      await deps.store.write(() => setSearchAutomerge(before === 0 ? null : before)).catch((error: unknown) => {
        if (!failed) throw error;
      });
    }
  }
  return results;
}

export interface RetentionSchedule {
  /** Runs a purge now (after the one under way, if any). */
  run(options?: Omit<PurgeOptions, 'signal'>): Promise<PurgeResult[]>;
  /** Purges every `intervalMs` from now on (0: never on a schedule). The timer does not keep the process alive. */
  every(intervalMs: number): void;
  /** Stops the timer and a purge under way (between two batches); resolves when it has stopped. */
  stop(): Promise<void>;
}

/** Purges on demand and on a schedule, one purge at a time. */
export function scheduleRetention(deps: RetentionDeps, settings: RetentionSettings, logger: Pick<Logger, 'error' | 'info'>): RetentionSchedule {
  const stopping = new AbortController();
  let tail: Promise<unknown> = Promise.resolve();
  const run = (options: Omit<PurgeOptions, 'signal'> = {}) => {
    const waiting = () => logger.info(`retention: waiting for another process to finish rewriting the archives in ${settings.archiveDir}`);
    const next = tail.then(() => purgeExpired(deps, settings, { onArchiveLockWait: waiting, ...options, signal: stopping.signal }));
    tail = next.catch(() => undefined);
    return next;
  };
  let busy = false;
  const tick = () => {
    // A purge longer than the interval is not queued up behind itself.
    if (busy || !deps.dataSource.isInitialized) return;
    busy = true;
    run().finally(() => (busy = false)).then(
      (results) => {
        for (const r of results) {
          if (r.error) logger.error(`retention: tenant ${r.tenant}: ${r.error}`);
          if (r.count > 0) logger.info(`retention: removed ${r.count} entries of tenant ${r.tenant} (sequence ${r.fromSequence}–${r.toSequence}); the chain now starts after ${r.anchorSequence}`);
        }
      },
      (error: unknown) => logger.error({ err: error }, 'retention purge failed'),
    );
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    run,
    every(intervalMs) {
      if (timer) clearInterval(timer);
      timer = intervalMs > 0 && !stopping.signal.aborted ? setInterval(tick, intervalMs) : undefined;
      timer?.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      stopping.abort();
      await tail;
    },
  };
}
