import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { loadConfig, parseDatabaseUrl } from '../config.js';
import { GENESIS_HASH, type ChainRow } from '../shared/chain/canonical.js';
import { keyIdOf, publicKeysFromPem, verifyCheckpointWithAny, type CheckpointFile } from '../shared/chain/checkpoint.js';
import { chainBatches } from '../shared/chain/rows.js';
import { chainRowFromExport } from '../shared/chain/export-row.js';

export { chainRowFromExport };
import { defaultVerifyWorkers, verifyInParallel } from '../db/chain-workers.js';
import { ChainFailure, verifyChain, type ChainVerification, type TrustedCheckpoint } from '../shared/chain/verify.js';
import { classifyLine, ndjsonLines, type ArchiveCheckpoint, type ArchiveHeader } from '../shared/chain/archive.js';
import type { ChainHead } from '../shared/chain/link.js';
import { GENERATED_KEY_FILE } from '../services/checkpoint-key.js';

/**
 * Entries read per batch. Small enough that a batch's rows die young: at 5,000 the rows of a batch outlived
 * the young generation and verification spent a third of its time in the garbage collector (measured:
 * 500 per batch halved its CPU time).
 */
const VERIFY_BATCH = 500;

/** Shorter chains are verified on this thread: starting threads costs more than it saves. */
const PARALLEL_FROM = 20_000;

export interface TenantVerification extends ChainVerification {
  tenant: string;
  /** Archives the chain was walked through before the live table (`--archives`). */
  archives?: number;
  /** Whether the anchor the chain started from was checked against its signed checkpoint (null: it starts at the genesis). */
  anchorSigned?: boolean | null;
}

/** Checkpoints from a downloaded file, by tenant, after checking each signature; or the first bad one. */
export async function readCheckpointFile(path: string, publicKeys?: readonly KeyObject[]): Promise<{ keyId: string; keys: KeyObject[]; byTenant: Map<string, TrustedCheckpoint[]>; bad: Map<string, number> }> {
  const file = JSON.parse(readFileSync(path, 'utf8')) as CheckpointFile;
  if (file.format !== 'auditql-checkpoints' || !Array.isArray(file.checkpoints)) throw new Error(`${path} is not an auditql checkpoint file`);
  // The keys given, or the file's: its current key and the keys that one replaced.
  const keys = publicKeys?.length ? [...publicKeys] : [file.publicKey, ...(file.previousPublicKeys ?? [])].map((k) => createPublicKey(k.pem));
  const byTenant = new Map<string, TrustedCheckpoint[]>();
  const bad = new Map<string, number>();
  for (const checkpoint of file.checkpoints) {
    // Only what the signature covers counts: the payload, not the unsigned fields beside it.
    const signed = await verifyCheckpointWithAny(checkpoint.jws, keys);
    if (!signed) {
      if (!bad.has(checkpoint.tenant)) bad.set(checkpoint.tenant, checkpoint.sequence);
      continue;
    }
    byTenant.set(signed.tenant, [...(byTenant.get(signed.tenant) ?? []), { sequence: signed.sequence, hash: signed.hash }]);
  }
  return { keyId: keys.map(keyIdOf).join(', '), keys, byTenant, bad };
}

const signatureFailure = (tenant: string, sequence: number): TenantVerification => ({
  tenant, valid: false, checked: 0, firstInvalidSequence: sequence, reason: ChainFailure.CheckpointSignature,
  detail: `the checkpoint at ${sequence} does not verify with the public key`, headSequence: 0, headHash: GENESIS_HASH, anchorSequence: 0, checkpointsChecked: 0,
});

/**
 * Verifies every tenant's chain (or the given ones) in a SQLite file, read-only, inside one read transaction,
 * so that head, rows and tail are one snapshot even while a server writes: anything past the recorded head
 * is then a forgery, not a race. Chains of PARALLEL_FROM entries or more are recomputed on `workers` threads
 * (default: one per core; 1 keeps everything on this thread), each reading ranges of the chain; a chain
 * they do not find valid is verified again here, in this snapshot, which describes the first failure.
 */
