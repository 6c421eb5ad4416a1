import { existsSync, readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { loadConfig, parseDatabaseUrl } from '../config.js';
import { GENESIS_HASH, type ChainRow } from '../shared/chain/canonical.js';
import { keyIdOf, publicKeysFromPem, verifyCheckpointWithAny } from '../shared/chain/checkpoint.js';
import { chainBatches } from '../shared/chain/rows.js';
import { chainRowFromExport } from '../shared/chain/export-row.js';
import { defaultVerifyWorkers, verifyInParallel } from '../db/chain-workers.js';
import { ChainFailure, verifyChain, type TrustedCheckpoint } from '../shared/chain/verify.js';
import { GENERATED_KEY_FILE } from '../services/checkpoint-key.js';
import { EXIT_BAD_INPUT, VerifyInputError, asInputError, entryRow, failure, ndjsonObjects, publicKeysFromFile, readCheckpointFile, signatureFailure, unsignedAnchor, type TenantVerification } from './verify-input.js';
import { readArchiveDir, readArchiveSummary, verifyThroughArchives, type ArchiveSummary, type LiveChain } from './verify-archives.js';

export { chainRowFromExport };

/**
 * Entries read per batch. Small enough that a batch's rows die young: at 5,000 the rows of a batch outlived
 * the young generation and verification spent a third of its time in the garbage collector (measured:
 * 500 per batch halved its CPU time).
 */
const VERIFY_BATCH = 500;

/** Shorter chains are verified on this thread: starting threads costs more than it saves. */
const PARALLEL_FROM = 20_000;


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

/** The SQLite file, read-only, once it is known to hold a chain: a missing file or one that is not SQLite is bad input. */
function openChainDatabase(path: string): Database.Database {
  // better-sqlite3 says so with a TypeError and no code when the folder is missing too.
  if (!existsSync(path)) throw new VerifyInputError(`${path}: no such file or folder`);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const columns = db.prepare(`SELECT "name" FROM pragma_table_info('audit_log')`).all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'sequence')) throw new VerifyInputError(`${path} has no chain yet: run \`auditql migrate\` (or start the server) first`);
    return db;
  } catch (error) {
    db?.close();
    throw asInputError(error, path) ?? error;
  }
}

