import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { loadConfig, parseDatabaseUrl } from '../config.js';
import { GENESIS_HASH, type ChainRow } from '../shared/chain/canonical.js';
import { keyIdOf, publicKeysFromPem, verifyCheckpointWithAny, type CheckpointFile } from '../shared/chain/checkpoint.js';
import { chainBatches } from '../shared/chain/rows.js';
import { chainRowFromExport } from '../shared/chain/export-row.js';

export { chainRowFromExport };
import { defaultVerifyWorkers, verifyInParallel } from '../db/chain-workers.js';
import { ChainFailure, entryFailure, verifyChain, type ChainVerification, type TrustedCheckpoint } from '../shared/chain/verify.js';
import { classifyLine, type ArchiveCheckpoint, type ArchiveHeader } from '../shared/chain/archive.js';
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

/**
 * Exit status for input the command cannot read as what it was told it is (a missing file, a corrupt gzip, a
 * CSV or JSON export, a key file without a key): distinct from 1, which says a chain was read and is broken.
 */
export const EXIT_BAD_INPUT = 2;

/** Input that cannot be read as evidence at all; the CLI prints its message on one line and exits EXIT_BAD_INPUT. */
export class VerifyInputError extends Error {
  override name = 'VerifyInputError';
}

/** The error as a VerifyInputError when it says the input could not be read (not a fault of this program), else null. */
function asInputError(error: unknown, path?: string): VerifyInputError | null {
  if (error instanceof VerifyInputError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  const where = path ?? (error as { path?: string }).path ?? 'the input';
  if (code === 'ENOENT') return new VerifyInputError(`${where}: no such file or folder`);
  if (code === 'EISDIR') return new VerifyInputError(`${where} is a folder, not a file`);
  if (code === 'ENOTDIR') return new VerifyInputError(`${where} is not a folder`);
  if (code === 'EACCES' || code === 'EPERM') return new VerifyInputError(`${where}: permission denied`);
  // zlib's codes: the bytes are not gzip, or the gzip stream is cut short or damaged.
  if (code.startsWith('Z_')) return new VerifyInputError(`${where} is not a readable gzip file (${(error as Error).message})`);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CANTOPEN') return new VerifyInputError(`${where}: ${(error as Error).message}`);
  return null;
}

function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw asInputError(error, path) ?? error;
  }
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new VerifyInputError(`${what} is not JSON`);
  }
}

/**
 * The JSON objects of an NDJSON file (gunzipped when its name ends in `.gz`), blank lines skipped. Anything
 * else — a missing file, bytes that are not gzip, a line that is not a JSON object (a CSV export, a JSON
 * array export) — is a VerifyInputError naming the file and line.
 */
async function* ndjsonObjects(path: string): AsyncGenerator<{ value: Record<string, unknown>; line: number }> {
  const input = createReadStream(path);
  const source = path.endsWith('.gz') ? input.pipe(createGunzip()) : input;
  // pipe() does not pass the file's own errors (ENOENT) on: without this the reader would wait forever.
  if (source !== input) input.on('error', (error) => source.destroy(error));
  const lines = createInterface({ input: source, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new VerifyInputError(`${path}: line ${line} is not a JSON object (--file reads NDJSON exports and retention archives, not CSV or JSON exports)`);
      }
      yield { value: value as Record<string, unknown>, line };
    }
  } catch (error) {
    throw asInputError(error, path) ?? error;
  } finally {
    lines.close();
    source.destroy();
    input.destroy();
  }
}

/** An entry line as a chain row; a line without a sequence and a hash is no entry at all (not a broken one). */
function entryRow(entry: Record<string, unknown>, path: string, line: number): ChainRow {
  if (!Number.isSafeInteger(entry.sequence) || typeof entry.hash !== 'string') {
    throw new VerifyInputError(`${path}: line ${line} is not an export line (it has no sequence and hash)`);
  }
  return chainRowFromExport(entry);
}

/** The Ed25519 public JWKs in a parsed JSON value: a JWK, a JWK set, or what GET /.well-known/auditql/checkpoint-key serves. */
function ed25519Jwks(value: unknown): JsonWebKey[] {
  if (Array.isArray(value)) return value.flatMap(ed25519Jwks);
  if (value === null || typeof value !== 'object') return [];
  const object = value as Record<string, unknown>;
  // Only the public half is taken: a private JWK's `d` is never handed on.
  if (object.kty === 'OKP' && object.crv === 'Ed25519' && typeof object.x === 'string') return [{ kty: 'OKP', crv: 'Ed25519', x: object.x }];
  return [object.jwk, object.keys, object.previous].flatMap(ed25519Jwks);
}

/**
 * The keys of a `--public-key` file: PEM blocks (public or private keys), else Ed25519 JWKs. A file with
 * neither is an error: falling back to other keys would check the evidence with keys the operator did not name.
 */
export function publicKeysFromFile(path: string): KeyObject[] {
  const text = readInput(path);
  try {
    const pem = publicKeysFromPem(text);
    if (pem.length > 0) return pem;
    const json = text.trimStart().startsWith('{') || text.trimStart().startsWith('[') ? parseJson(text, path) : null;
    const keys = ed25519Jwks(json).map((jwk) => createPublicKey({ key: jwk, format: 'jwk' }));
    if (keys.length > 0) return keys;
  } catch (error) {
    if (error instanceof VerifyInputError) throw error;
    throw new VerifyInputError(`${path}: ${(error as Error).message}`);
  }
  throw new VerifyInputError(`no Ed25519 public key in ${path}`);
}

export interface TenantVerification extends ChainVerification {
  tenant: string;
  /** Archives the chain was walked through before the live table (`--archives`). */
  archives?: number;
  /** Whether the anchor the chain started from was checked against its signed checkpoint (null: it starts at the genesis). */
  anchorSigned?: boolean | null;
}

/** Checkpoints from a downloaded file, by tenant, after checking each signature; or the first bad one. */
export async function readCheckpointFile(path: string, publicKeys?: readonly KeyObject[]): Promise<{ keyId: string; keys: KeyObject[]; byTenant: Map<string, TrustedCheckpoint[]>; bad: Map<string, number> }> {
  const file = parseJson(readInput(path), path) as CheckpointFile | null;
  if (file?.format !== 'auditql-checkpoints' || !Array.isArray(file.checkpoints)) throw new VerifyInputError(`${path} is not an auditql checkpoint file`);
  // The keys given, or the file's: its current key and the keys that one replaced.
  const keys = publicKeys?.length ? [...publicKeys] : checkpointFileKeys(file, path);
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

function checkpointFileKeys(file: CheckpointFile, path: string): KeyObject[] {
  try {
    return [file.publicKey, ...(file.previousPublicKeys ?? [])].map((k) => createPublicKey(k.pem));
  } catch (error) {
    throw new VerifyInputError(`${path}: its public key cannot be read (${(error as Error).message})`);
  }
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
async function verifyThroughArchives(tenant: string, archives: ArchiveSummary[], live: LiveChain | null, options: ArchiveOptions): Promise<TenantVerification> {
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