export interface DatabaseVerifyOptions {
  tenants?: string[];
  checkpoints?: Map<string, TrustedCheckpoint[]>;
  badCheckpoints?: Map<string, number>;
  /** Checks the anchor each chain starts from against its signed checkpoint; without any the anchor is reported unchecked. */
  anchorKeys?: readonly KeyObject[];
  /** Archives by tenant (`--archives`): the chain is walked from their start through them, then the live table. */
  archives?: Map<string, ArchiveSummary[]>;
  /** The keys that check the archives' checkpoints. @default the key each archive names */
  archiveKeys?: readonly KeyObject[];
  /** Threads that recompute hashes for long chains. @default the cores less one */
  workers?: number;
}

export async function verifyDatabaseFile(path: string, options: DatabaseVerifyOptions = {}): Promise<TenantVerification[]> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const columns = db.prepare(`SELECT "name" FROM pragma_table_info('audit_log')`).all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'sequence')) throw new Error(`${path} has no chain yet: run \`auditql migrate\` (or start the server) first`);
    db.exec('BEGIN');
    const tenants =
      options.tenants ??
      [
        ...new Set([
          ...(db.prepare(`SELECT "tenant_id" AS "t" FROM "audit_chain_head" UNION SELECT DISTINCT "tenant_id" FROM "audit_log" ORDER BY 1`).all() as Array<{ t: string }>).map((r) => r.t),
          ...(options.archives?.keys() ?? []),
          // A tenant the signed checkpoints know must still be here: one whose rows and head were deleted
          // together fails against its checkpoints instead of going unmentioned.
          ...(options.checkpoints?.keys() ?? []),
          ...(options.badCheckpoints?.keys() ?? []),
        ]),
      ].sort();
    const lastOf = db.prepare(`SELECT MAX("sequence") AS "last" FROM "audit_log" WHERE "tenant_id" = ?`);
    const anchorCheckpoints = db.prepare(`SELECT "jws" FROM "audit_checkpoint" WHERE "tenant_id" = ? AND "sequence" = ? AND "hash" = ?`);
    const headOf = db.prepare(`SELECT "sequence", "hash", "anchor_sequence", "anchor_hash" FROM "audit_chain_head" WHERE "tenant_id" = ?`);
    const statements = new Map<string, Database.Statement>();
    const query = (sql: string, params: unknown[]) => {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = db.prepare(sql).raw(true)));
      return statement.all(...params) as unknown[][];
    };
    const results: TenantVerification[] = [];
    for (const tenant of tenants) {
      const bad = options.badCheckpoints?.get(tenant);
      if (bad !== undefined) {
        results.push(signatureFailure(tenant, bad));
        continue;
      }
      const head = headOf.get(tenant) as { sequence: number; hash: string; anchor_sequence: number; anchor_hash: string } | undefined;
      // A tenant asked for by name that has no chain here at all: nothing to vouch for it, which is not "valid".
      if (!head && options.tenants?.includes(tenant) && !options.checkpoints?.has(tenant) && !options.archives?.has(tenant) && (lastOf.get(tenant) as { last: number | null }).last === null) {
        results.push({ ...failure(tenant, ChainFailure.HeadMismatch, 1, `tenant ${tenant} has no chain in this database (no recorded head, no entries)`, { sequence: 0, hash: GENESIS_HASH }, 0), anchorSigned: null });
        continue;
      }
      const anchor = head ? { sequence: Number(head.anchor_sequence), hash: head.anchor_hash } : { sequence: 0, hash: GENESIS_HASH };
      const recorded = head ? { sequence: Number(head.sequence), hash: head.hash } : { sequence: 0, hash: GENESIS_HASH };
      const archives = options.archives?.get(tenant);
      if (archives && archives.length > 0) {
        results.push(await verifyThroughArchives(tenant, archives, (from) => chainBatches(query, tenant, from, Infinity, VERIFY_BATCH), recorded, options));
        continue;
      }
      let anchorSigned: boolean | null = null;
      if (anchor.sequence > 0 && options.anchorKeys?.length) {
        const candidates = anchorCheckpoints.all(tenant, anchor.sequence, anchor.hash) as Array<{ jws: string }>;
        anchorSigned = false;
        for (const { jws } of candidates) {
          const signed = await verifyCheckpointWithAny(jws, options.anchorKeys);
          if (signed && signed.tenant === tenant && signed.sequence === anchor.sequence && signed.hash === anchor.hash) anchorSigned = true;
        }
        if (!anchorSigned) {
          results.push({ tenant, ...unsignedAnchor(anchor, recorded), anchorSigned });
          continue;
        }
      }
      const checkpoints = options.checkpoints?.get(tenant) ?? [];
      const workers = options.workers ?? defaultVerifyWorkers();
      // Threads for long chains, when nothing lies past the recorded head in this snapshot (else the
      // sequential run below says so); any failure is looked at again below, in this snapshot.
      const parallel =
        workers > 1 && recorded.sequence - anchor.sequence >= PARALLEL_FROM && Number((lastOf.get(tenant) as { last: number | null }).last ?? 0) <= recorded.sequence
          ? await verifyInParallel({ file: path, tenant, anchor, head: recorded, checkpoints, workers, batchSize: VERIFY_BATCH })
          : null;
      const result = parallel ?? (await verifyChain(chainBatches(query, tenant, anchor.sequence + 1, Infinity, VERIFY_BATCH), { anchor, head: recorded, checkpoints }));
      results.push({ tenant, ...result, anchorSigned: anchor.sequence > 0 ? anchorSigned : null });
    }
    db.exec('COMMIT');
    return results;
  } finally {
    db.close();
  }
}

