import type { DataSource } from 'typeorm';
import { defaultVerifyWorkers, verifyInParallel } from '../db/chain-workers.js';
import { read } from '../db/transaction.js';
import { queryWith } from '../db/sql.js';
import { GENESIS_HASH } from '../shared/chain/canonical.js';
import type { CheckpointKey } from '../shared/chain/checkpoint.js';
import type { ChainHead } from '../shared/chain/link.js';
import { chainBatches, type RawChainRow } from '../shared/chain/rows.js';
import { ChainFailure, verifyChain, type ChainVerification } from '../shared/chain/verify.js';
import { badUserInput } from '../shared/errors.js';
import { allCheckpoints, readChainHead, trustedCheckpoints } from './checkpoints.js';

/** Shorter chains are recomputed between batches on the event loop: starting threads costs more. */
const PARALLEL_FROM = 20_000;

function sqliteFile(dataSource: DataSource): string | undefined {
  const database = (dataSource.options as { database?: unknown }).database;
  if (dataSource.options.type !== 'better-sqlite3' || typeof database !== 'string') return undefined;
  return database === ':memory:' || database.startsWith('file:') ? undefined : database;
}

/**
 * The node-postgres options of a PostgreSQL DataSource's pool, for threads that connect on their own;
 * undefined when they cannot be handed to a thread (a password given as a function).
 */
function postgresOptions(dataSource: DataSource): Record<string, unknown> | undefined {
  if (dataSource.options.type !== 'postgres') return undefined;
  const options = (dataSource.driver as unknown as { master?: { options?: Record<string, unknown> } }).master?.options;
  if (!options || typeof options.password === 'function') return undefined;
  try {
    return structuredClone(Object.fromEntries(Object.entries(options).filter(([, value]) => typeof value !== 'function')));
  } catch {
    return undefined;
  }
}

export interface VerifyRange {
  fromSequence?: number | null;
  toSequence?: number | null;
}

/**
 * Recomputes the tenant's chain from `fromSequence` (default: its start) through `toSequence` (default: the
 * head recorded when the verification began; entries written meanwhile are left for the next run), checks
 * it against the stored checkpoints, and that nothing was appended past the recorded head. A chain or range
 * of 20,000 entries or more is recomputed on worker threads (one per core but one), each reading ranges of
 * it through a read-only connection of its own (SQLite file or PostgreSQL); otherwise it reads in batches
 * through the read path, yielding between them, so the server keeps serving meanwhile.
 */
export async function verifyTenantChain(dataSource: DataSource, key: Pick<CheckpointKey, 'publicKey' | 'previous'>, tenant: string, range: VerifyRange = {}): Promise<ChainVerification> {
  if (range.fromSequence != null && range.fromSequence < 1) throw badUserInput('fromSequence starts at 1', 'fromSequence');
  if (range.toSequence != null && range.toSequence < (range.fromSequence ?? 1)) throw badUserInput('toSequence must not be before fromSequence', 'toSequence');
  // The head, the checkpoints and the entries are read in batches, each in a snapshot of its own: a purge
  // running meanwhile (retention removes the oldest entries and moves the anchor, batch after batch) can
  // make an intact chain look broken where it starts, the entries after the anchor just read being gone.
  // Such a failure, at or before the anchor as it is now, is a run to start again from that anchor; any
  // other is reported.
  for (let run = 1; ; run++) {
    const result = await verifyOnce(dataSource, key, tenant, range);
    if (result.valid || run === MAX_RUNS || result.firstInvalidSequence == null) return result;
    const anchorNow = (await readChainHead(dataSource, tenant))?.anchorSequence ?? 0;
    if (anchorNow <= result.anchorSequence || result.firstInvalidSequence > anchorNow + 1) return result;
  }
}

/** Runs of one verification that purge batches cut short where it started, at most. */
const MAX_RUNS = 1000;

