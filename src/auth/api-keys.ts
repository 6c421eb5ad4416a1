import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { DataSource } from 'typeorm';
import { ApiKey } from '../db/entities/api-key.entity.js';
import { writeTransaction } from '../db/transaction.js';
import { InvalidCredentials } from './jwt.js';
import type { Principal } from './principal.js';

/** `aql_<id>_<secret>`: the id finds the row, the secret is checked against its SHA-256. */
const KEY_PATTERN = /^aql_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

/** Only this digest of a key's secret is stored. */
export const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

/**
 * Verified keys are remembered for a few seconds, so that a busy client does not cost a lookup and a
 * hash per request. Revoking a key forgets it at once in this process; other instances hear of it
 * through Redis when REDIS_URL is set, and notice within VERIFIED_TTL_MS otherwise.
 */
const VERIFIED_TTL_MS = 10_000;
interface Verified {
  principal: Principal;
  keyId: string;
  lastUsedAt: number;
}
const verifiedCaches = new WeakMap<DataSource, LRUCache<string, Verified>>();
function verifiedCache(dataSource: DataSource): LRUCache<string, Verified> {
  let cache = verifiedCaches.get(dataSource);
  if (!cache) {
    cache = new LRUCache<string, Verified>({ max: 10_000, ttl: VERIFIED_TTL_MS });
    verifiedCaches.set(dataSource, cache);
  }
  return cache;
}

const revocationListeners = new WeakMap<DataSource, Set<(id: string) => void>>();

/**
 * Called with the id of every key revoked through this DataSource, after the revocation committed (the
 * server passes it on to its other instances through Redis). Returns the unsubscribe.
 */
export function onApiKeyRevoked(dataSource: DataSource, listener: (id: string) => void): () => void {
  let listeners = revocationListeners.get(dataSource);
  if (!listeners) {
    listeners = new Set();
    revocationListeners.set(dataSource, listeners);
  }
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Call after the transaction that revoked the key has committed: forgets it here and tells the listeners. */
export function apiKeyRevoked(dataSource: DataSource, id: string): void {
  forgetApiKey(dataSource, id);
  revocationListeners.get(dataSource)?.forEach((listener) => listener(id));
}

/** Forgets a key's verified tokens in this process, so that a revocation takes effect at once. */
export function forgetApiKey(dataSource: DataSource, id: string): void {
  const cache = verifiedCache(dataSource);
  for (const [token, verified] of cache.entries()) if (verified.keyId === id) cache.delete(token);
}

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith('aql_');
}

/** Last-used times are written at most once a minute per key, off the request's path. */
const LAST_USED_PRECISION_MS = 60_000;

function touch(dataSource: DataSource, verified: Verified): void {
  const now = Date.now();
  if (now - verified.lastUsedAt <= LAST_USED_PRECISION_MS) return;
  verified.lastUsedAt = now;
  void writeTransaction(dataSource, (manager) => manager.update(ApiKey, { id: verified.keyId }, { lastUsedAt: new Date(now) })).catch(() => undefined);
}

export async function verifyApiKey(dataSource: DataSource, token: string): Promise<Principal> {
  const cache = verifiedCache(dataSource);
  const remembered = cache.get(token);
  if (remembered) {
    touch(dataSource, remembered);
    return remembered.principal;
  }
  const match = KEY_PATTERN.exec(token);
  if (!match) throw new InvalidCredentials('The API key is not valid');
  const key = await dataSource.getRepository(ApiKey).findOne({ where: { id: match[1]! } });
  const expected = Buffer.from(key?.secretHash ?? '0'.repeat(64), 'hex');
  const given = Buffer.from(hashSecret(match[2]!), 'hex');
  if (!key || !timingSafeEqual(expected, given)) throw new InvalidCredentials('The API key is not valid');
  if (key.revokedAt) throw new InvalidCredentials('The API key has been revoked');
  const principal: Principal = { id: `apikey:${key.id}`, name: key.name, type: 'service', scopes: new Set(key.scopes), tenantId: key.tenantId, expiresAt: null, via: 'api-key' };
  const verified: Verified = { principal, keyId: key.id, lastUsedAt: key.lastUsedAt?.getTime() ?? 0 };
  touch(dataSource, verified);
  cache.set(token, verified);
  return principal;
}