/**
 * Verifies an export file offline: per tenant, its rows in sequence order (a newest-first export verifies
 * as well as an oldest-first one; the order of lines is not evidence, the sequence is). A file that starts
 * at sequence 1 starts from the genesis hash; one that starts later takes its first row's previousHash as given.
 */
export async function verifyExportFile(path: string, checkpoints?: Map<string, TrustedCheckpoint[]>, archiveKeys?: readonly KeyObject[]): Promise<TenantVerification[]> {
  const archive = await readArchiveSummary(path);
  if (archive) return [await verifyThroughArchives(archive.header.tenant, [archive], null, null, { archiveKeys, checkpoints })];
  const lines = ndjsonLines(path);
  const byTenant = new Map<string, ChainRow[]>();
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const row = chainRowFromExport(JSON.parse(line) as Record<string, unknown>);
    const rows = byTenant.get(row.tenantId);
    if (rows) rows.push(row);
    else byTenant.set(row.tenantId, [row]);
  }
  const results: TenantVerification[] = [];
  for (const [tenant, rows] of byTenant) {
    // Stable: two lines claiming one sequence stay in file order, and are reported as a duplicate.
    rows.sort((a, b) => a.sequence - b.sequence);
    // A file that starts past sequence 1 (an export read after a purge, or cut) starts from the hash its
    // first line names: reported as its anchor, signed when a kept checkpoint vouches for it.
    const first = rows[0]!;
    const anchor = first.sequence === 1 ? undefined : { sequence: first.sequence - 1, hash: first.previousHash };
    const held = checkpoints?.get(tenant) ?? [];
    const result = await verifyChain([rows], { anchor, checkpoints: held });
    const anchorSigned = anchor ? held.some((c) => c.sequence === anchor.sequence && c.hash === anchor.hash) : null;
    results.push({ tenant, ...result, anchorSigned });
  }
  return results;
}

