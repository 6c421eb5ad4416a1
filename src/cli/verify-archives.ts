/** `auditql verify --archives`: one chain through the retention archives and on into the live table. */
import { readdirSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { GENESIS_HASH, type ChainRow } from '../shared/chain/canonical.js';
import { verifyCheckpointWithAny } from '../shared/chain/checkpoint.js';
import { ChainFailure, entryFailure, verifyChain, type ChainVerification, type TrustedCheckpoint } from '../shared/chain/verify.js';
import { classifyLine, type ArchiveCheckpoint, type ArchiveHeader } from '../shared/chain/archive.js';
import type { ChainHead } from '../shared/chain/link.js';
import { asInputError, entryRow, failure, ndjsonObjects, type TenantVerification } from './verify-input.js';

/** An archive file as `--archives` sorts it: its header and the start record before its first entry. */
export interface ArchiveSummary {
  path: string;
  header: ArchiveHeader;
  start: ArchiveCheckpoint | null;
}

/** The header and start record of an archive (reading stops at its first entry); null for a file that is no archive. */
export async function readArchiveSummary(path: string): Promise<ArchiveSummary | null> {
  let header: ArchiveHeader | null = null;
  let start: ArchiveCheckpoint | null = null;
  for await (const { value } of ndjsonObjects(path)) {
    const line = classifyLine(value);
    if (line.kind === 'header') header = line.header;
    else if (line.kind === 'checkpoint' && line.checkpoint.checkpoint === 'start') start = line.checkpoint;
    else break;
  }
  return header ? { path, header, start } : null;
}

/** Every archive in `dir` (`*.ndjson.gz`, `*.ndjson`), by tenant, in chain order. */
export async function readArchiveDir(dir: string): Promise<Map<string, ArchiveSummary[]>> {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (error) {
    throw asInputError(error, dir) ?? error;
  }
  const byTenant = new Map<string, ArchiveSummary[]>();
  for (const name of names) {
    if (!/\.ndjson(\.gz)?$/.test(name)) continue;
    const summary = await readArchiveSummary(join(dir, name));
    if (!summary) continue;
    byTenant.set(summary.header.tenant, [...(byTenant.get(summary.header.tenant) ?? []), summary]);
  }
  for (const files of byTenant.values()) files.sort((a, b) => a.header.fromSequence - b.header.fromSequence);
  return byTenant;
}



const keysOf = (archive: ArchiveSummary, keys?: readonly KeyObject[]) => (keys?.length ? keys : [createPublicKey(archive.header.publicKey.pem)]);

/** The live table's part of a chain walked through archives: its own anchor, its recorded head, its rows from a sequence on. */
export interface LiveChain {
  anchor: ChainHead;
  head: ChainHead;
  batches: (from: number) => AsyncIterable<ChainRow[]>;
}

interface ArchiveOptions {
  archiveKeys?: readonly KeyObject[];
  checkpoints?: Map<string, TrustedCheckpoint[]>;
}

/**
 * One chain through archives (oldest first) and then, optionally, the live table. It starts at the first
 * archive's start record (the genesis for the first archive of a tenant), and each archive must end at its
 * signed end checkpoint. Entries two archives both hold (a purge interrupted after its file was written ran
 * again) are recomputed in both, and must be the same. The live table is verified from its own anchor, as
 * plain `verify` does (entries an archive also holds included: an interrupted purge leaves them in both),
 * and must join the archives: they reach its anchor and hold the hash it names, and where both hold an
 * entry they hold the same one.
 */
export async function verifyThroughArchives(tenant: string, archives: ArchiveSummary[], live: LiveChain | null, options: ArchiveOptions): Promise<TenantVerification> {
  const start = await archiveStart(tenant, archives[0]!, options.archiveKeys);
  const through = { archives: archives.length, anchorSigned: start.anchorSigned };
  if (start.failure) return { ...start.failure, ...through };
  const held = options.checkpoints?.get(tenant) ?? [];
  // With a live table, the checkpoints past its anchor are held against its rows (as plain `verify` does), and
  // those before against the archives; the archives alone would miss the checkpoints past their end.
  const forArchives = live ? held.filter((c) => c.sequence <= live.anchor.sequence) : held;
  const walk = await walkArchives(tenant, archives, start.anchor, forArchives, live?.anchor.sequence, options.archiveKeys);
  if (walk.problem) return { ...walk.problem, ...through };
  const archived = { ...walk.result, checkpointsChecked: walk.result.checkpointsChecked + walk.endsChecked };
  if (!live || !archived.valid) return { tenant, ...archived, ...through };
  return { ...(await joinLive(tenant, start.anchor, walk, archived, live, held)), ...through };
}

/** Where the first archive starts: the genesis, or its start checkpoint once its signature is checked. */
async function archiveStart(tenant: string, first: ArchiveSummary, keys?: readonly KeyObject[]): Promise<{ anchor: ChainHead; anchorSigned: boolean | null; failure?: TenantVerification }> {
  const genesis = { sequence: 0, hash: GENESIS_HASH };
  if (!first.start) {
    if (first.header.fromSequence === 1) return { anchor: genesis, anchorSigned: null };
    return { anchor: genesis, anchorSigned: null, failure: failure(tenant, ChainFailure.SequenceGap, 1, `${first.path} starts at ${first.header.fromSequence} without a start checkpoint`, genesis, 0) };
  }
  const anchor = { sequence: first.start.sequence, hash: first.start.hash };
  if (!first.start.jws) return { anchor, anchorSigned: false };
  const signed = await verifyCheckpointWithAny(first.start.jws, keysOf(first, keys));
  if (!signed || signed.tenant !== tenant || signed.sequence !== anchor.sequence || signed.hash !== anchor.hash) {
    return { anchor, anchorSigned: false, failure: failure(tenant, ChainFailure.CheckpointSignature, anchor.sequence, `the start checkpoint of ${first.path} does not verify with the public key`, anchor, anchor.sequence) };
  }
  return { anchor, anchorSigned: true };
}

interface ArchiveWalk {
  /** The archives' entries, each sequence counted once. */
  result: ChainVerification;
  /** A failure the recomputation alone does not see (an end checkpoint, an entry two archives hold differently). */
  problem: TenantVerification | null;
  /** The last entry the archives hold (their start when they hold none). */
  covered: ChainHead;
  /** The archives' hash at the sequence asked for (the live table's anchor), when they hold it. */
  hashAt: string | undefined;
  endsChecked: number;
}

/**
 * Recomputes every entry of the archives. Entries past what earlier archives covered go to verifyChain as one
 * stream; entries an earlier archive covered already are recomputed here, linked within their own file, and
 * the last of them must be the very entry the earlier archive holds there (hash chaining makes the rest equal).
 */
async function walkArchives(tenant: string, archives: ArchiveSummary[], anchor: ChainHead, checkpoints: readonly TrustedCheckpoint[], wanted: number | undefined, keys?: readonly KeyObject[]): Promise<ArchiveWalk> {
  const state: Omit<ArchiveWalk, 'result'> = { problem: null, covered: anchor, hashAt: wanted === anchor.sequence ? anchor.hash : undefined, endsChecked: 0 };
  const fail = (reason: ChainFailure, sequence: number, detail: string, head: ChainHead) => (state.problem = failure(tenant, reason, sequence, detail, head, anchor.sequence));
  async function* batches(): AsyncGenerator<ChainRow[]> {
    for (const archive of archives) {
      let batch: ChainRow[] = [];
      let fileLast: ChainHead = archive.start ? { sequence: archive.start.sequence, hash: archive.start.hash } : { sequence: 0, hash: GENESIS_HASH };
      let ended = false;
      for await (const { value, line } of ndjsonObjects(archive.path)) {
        const kind = classifyLine(value);
        if (kind.kind === 'entry') {
          const row = entryRow(kind.entry, archive.path, line);
          if (row.tenantId !== tenant) continue;
          if (row.sequence <= state.covered.sequence) {
            const wrong = overlapFailure(row, fileLast, state.covered, archive.path);
            if (wrong) {
              // The entries before it are recomputed first: a failure among them comes first.
              if (batch.length > 0) yield batch;
              fail(wrong.reason, wrong.sequence, wrong.detail, state.covered);
              return;
            }
            fileLast = { sequence: row.sequence, hash: row.hash };
            continue;
          }
          if (row.sequence === wanted) state.hashAt = row.hash;
          batch.push(row);
          fileLast = state.covered = { sequence: row.sequence, hash: row.hash };
          if (batch.length >= 5000) {
            yield batch;
            batch = [];
          }
        } else if (kind.kind === 'checkpoint' && kind.checkpoint.checkpoint === 'end') {
          ended = true;
          // The verifier first recomputes every entry before the checkpoint, then the checkpoint is held against the last.
          if (batch.length > 0) yield batch;
          batch = [];
          const end = kind.checkpoint;
          const signed = end.jws ? await verifyCheckpointWithAny(end.jws, keysOf(archive, keys)) : null;
          if (!signed || signed.tenant !== tenant || signed.sequence !== end.sequence || signed.hash !== end.hash) {
            fail(ChainFailure.CheckpointSignature, end.sequence, `the end checkpoint of ${archive.path} does not verify with the public key`, fileLast);
            return;
          }
          if (fileLast.sequence !== signed.sequence || fileLast.hash !== signed.hash) {
            fail(ChainFailure.CheckpointMismatch, signed.sequence, `${archive.path} does not end at the entry its signed checkpoint names (${signed.sequence}): it was rewritten or cut`, fileLast);
            return;
          }
          state.endsChecked++;
        }
      }
      if (batch.length > 0) yield batch;
      if (!ended) {
        fail(ChainFailure.HeadMismatch, fileLast.sequence + 1, `${archive.path} has no end checkpoint: it was cut short`, fileLast);
        return;
      }
    }
  }
  const result = await verifyChain(batches(), { anchor, checkpoints });
  return { ...state, result };
}

/** What is wrong with an entry an earlier archive already holds, as this file has it after `previous`; null when nothing. */
function overlapFailure(row: ChainRow, previous: ChainHead, covered: ChainHead, path: string): { reason: ChainFailure; sequence: number; detail: string } | null {
  if (row.sequence <= previous.sequence) return { reason: ChainFailure.DuplicateSequence, sequence: row.sequence, detail: `${path} holds entry ${row.sequence} after entry ${previous.sequence}` };
  if (row.sequence > previous.sequence + 1) return { reason: ChainFailure.SequenceGap, sequence: previous.sequence + 1, detail: `${path} lacks entry ${previous.sequence + 1} (the next one is ${row.sequence})` };
  if (row.previousHash !== previous.hash) return { reason: ChainFailure.PreviousHashMismatch, sequence: row.sequence, detail: `previousHash of entry ${row.sequence} in ${path} does not match the hash of entry ${previous.sequence}` };
  const own = entryFailure(row);
  if (own) return { ...own, sequence: row.sequence };
  if (row.sequence === covered.sequence && row.hash !== covered.hash) {
    return { reason: ChainFailure.CheckpointMismatch, sequence: row.sequence, detail: `entry ${row.sequence} in ${path} is not the one an earlier archive holds (both are signed at their end): one of them was rewritten` };
  }
  return null;
}

/**
 * The live table after the archives: every live row recomputed from the table's own anchor, and the two
 * joined where they meet. The later of the two starts must be an entry both hold alike (the archives' hash
 * at the live anchor, or the live hash at the archives' start), and the live table must hold the archives'
 * last entry as they do, unless its anchor is already past it (then nothing overlaps).
 */
async function joinLive(tenant: string, start: ChainHead, walk: ArchiveWalk, archived: ChainVerification, live: LiveChain, held: readonly TrustedCheckpoint[]): Promise<TenantVerification> {
  const { covered } = walk;
  const broken = (reason: ChainFailure, sequence: number, detail: string, head: ChainHead) => failure(tenant, reason, sequence, detail, head, start.sequence);
  if (covered.sequence < live.anchor.sequence) {
    return broken(ChainFailure.SequenceGap, covered.sequence + 1, `the archives end at ${covered.sequence}; the live table starts after its anchor ${live.anchor.sequence}`, covered);
  }
  if (live.anchor.sequence >= start.sequence && walk.hashAt !== live.anchor.hash) {
    return broken(ChainFailure.CheckpointMismatch, live.anchor.sequence, `the live table's anchor ${live.anchor.sequence} is not the entry the archives hold at ${live.anchor.sequence}`, covered);
  }
  const seen = new Map<number, string>([[live.anchor.sequence, live.anchor.hash]]);
  async function* watched(): AsyncGenerator<ChainRow[]> {
    for await (const batch of live.batches(live.anchor.sequence + 1)) {
      for (const row of batch) if (row.sequence === covered.sequence || row.sequence === start.sequence) seen.set(row.sequence, row.hash);
      yield batch;
    }
  }
  const result = await verifyChain(watched(), { anchor: live.anchor, head: live.head, checkpoints: held });
  if (!result.valid) return { tenant, ...result, anchorSequence: start.sequence };
  if (!seen.has(covered.sequence)) {
    return broken(ChainFailure.HeadMismatch, result.headSequence + 1, `the live table ends at ${result.headSequence}, before entries the archives hold (up to ${covered.sequence})`, { sequence: result.headSequence, hash: result.headHash });
  }
  if (live.anchor.sequence < start.sequence && seen.get(start.sequence) !== start.hash) {
    return broken(ChainFailure.CheckpointMismatch, start.sequence, `entry ${start.sequence} in the live table is not the one the archives start from`, covered);
  }
  if (seen.get(covered.sequence) !== covered.hash) {
    return broken(ChainFailure.CheckpointMismatch, covered.sequence, `entry ${covered.sequence} in the live table is not the one the archives hold (signed at their end): the live table was rewritten at or before it`, covered);
  }
  // Entries both hold are counted once.
  const overlap = covered.sequence - Math.max(live.anchor.sequence, start.sequence);
  return {
    tenant,
    ...result,
    checked: archived.checked + result.checked - overlap,
    anchorSequence: start.sequence,
    checkpointsChecked: archived.checkpointsChecked + result.checkpointsChecked,
  };
}

