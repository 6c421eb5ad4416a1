/**
 * Verification of a tenant's chain over a stream of row batches, in sequence order. Pure: it reads nothing
 * itself, so the server (batches from its read path, with a pause between them), the CLI (a SQLite file or
 * an export) and, later, a worker thread feed it the same way.
 */
import { entryHash, GENESIS_HASH, HASH_VERSION, HASH_VERSION_GROUPED, MalformedEntry, type ChainRow } from './canonical.js';

const knownVersion = (version: number) => version === HASH_VERSION || version === HASH_VERSION_GROUPED;
import type { ChainHead } from './link.js';

/** Why a chain does not verify. A closed set: clients may switch on it. */
export const ChainFailure = {
  /** The entry's stored hash is not the hash of its facts and the previous hash: its facts were changed. */
  HashMismatch: 'HASH_MISMATCH',
  /** The entry's previousHash is not the hash of the entry before it (or of the anchor). */
  PreviousHashMismatch: 'PREVIOUS_HASH_MISMATCH',
  /** An entry is missing: the sequence jumps. */
  SequenceGap: 'SEQUENCE_GAP',
  /** Two entries claim one sequence number. */
  DuplicateSequence: 'DUPLICATE_SEQUENCE',
  /** The entries end before, or go on past, the recorded head: the tail was cut or extended. */
  HeadMismatch: 'HEAD_MISMATCH',
  /** A signed checkpoint names a hash the chain does not have at its sequence (the chain was rewritten). */
  CheckpointMismatch: 'CHECKPOINT_MISMATCH',
  /** A checkpoint's signature does not verify with the checkpoint key. */
  CheckpointSignature: 'CHECKPOINT_SIGNATURE',
  /** The entry names a hash version this verifier does not know. */
  UnknownHashVersion: 'UNKNOWN_HASH_VERSION',
  /** The entry cannot be read as a chain entry (bad JSON, a personal value without salt or digest…). */
  MalformedEntry: 'MALFORMED_ENTRY',
} as const;
export type ChainFailure = (typeof ChainFailure)[keyof typeof ChainFailure];

export interface ChainVerification {
  valid: boolean;
  /** Entries whose hash was recomputed. */
  checked: number;
  firstInvalidSequence: number | null;
  reason: ChainFailure | null;
  /** A sentence for people. */
  detail: string | null;
  /** The last entry verified (the anchor when there was none). */
  headSequence: number;
  headHash: string;
  /** Where the chain started: 0 and the genesis hash unless retention re-anchored it. */
  anchorSequence: number;
  checkpointsChecked: number;
}

/** A checkpoint whose signature has been checked already. */
export interface TrustedCheckpoint {
  sequence: number;
  hash: string;
}

export interface VerifyOptions {
  /** Where the chain starts (retention moves it). @default { sequence: 0, hash: GENESIS_HASH } */
  anchor?: ChainHead;
  /**
   * The first sequence to verify. Past the anchor, the first row's stored previousHash is taken as given
   * (only a range is checked). @default anchor.sequence + 1
   */
  from?: number;
  /** The recorded head: the rows must end exactly there (when the stream is not cut short by `to`). */
  head?: ChainHead;
  /** The stream stops at this sequence on purpose (a range check): the head is then not required. */
  to?: number;
  checkpoints?: readonly TrustedCheckpoint[];
}

/**
 * Whether one entry's stored hash is the hash of its facts and its stored previousHash: null when it is,
 * else why not. (Linking to the entry before is the caller's business.)
 */
export function entryFailure(row: ChainRow): { reason: ChainFailure; detail: string } | null {
  if (!knownVersion(row.hashVersion)) return { reason: ChainFailure.UnknownHashVersion, detail: `hash version ${row.hashVersion} is not known` };
  try {
    // Stored JSON is in JCS form; text that is not (edited by hand, or by older code) is re-canonicalised
    // before the entry is called broken.
    if (entryHash(row, row.previousHash) !== row.hash && entryHash(row, row.previousHash, true) !== row.hash) {
      return { reason: ChainFailure.HashMismatch, detail: `the facts of entry ${row.sequence} do not match its hash` };
    }
  } catch (error) {
    if (error instanceof MalformedEntry) return { reason: ChainFailure.MalformedEntry, detail: error.message };
    throw error;
  }
  return null;
}