export function describe(result: TenantVerification): string {
  if (result.valid) {
    const signed = result.anchorSigned === true ? ' (signed checkpoint)' : result.anchorSigned === false ? ' (taken as given: no signed checkpoint)' : result.anchorSequence > 0 ? ' (its signature not checked: no key)' : '';
    const through = result.archives ? `, through ${result.archives} archive${result.archives === 1 ? '' : 's'}` : '';
    const anchor = result.anchorSequence > 0 ? `, from anchor ${result.anchorSequence}${signed}${through}` : result.archives ? `, from the genesis${through}` : '';
    return `${result.tenant}: valid, ${result.checked} entries${anchor}, head ${result.headSequence} ${result.headHash.slice(0, 16)}…, ${result.checkpointsChecked} checkpoints held`;
  }
  return `${result.tenant}: BROKEN at sequence ${result.firstInvalidSequence}: ${result.reason} (${result.detail})`;
}

/**
 * The server's own keys, those this machine has (CHECKPOINT_PRIVATE_KEY, the keys it replaced in
 * CHECKPOINT_PREVIOUS_KEYS, and the one generated next to the database): enough to check that each chain's
 * anchor is a checkpoint the server signed.
 */
function serverKeys(database: string): KeyObject[] {
  const keys: KeyObject[] = [];
  const add = (read: () => KeyObject[]) => {
    try {
      keys.push(...read());
    } catch {
      // An unreadable key checks nothing; the anchor is then reported as not checked.
    }
  };
  add(() => publicKeysFromPem(process.env.CHECKPOINT_PRIVATE_KEY ?? ''));
  add(() => publicKeysFromPem(process.env.CHECKPOINT_PREVIOUS_KEYS ?? ''));
  const file = join(dirname(database), GENERATED_KEY_FILE);
  add(() => (existsSync(file) ? [createPublicKey(createPrivateKey(readFileSync(file, 'utf8')))] : []));
  return keys;
}

/** `auditql verify`: one line per tenant; exit status 0 when every chain verifies, 1 otherwise. */
export function verifyCommand(program: Command): void {
  program
    .command('verify')
    .description('recompute the tamper-evident chain of every tenant (or one) and hold it against signed checkpoints')
    .option('--database <path>', 'the SQLite file (default: DATABASE_URL)')
    .option('--tenant <tenant...>', 'only these tenants (default: every tenant)')
    .option('--checkpoints <file>', 'a checkpoint file downloaded from GET /checkpoints; detects a rewrite that recomputed every later hash')
    .option('--public-key <file...>', 'PEM public keys to check the checkpoints with: the current one and any it replaced (default: those in the checkpoint file)')
    .option('--file <export>', 'verify an export or a retention archive (NDJSON, optionally .gz) instead of a database')
    .option('--archives <dir>', 'walk the retention archives in this folder first, then the database, as one chain from the genesis')
    .action(async (options: { database?: string; tenant?: string[]; checkpoints?: string; publicKey?: string[]; file?: string; archives?: string }) => {
      const givenKeys = options.publicKey?.flatMap((file) => publicKeysFromPem(readFileSync(file, 'utf8')));
      const checkpoints = options.checkpoints ? await readCheckpointFile(options.checkpoints, givenKeys) : undefined;
      if (checkpoints) process.stdout.write(`checkpoints checked with key ${checkpoints.keyId}\n`);
      let results: TenantVerification[];
      if (options.file) {
        const archive = await readArchiveSummary(options.file);
        if (archive) process.stdout.write(`archive checkpoints checked with key ${givenKeys?.length ? givenKeys.map(keyIdOf).join(', ') : `${archive.header.publicKey.keyId} (named by the archive: compare it with GET /.well-known/auditql/checkpoint-key)`}\n`);
        results = await verifyExportFile(options.file, checkpoints?.byTenant, givenKeys);
      } else {
        const config = options.database ? undefined : loadConfig();
        const target = options.database ? parseDatabaseUrl(options.database) : config!;
        if (target.dialect !== 'sqlite') {
          throw new Error('auditql verify reads SQLite files; on PostgreSQL run the verifyAuditChain query, or verify an export with --file');
        }
        const anchorKeys = givenKeys?.length ? givenKeys : checkpoints ? checkpoints.keys : serverKeys(target.database);
        const archives = options.archives ? await readArchiveDir(options.archives) : undefined;
        results = await verifyDatabaseFile(target.database, { tenants: options.tenant, checkpoints: checkpoints?.byTenant, badCheckpoints: checkpoints?.bad, anchorKeys, archives, archiveKeys: givenKeys });
      }
      if (options.tenant && options.file) results = results.filter((r) => options.tenant!.includes(r.tenant));
      for (const result of results) process.stdout.write(`${describe(result)}\n`);
      if (results.length === 0) process.stdout.write('no entries\n');
      if (results.some((r) => !r.valid)) process.exitCode = 1;
    });
}

