/**
 * Signed checkpoints: `{tenant, sequence, hash, createdAt}` as a JWS (RFC 7515, compact form) signed with
 * Ed25519 (`alg: EdDSA`), so that anyone holding the public key can check one with any JOSE library. A
 * chain rewritten by someone who recomputed every later hash no longer reaches the hash a checkpoint signed.
 */
import { createHash, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { canonicalJson } from './canonical.js';

export interface Checkpoint {
  tenant: string;
  sequence: number;
  hash: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

export interface SignedCheckpoint extends Checkpoint {
  keyId: string;
  /** The checkpoint as a compact JWS: the payload is the JCS text of {createdAt, hash, sequence, tenant}. */
  jws: string;
}

export interface CheckpointKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** RFC 7638 thumbprint (SHA-256, base64url) of the public key. */
  keyId: string;
  /**
   * Public keys that signed checkpoints before this one (the key was replaced): what they signed stays
   * trusted, nothing new is signed with them.
   */
  previous?: readonly KeyObject[];
}

export const CHECKPOINT_JWS_TYPE = 'auditql-checkpoint+jws';

/** The RFC 7638 thumbprint of an Ed25519 public key. */
export function keyIdOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' }) as { crv: string; kty: string; x: string };
  return createHash('sha256').update(canonicalJson({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url');
}

export function checkpointKeyFrom(privateKey: KeyObject): CheckpointKey {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`a checkpoint key must be Ed25519, not ${privateKey.asymmetricKeyType ?? privateKey.type}`);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

export function publicKeyPem(publicKey: KeyObject): string {
  return publicKey.export({ format: 'pem', type: 'spki' }).toString();
}

export async function signCheckpoint(checkpoint: Checkpoint, key: CheckpointKey): Promise<SignedCheckpoint> {
  const payload = canonicalJson({ createdAt: checkpoint.createdAt, hash: checkpoint.hash, sequence: checkpoint.sequence, tenant: checkpoint.tenant });
  const jws = await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'EdDSA', kid: key.keyId, typ: CHECKPOINT_JWS_TYPE }).sign(key.privateKey);
  return { ...checkpoint, keyId: key.keyId, jws };
}

/** The checkpoint a JWS signs, or null when the signature does not verify with `publicKey` or the payload is not a checkpoint. */
export async function verifyCheckpoint(jws: string, publicKey: KeyObject): Promise<Checkpoint | null> {
  try {
    const { payload, protectedHeader } = await compactVerify(jws, publicKey, { algorithms: ['EdDSA', 'Ed25519'] });
    if (protectedHeader.typ !== CHECKPOINT_JWS_TYPE) return null;
    const value = JSON.parse(new TextDecoder().decode(payload)) as Partial<Checkpoint>;
    if (typeof value.tenant !== 'string' || !Number.isSafeInteger(value.sequence) || typeof value.hash !== 'string' || !Number.isSafeInteger(value.createdAt)) return null;
    return { tenant: value.tenant, sequence: value.sequence!, hash: value.hash, createdAt: value.createdAt! };
  } catch {
    return null;
  }
}

/** The keys whose signatures a verifier with this key trusts: the current one first, then those it replaced. */
export const verifyingKeys = (key: Pick<CheckpointKey, 'publicKey' | 'previous'>): KeyObject[] => [key.publicKey, ...(key.previous ?? [])];

/** The checkpoint a JWS signs when one of `keys` verifies it (a handful of keys: each is simply tried), else null. */
export async function verifyCheckpointWithAny(jws: string, keys: readonly KeyObject[]): Promise<Checkpoint | null> {
  for (const key of keys) {
    const checkpoint = await verifyCheckpoint(jws, key);
    if (checkpoint) return checkpoint;
  }
  return null;
}

/**
 * The Ed25519 public keys in a text of PEM blocks (public keys, or private keys whose public half is
 * taken), in order. Throws on a block that is not an Ed25519 key.
 */
export function publicKeysFromPem(text: string): KeyObject[] {
  const blocks = text.replace(/\\n/g, '\n').match(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g) ?? [];
  return blocks.map((block) => {
    const key = createPublicKey(block);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a checkpoint key must be Ed25519, not ${key.asymmetricKeyType ?? key.type}`);
    return key;
  });
}

/** The downloadable file of a tenant's checkpoints (`GET /checkpoints`), and what `auditql verify --checkpoints` reads. */
export interface CheckpointFile {
  format: 'auditql-checkpoints';
  version: 1;
  publicKey: { keyId: string; pem: string };
  /** Keys the current one replaced, whose checkpoints are still trusted (absent: none). */
  previousPublicKeys?: Array<{ keyId: string; pem: string }>;
  checkpoints: SignedCheckpoint[];
}

/**
 * The same JWS as `signCheckpoint`, computed synchronously (Ed25519 signing takes tens of microseconds), so
 * that retention can sign the checkpoint of the entries it removes inside the transaction that removes them.
 */
export function signCheckpointSync(checkpoint: Checkpoint, key: CheckpointKey): SignedCheckpoint {
  const payload = canonicalJson({ createdAt: checkpoint.createdAt, hash: checkpoint.hash, sequence: checkpoint.sequence, tenant: checkpoint.tenant });
  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: key.keyId, typ: CHECKPOINT_JWS_TYPE })).toString('base64url');
  const input = `${header}.${Buffer.from(payload).toString('base64url')}`;
  const signature = cryptoSign(null, Buffer.from(input), key.privateKey).toString('base64url');
  return { ...checkpoint, keyId: key.keyId, jws: `${input}.${signature}` };
}