export async function verifyDatabaseFile(path: string, options: DatabaseVerifyOptions = {}): Promise<TenantVerification[]> {
  const db = openChainDatabase(path);
  try {
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
        const live: LiveChain = { anchor, head: recorded, batches: (from) => chainBatches(query, tenant, from, Infinity, VERIFY_BATCH) };
        results.push(await verifyThroughArchives(tenant, archives, live, options));
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

export interface ExportVerifyOptions {
  /** Signed checkpoints by tenant (`--checkpoints`, already checked): a tenant they name must be in the file. */
  checkpoints?: Map<string, TrustedCheckpoint[]>;
  /** Tenants with a checkpoint whose signature does not verify, and its sequence: they fail with CHECKPOINT_SIGNATURE. */
  badCheckpoints?: Map<string, number>;
  /** The keys that check an archive's checkpoints. @default the key the archive names */
  archiveKeys?: readonly KeyObject[];
  /** Only these tenants; one the file does not hold fails (HEAD_MISMATCH) rather than going unmentioned. */
  tenants?: string[];
}

/**
 * Verifies an export file offline: per tenant, its rows in sequence order (a newest-first export verifies
 * as well as an oldest-first one; the order of lines is not evidence, the sequence is). A file that starts
 * at sequence 1 starts from the genesis hash; one that starts later takes its first row's previousHash as given.
 * Tenants the operator named (`tenants`) or the checkpoints name must be there: absent, they fail, as in a database.
 */
export async function verifyExportFile(path: string, options: ExportVerifyOptions = {}): Promise<TenantVerification[]> {
  const found = await verifyFileChains(path, options);
  const bad = options.badCheckpoints ?? new Map<string, number>();
  const tenants = options.tenants ?? [...new Set([...found.keys(), ...(options.checkpoints?.keys() ?? []), ...bad.keys()])];
  return tenants.map((tenant) => {
    const sequence = bad.get(tenant);
    if (sequence !== undefined) return signatureFailure(tenant, sequence);
    return found.get(tenant) ?? absentFromFile(tenant, path, options.checkpoints?.get(tenant) ?? []);
  });
}

/** Each tenant's chain in an export or archive file, in the order the file first names them. */
async function verifyFileChains(path: string, options: ExportVerifyOptions): Promise<Map<string, TenantVerification>> {
  const archive = await readArchiveSummary(path);
  if (archive) return new Map([[archive.header.tenant, await verifyThroughArchives(archive.header.tenant, [archive], null, options)]]);
  const byTenant = new Map<string, ChainRow[]>();
  for await (const { value, line } of ndjsonObjects(path)) {
    const row = entryRow(value, path, line);
    const rows = byTenant.get(row.tenantId);
    if (rows) rows.push(row);
    else byTenant.set(row.tenantId, [row]);
  }
  const results = new Map<string, TenantVerification>();
  for (const [tenant, rows] of byTenant) {
    // Stable: two lines claiming one sequence stay in file order, and are reported as a duplicate.
    rows.sort((a, b) => a.sequence - b.sequence);
    // A file that starts past sequence 1 (an export read after a purge, or cut) starts from the hash its
    // first line names: reported as its anchor, signed when a kept checkpoint vouches for it.
    const first = rows[0]!;
    const anchor = first.sequence === 1 ? undefined : { sequence: first.sequence - 1, hash: first.previousHash };
    const held = options.checkpoints?.get(tenant) ?? [];
    const result = await verifyChain([rows], { anchor, checkpoints: held });
    const anchorSigned = anchor ? held.some((c) => c.sequence === anchor.sequence && c.hash === anchor.hash) : null;
    results.set(tenant, { tenant, ...result, anchorSigned });
  }
  return results;
}

/** A tenant that must be in the file and is not: the signed checkpoints name entries it lacks, or the operator named it. */
function absentFromFile(tenant: string, path: string, checkpoints: readonly TrustedCheckpoint[]): TenantVerification {
  const none = { sequence: 0, hash: GENESIS_HASH };
  const first = [...checkpoints].sort((a, b) => a.sequence - b.sequence)[0];
  if (first) return { ...failure(tenant, ChainFailure.CheckpointMismatch, first.sequence, `${path} holds no entries of ${tenant}, yet a signed checkpoint names its entry ${first.sequence}`, none, 0), anchorSigned: null };
  return { ...failure(tenant, ChainFailure.HeadMismatch, 1, `tenant ${tenant} has no entries in ${path}`, none, 0), anchorSigned: null };
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

interface VerifyCliOptions {
  database?: string;
  tenant?: string[];
  checkpoints?: string;
  publicKey?: string[];
  file?: string;
  archives?: string;
}

/**
 * `auditql verify`: one line per tenant; exit status 0 when every chain verifies, 1 otherwise, and
 * EXIT_BAD_INPUT (2) with a one-line message when the input cannot be read at all.
 */
export function verifyCommand(program: Command): void {
  program
    .command('verify')
    .description('recompute the tamper-evident chain of every tenant (or one) and hold it against signed checkpoints')
    .option('--database <path>', 'the SQLite file (default: DATABASE_URL)')
    .option('--tenant <tenant...>', 'only these tenants (default: every tenant)')
    .option('--checkpoints <file>', 'a checkpoint file downloaded from GET /checkpoints; detects a rewrite that recomputed every later hash')
    .option('--public-key <file...>', 'public keys to check the checkpoints with, PEM or JWK (GET /.well-known/auditql/checkpoint-key serves both): the current one and any it replaced (default: those in the checkpoint file)')
    .option('--file <export>', 'verify an export or a retention archive (NDJSON, optionally .gz) instead of a database')
    .option('--archives <dir>', 'walk the retention archives in this folder first, then the database, as one chain from the genesis')
    .action(async (options: VerifyCliOptions) => {
      try {
        const results = await runVerify(options);
        for (const result of results) process.stdout.write(`${describe(result)}\n`);
        if (results.length === 0) process.stdout.write('no entries\n');
        if (results.some((r) => !r.valid)) process.exitCode = 1;
      } catch (error) {
        const input = asInputError(error);
        if (!input) throw error;
        // No verdict on any chain: what was given could not be read, and exit status 1 would say "broken".
        process.stderr.write(`auditql verify: ${input.message}\n`);
        process.exitCode = EXIT_BAD_INPUT;
      }
    });
}

async function runVerify(options: VerifyCliOptions): Promise<TenantVerification[]> {
  const givenKeys = options.publicKey?.flatMap((file) => publicKeysFromFile(file));
  const checkpoints = options.checkpoints ? await readCheckpointFile(options.checkpoints, givenKeys) : undefined;
  if (checkpoints) process.stdout.write(`checkpoints checked with key ${checkpoints.keyId}\n`);
  if (options.file) {
    const archive = await readArchiveSummary(options.file);
    if (archive) process.stdout.write(`archive checkpoints checked with key ${givenKeys?.length ? givenKeys.map(keyIdOf).join(', ') : `${archive.header.publicKey.keyId} (named by the archive: compare it with GET /.well-known/auditql/checkpoint-key)`}\n`);
    return verifyExportFile(options.file, { checkpoints: checkpoints?.byTenant, badCheckpoints: checkpoints?.bad, archiveKeys: givenKeys, tenants: options.tenant });
  }
  const target = options.database ? parseDatabaseUrl(options.database) : loadConfig();
  if (target.dialect !== 'sqlite') {
    throw new VerifyInputError('auditql verify reads SQLite files; on PostgreSQL run the verifyAuditChain query, or verify an export with --file');
  }
  const anchorKeys = givenKeys?.length ? givenKeys : checkpoints ? checkpoints.keys : serverKeys(target.database);
  const archives = options.archives ? await readArchiveDir(options.archives) : undefined;
  return verifyDatabaseFile(target.database, { tenants: options.tenant, checkpoints: checkpoints?.byTenant, badCheckpoints: checkpoints?.bad, anchorKeys, archives, archiveKeys: givenKeys });
}