/** An archive file as `--archives` sorts it: its header and the start record before its first entry. */
export interface ArchiveSummary {
  path: string;
  header: ArchiveHeader;
  start: ArchiveCheckpoint | null;
}

/** The header and start record of an archive (reading stops at its first entry). */
export async function readArchiveSummary(path: string): Promise<ArchiveSummary | null> {
  const lines = ndjsonLines(path);
  let header: ArchiveHeader | null = null;
  let start: ArchiveCheckpoint | null = null;
  try {
    for await (const text of lines) {
      if (text.trim() === '') continue;
      const line = classifyLine(JSON.parse(text) as Record<string, unknown>);
      if (line.kind === 'header') header = line.header;
      else if (line.kind === 'checkpoint' && line.checkpoint.checkpoint === 'start') start = line.checkpoint;
      else break;
    }
  } finally {
    lines.close();
  }
  return header ? { path, header, start } : null;
}

/** Every archive in `dir` (`*.ndjson.gz`, `*.ndjson`), by tenant, in chain order. */
export async function readArchiveDir(dir: string): Promise<Map<string, ArchiveSummary[]>> {
  const byTenant = new Map<string, ArchiveSummary[]>();
  for (const name of readdirSync(dir).sort()) {
    if (!/\.ndjson(\.gz)?$/.test(name)) continue;
    const summary = await readArchiveSummary(join(dir, name));
    if (!summary) continue;
    byTenant.set(summary.header.tenant, [...(byTenant.get(summary.header.tenant) ?? []), summary]);
  }
  for (const files of byTenant.values()) files.sort((a, b) => a.header.fromSequence - b.header.fromSequence);
  return byTenant;
}

const failure = (tenant: string, reason: ChainFailure, sequence: number, detail: string, head: ChainHead, anchor: number): TenantVerification => ({
  tenant, valid: false, checked: 0, firstInvalidSequence: sequence, reason, detail, headSequence: head.sequence, headHash: head.hash, anchorSequence: anchor, checkpointsChecked: 0,
});

function unsignedAnchor(anchor: ChainHead, head: ChainHead): ChainVerification {
  return {
    valid: false, checked: 0, firstInvalidSequence: anchor.sequence, reason: ChainFailure.CheckpointMismatch,
    detail: `the chain starts at anchor ${anchor.sequence}, which no signed checkpoint vouches for`,
    headSequence: head.sequence, headHash: head.hash, anchorSequence: anchor.sequence, checkpointsChecked: 0,
  };
}

const keysOf = (archive: ArchiveSummary, keys?: readonly KeyObject[]) => (keys?.length ? keys : [createPublicKey(archive.header.publicKey.pem)]);

/**
 * One chain through archives (oldest first) and then, optionally, the live table: it starts at the first
 * archive's start record (the genesis for the first archive of a tenant), each archive must end at its
 * signed end checkpoint, entries that two archives both hold (a purge that was interrupted and ran again)
 * are read once, and the live table continues where the archives stop.
 */