async function verifyOnce(dataSource: DataSource, key: Pick<CheckpointKey, 'publicKey' | 'previous'>, tenant: string, range: VerifyRange): Promise<ChainVerification> {
  const head = (await readChainHead(dataSource, tenant)) ?? { sequence: 0, hash: GENESIS_HASH, anchorSequence: 0, anchorHash: GENESIS_HASH };
  const anchor = { sequence: head.anchorSequence, hash: head.anchorHash };
  const to = Math.min(range.toSequence ?? head.sequence, head.sequence);
  const from = range.fromSequence ?? anchor.sequence + 1;
  // Past the head there is nothing to recompute, and "valid" would vouch for entries that do not exist.
  if (range.fromSequence != null && range.fromSequence > head.sequence) {
    throw badUserInput(`fromSequence ${range.fromSequence} is past the head of the chain (${head.sequence})`, 'fromSequence');
  }
  const { trusted, bad } = await trustedCheckpoints(await allCheckpoints(dataSource, tenant), key, tenant);
  if (bad) {
    return {
      valid: false, checked: 0, firstInvalidSequence: bad.sequence, reason: ChainFailure.CheckpointSignature,
      detail: `the stored checkpoint at ${bad.sequence} does not verify with the checkpoint key ${bad.keyId === undefined ? '' : `(it names key ${bad.keyId})`}`.trim(),
      headSequence: head.sequence, headHash: head.hash, anchorSequence: anchor.sequence, checkpointsChecked: trusted.length,
    };
  }
  // A chain that starts past the genesis starts at a checkpoint retention signed when it removed the entries
  // before it: an anchor moved by anyone else (entries deleted and the head edited by hand) has none.
  if (anchor.sequence > 0 && (range.fromSequence == null || range.fromSequence <= anchor.sequence + 1) && !trusted.some((c) => c.sequence === anchor.sequence && c.hash === anchor.hash)) {
    return {
      valid: false, checked: 0, firstInvalidSequence: anchor.sequence, reason: ChainFailure.CheckpointMismatch,
      detail: `the chain starts at anchor ${anchor.sequence}, which no signed checkpoint vouches for`,
      headSequence: head.sequence, headHash: head.hash, anchorSequence: anchor.sequence, checkpointsChecked: trusted.length,
    };
  }
  const query = (sql: string, params: unknown[]) => read(dataSource, (m) => queryWith<RawChainRow[]>(m, sql, params));
  const recorded = { sequence: head.sequence, hash: head.hash };
  // A long chain or range is recomputed on threads with connections of their own (to the SQLite file, or
  // to PostgreSQL), off the event loop; anything they do not find valid is verified again below, which
  // names the first failure.
  const file = sqliteFile(dataSource);
  const postgres = file ? undefined : postgresOptions(dataSource);
  const parallel =
    file || postgres ? await verifyOnThreads({ file, postgres }, query, tenant, { anchor, head: recorded, from: Math.max(from, anchor.sequence + 1), to, checkpoints: trusted }) : null;
  const result =
    parallel ??
    (await verifyChain(chainBatches(query, tenant, from, to), {
      anchor,
      from,
      to: range.toSequence != null ? to : undefined,
      head: recorded,
      checkpoints: trusted,
    }));
  if (!result.valid || to < head.sequence) return result;
  // Entries past the recorded head that no writer put there: one statement, so one snapshot of both.
  const [tail] = (await read(dataSource, (m) =>
    queryWith(m, `SELECT (SELECT MAX("sequence") FROM "audit_log" WHERE "tenant_id" = ?) AS "last", (SELECT "sequence" FROM "audit_chain_head" WHERE "tenant_id" = ?) AS "head"`, [tenant, tenant]),
  )) as Array<{ last: number | string | null; head: number | string | null }>;
  const last = Number(tail?.last ?? 0);
  const current = Number(tail?.head ?? 0);
  if (last > current) {
    return { ...result, valid: false, reason: ChainFailure.HeadMismatch, firstInvalidSequence: current + 1, detail: `entries go on past the recorded head ${current}` };
  }
  return result;
}

/**
 * A chain, or a range of it, of PARALLEL_FROM entries or more, recomputed on threads (chain-workers.ts); null
 * when it is shorter, or when the threads did not find it valid (the caller then verifies it sequentially,
 * which names the first failure). A range starts from the entry before it as its first entry names it (as
 * the sequential check takes that previousHash as given) and ends at the hash stored at its end.
 */
async function verifyOnThreads(
  source: { file?: string; postgres?: Record<string, unknown> },
  query: (sql: string, params: unknown[]) => Promise<RawChainRow[]>,
  tenant: string,
  chain: { anchor: ChainHead; head: ChainHead; from: number; to: number; checkpoints: Array<{ sequence: number; hash: string }> },
): Promise<ChainVerification | null> {
  const { anchor, head, from, to } = chain;
  if (to - from + 1 < PARALLEL_FROM) return null;
  const at = async (sequence: number) =>
    (await query(`SELECT "hash", "previous_hash" FROM "audit_log" WHERE "tenant_id" = ? AND "sequence" = ?`, [tenant, sequence]))[0] as { hash: string; previous_hash: string } | undefined;
  const first = from === anchor.sequence + 1 ? undefined : await at(from);
  const last = to === head.sequence ? undefined : await at(to);
  if ((from !== anchor.sequence + 1 && !first) || (to !== head.sequence && !last)) return null;
  const start = first ? { sequence: from - 1, hash: first.previous_hash } : anchor;
  const end = last ? { sequence: to, hash: last.hash } : head;
  const checkpoints = chain.checkpoints.filter((c) => c.sequence >= from && c.sequence <= to);
  const result = await verifyInParallel({ ...source, tenant, anchor: start, head: end, checkpoints, workers: Math.max(1, defaultVerifyWorkers() - 1) });
  return result && { ...result, anchorSequence: anchor.sequence };
}
