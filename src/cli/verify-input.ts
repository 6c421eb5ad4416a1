/** Reading what `auditql verify` is given: files, keys, checkpoint files; input it cannot read is a VerifyInputError (exit 2). */
import { createReadStream, readFileSync } from 'node:fs';
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { GENESIS_HASH, type ChainRow } from '../shared/chain/canonical.js';
import { keyIdOf, publicKeysFromPem, verifyCheckpointWithAny, type CheckpointFile } from '../shared/chain/checkpoint.js';
import { chainRowFromExport } from '../shared/chain/export-row.js';
import type { ChainHead } from '../shared/chain/link.js';
import { ChainFailure, type ChainVerification, type TrustedCheckpoint } from '../shared/chain/verify.js';

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
export function asInputError(error: unknown, path?: string): VerifyInputError | null {
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

export function readInput(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw asInputError(error, path) ?? error;
  }
}

export function parseJson(text: string, what: string): unknown {
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
export async function* ndjsonObjects(path: string): AsyncGenerator<{ value: Record<string, unknown>; line: number }> {
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
export function entryRow(entry: Record<string, unknown>, path: string, line: number): ChainRow {
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

export const signatureFailure = (tenant: string, sequence: number): TenantVerification => ({
  tenant, valid: false, checked: 0, firstInvalidSequence: sequence, reason: ChainFailure.CheckpointSignature,
  detail: `the checkpoint at ${sequence} does not verify with the public key`, headSequence: 0, headHash: GENESIS_HASH, anchorSequence: 0, checkpointsChecked: 0,
});

/** A chain found broken before any entry was recomputed. */
export const failure = (tenant: string, reason: ChainFailure, sequence: number, detail: string, head: ChainHead, anchor: number): TenantVerification => ({
  tenant, valid: false, checked: 0, firstInvalidSequence: sequence, reason, detail, headSequence: head.sequence, headHash: head.hash, anchorSequence: anchor, checkpointsChecked: 0,
});

/** A chain that starts past the genesis at an anchor no signed checkpoint vouches for. */
export function unsignedAnchor(anchor: ChainHead, head: ChainHead): ChainVerification {
  return {
    valid: false, checked: 0, firstInvalidSequence: anchor.sequence, reason: ChainFailure.CheckpointMismatch,
    detail: `the chain starts at anchor ${anchor.sequence}, which no signed checkpoint vouches for`,
    headSequence: head.sequence, headHash: head.hash, anchorSequence: anchor.sequence, checkpointsChecked: 0,
  };
}