async function verifyThroughArchives(
  tenant: string,
  archives: ArchiveSummary[],
  live: ((from: number) => AsyncIterable<ChainRow[]>) | null,
  recorded: ChainHead | null,
  options: { archiveKeys?: readonly KeyObject[]; checkpoints?: Map<string, TrustedCheckpoint[]> },
): Promise<TenantVerification> {
  const first = archives[0]!;
  let anchor: ChainHead = { sequence: 0, hash: GENESIS_HASH };
  let anchorSigned: boolean | null = null;
  if (first.start) {
    anchor = { sequence: first.start.sequence, hash: first.start.hash };
    anchorSigned = false;
    if (first.start.jws) {
      const signed = await verifyCheckpointWithAny(first.start.jws, keysOf(first, options.archiveKeys));
      if (!signed || signed.tenant !== tenant || signed.sequence !== anchor.sequence || signed.hash !== anchor.hash) {
        return { ...failure(tenant, ChainFailure.CheckpointSignature, anchor.sequence, `the start checkpoint of ${first.path} does not verify with the public key`, anchor, anchor.sequence), archives: archives.length };
      }
      anchorSigned = true;
    }
  } else if (first.header.fromSequence !== 1) {
    return { ...failure(tenant, ChainFailure.SequenceGap, 1, `${first.path} starts at ${first.header.fromSequence} without a start checkpoint`, anchor, 0), archives: archives.length };
  }
  let problem: TenantVerification | null = null;
  let covered = anchor.sequence;
  let endsChecked = 0;
  async function* batches(): AsyncGenerator<ChainRow[]> {
    for (const archive of archives) {
      let batch: ChainRow[] = [];
      let fileLast: ChainHead | null = null;
      let ended = false;
      for await (const text of ndjsonLines(archive.path)) {
        if (text.trim() === '') continue;
        const line = classifyLine(JSON.parse(text) as Record<string, unknown>);
        if (line.kind === 'entry') {
          const row = chainRowFromExport(line.entry);
          if (row.tenantId !== tenant) continue;
          fileLast = { sequence: row.sequence, hash: row.hash };
          // Entries another archive already held (a purge interrupted after its file was written ran again).
          if (row.sequence <= covered) continue;
          batch.push(row);
          covered = row.sequence;
          if (batch.length >= 5000) {
            yield batch;
            batch = [];
          }
        } else if (line.kind === 'checkpoint' && line.checkpoint.checkpoint === 'end') {
          ended = true;
          // The verifier first recomputes every entry before the checkpoint, then the checkpoint is held against the last.
          if (batch.length > 0) yield batch;
          batch = [];
          const end = line.checkpoint;
          const signed = end.jws ? await verifyCheckpointWithAny(end.jws, keysOf(archive, options.archiveKeys)) : null;
          if (!signed || signed.tenant !== tenant || signed.sequence !== end.sequence || signed.hash !== end.hash) {
            problem = failure(tenant, ChainFailure.CheckpointSignature, end.sequence, `the end checkpoint of ${archive.path} does not verify with the public key`, fileLast ?? anchor, anchor.sequence);
            return;
          }
          if (!fileLast || fileLast.sequence !== signed.sequence || fileLast.hash !== signed.hash) {
            problem = failure(tenant, ChainFailure.CheckpointMismatch, signed.sequence, `${archive.path} does not end at the entry its signed checkpoint names (${signed.sequence}): it was rewritten or cut`, fileLast ?? anchor, anchor.sequence);
            return;
          }
          endsChecked++;
        }
      }
      if (batch.length > 0) yield batch;
      if (!ended) {
        problem = failure(tenant, ChainFailure.HeadMismatch, (fileLast?.sequence ?? covered) + 1, `${archive.path} has no end checkpoint: it was cut short`, fileLast ?? anchor, anchor.sequence);
        return;
      }
    }
    if (live) yield* live(covered + 1);
  }
  const result = await verifyChain(batches(), { anchor, head: recorded ?? undefined, checkpoints: options.checkpoints?.get(tenant) ?? [] });
  if (problem) return { ...(problem as TenantVerification), archives: archives.length, anchorSigned };
  return { tenant, ...result, checkpointsChecked: result.checkpointsChecked + endsChecked, archives: archives.length, anchorSigned };
}