export async function verifyChain(batches: AsyncIterable<readonly ChainRow[]> | Iterable<readonly ChainRow[]>, options: VerifyOptions = {}): Promise<ChainVerification> {
  const anchor = options.anchor ?? { sequence: 0, hash: GENESIS_HASH };
  const from = Math.max(options.from ?? anchor.sequence + 1, anchor.sequence + 1);
  const to = options.to ?? Infinity;
  const checkpoints = [...(options.checkpoints ?? [])].filter((c) => c.sequence >= from && c.sequence <= to).sort((a, b) => a.sequence - b.sequence);
  let nextCheckpoint = 0;
  let expected = from;
  let previousHash: string | undefined = from === anchor.sequence + 1 ? anchor.hash : undefined;
  let last: ChainHead = { sequence: from - 1, hash: previousHash ?? '' };
  let checked = 0;

  const result = (reason: ChainFailure | null, sequence: number | null, detail: string | null): ChainVerification => ({
    valid: reason === null,
    checked,
    firstInvalidSequence: sequence,
    reason,
    detail,
    headSequence: last.sequence,
    headHash: last.hash,
    anchorSequence: anchor.sequence,
    checkpointsChecked: nextCheckpoint,
  });

  for await (const batch of batches) {
    for (const row of batch) {
      if (row.sequence > to) break;
      if (row.sequence < expected) {
        if (row.sequence === expected - 1) return result(ChainFailure.DuplicateSequence, row.sequence, `two entries have sequence ${row.sequence}`);
        if (row.sequence < from) continue;
        return result(ChainFailure.SequenceGap, expected, `sequence ${row.sequence} follows ${expected - 1}`);
      }
      if (row.sequence > expected) {
        if (options.head && expected > options.head.sequence) {
          return result(ChainFailure.HeadMismatch, expected, `entries go on past the recorded head ${options.head.sequence}`);
        }
        return result(ChainFailure.SequenceGap, expected, `entry ${expected} is missing (the next one is ${row.sequence})`);
      }
      if (options.head && row.sequence > options.head.sequence) {
        return result(ChainFailure.HeadMismatch, row.sequence, `entries go on past the recorded head ${options.head.sequence}`);
      }
      if (!knownVersion(row.hashVersion)) return result(ChainFailure.UnknownHashVersion, row.sequence, `hash version ${row.hashVersion} is not known`);
      if (previousHash !== undefined && row.previousHash !== previousHash) {
        return result(ChainFailure.PreviousHashMismatch, row.sequence, `previousHash does not match the hash of entry ${row.sequence - 1}`);
      }
      const failure = entryFailure(row);
      if (failure) {
        if (failure.reason === ChainFailure.HashMismatch) checked++;
        return result(failure.reason, row.sequence, failure.detail);
      }
      checked++;
      last = row;
      previousHash = row.hash;
      expected = row.sequence + 1;
      while (nextCheckpoint < checkpoints.length && checkpoints[nextCheckpoint]!.sequence === row.sequence) {
        if (checkpoints[nextCheckpoint]!.hash !== row.hash) {
          return result(ChainFailure.CheckpointMismatch, row.sequence, `the signed checkpoint at ${row.sequence} has another hash: the chain was rewritten up to here`);
        }
        nextCheckpoint++;
      }
    }
  }
  // A cut tail is reported where it begins: the recorded head is checked before the checkpoints past the end.
  if (options.head && to >= options.head.sequence && last.sequence < options.head.sequence) {
    return result(ChainFailure.HeadMismatch, last.sequence + 1, `the entries end at ${last.sequence}; the recorded head is ${options.head.sequence}`);
  }
  if (nextCheckpoint < checkpoints.length) {
    const missing = checkpoints[nextCheckpoint]!;
    return result(ChainFailure.CheckpointMismatch, missing.sequence, `the chain ends at ${last.sequence}, before the signed checkpoint at ${missing.sequence}`);
  }
  if (options.head && to >= options.head.sequence) {
    if (last.sequence === options.head.sequence && last.hash !== options.head.hash) {
      return result(ChainFailure.HeadMismatch, last.sequence, 'the last entry is not the recorded head');
    }
  }
  return result(null, null, null);
}
