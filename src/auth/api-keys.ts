import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { In, IsNull, Not, type DataSource } from 'typeorm';
import { ApiKey } from '../db/entities/api-key.entity.js';
import { read, writeTransaction } from '../db/transaction.js';
import { InvalidCredentials } from './jwt.js';
import type { Principal } from './principal.js';
import { isRevoked, keysInUse, markRevoked, onRevoked, revocationSignal } from './revocation.js';

/** `aql_<id>_<secret>`: the id finds the row, the secret is checked against its SHA-256. */
const KEY_PATTERN = /^aql_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

/** Only this digest of a key's secret is stored. */
export const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

/**
 * Verified keys are remembered for a few seconds, so that a busy client does not cost a lookup and a
 * hash per request. Revoking a key forgets it at once in this process; other instances hear of it at once
 * through Redis when REDIS_URL is set, and notice within the interval of `watchRevocations` otherwise (or
 * VERIFIED_TTL_MS where it does not run).
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
    const created = new LRUCache<string, Verified>({ max: 10_000, ttl: VERIFIED_TTL_MS });
    verifiedCaches.set(dataSource, created);
    onRevoked(dataSource, (id) => {
      for (const [token, verified] of created.entries()) if (verified.keyId === id) created.delete(token);
    });
    cache = created;
  }
  return cache;
}

/**
 * Call after the transaction that revoked the key has committed (not before: a rollback would leave the
 * key forgotten here but valid). Forgets its verified tokens and ends every stream and socket it opened.
 */
export function apiKeyRevoked(dataSource: DataSource, id: string): void {
  verifiedCache(dataSource);
  markRevoked(dataSource, id);
}

/**
 * Notices revocations made outside this process (the `auditql apikey revoke` command, another instance)
 * for the keys in use here, every `intervalMs`. Returns a function that stops it.
 */
export function watchRevocations(dataSource: DataSource, intervalMs = 1000): () => void {
  let running = false;
  const timer = setInterval(() => {
    const ids = keysInUse(dataSource);
    if (running || ids.length === 0 || !dataSource.isInitialized) return;
    running = true;
    read(dataSource, (manager) => manager.find(ApiKey, { select: { id: true }, where: { id: In(ids), revokedAt: Not(IsNull()) } }))
      .then((revoked) => revoked.forEach((key) => apiKeyRevoked(dataSource, key.id)))
      .catch(() => undefined)
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

const revocationListeners = new WeakMap<DataSource, Set<(id: string) => void>>();

/**
 * Called with the id of every key revoked through this process (`announceApiKeyRevoked`), after the
 * revocation committed: the server passes it on to its other instances through Redis. Returns the unsubscribe.
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

/**
 * A revocation made here: takes effect in this process (`apiKeyRevoked`) and is told to the listeners, so
 * other instances hear of it. (What they hear they only apply, with `apiKeyRevoked`: no echo.)
 */
export function announceApiKeyRevoked(dataSource: DataSource, id: string): void {
  apiKeyRevoked(dataSource, id);
  revocationListeners.get(dataSource)?.forEach((listener) => listener(id));
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
    const { expiresAt } = remembered.principal;
    if (expiresAt === null || expiresAt > Date.now()) {
      touch(dataSource, remembered);
      return remembered.principal;
    }
    cache.delete(token);
  }
  const match = KEY_PATTERN.exec(token);
  if (!match) throw new InvalidCredentials('The API key is not valid');
  const key = await dataSource.getRepository(ApiKey).findOne({ where: { id: match[1]! } });
  const expected = Buffer.from(key?.secretHash ?? '0'.repeat(64), 'hex');
  const given = Buffer.from(hashSecret(match[2]!), 'hex');
  if (!key || !timingSafeEqual(expected, given)) throw new InvalidCredentials('The API key is not valid');
  // The registry also catches a revocation that committed while this lookup was under way.
  if (key.revokedAt || isRevoked(dataSource, key.id)) throw new InvalidCredentials('The API key has been revoked');
  const expiresAt = key.expiresAt?.getTime() ?? null;
  if (expiresAt !== null && expiresAt <= Date.now()) throw new InvalidCredentials('The API key has expired');
  const principal: Principal = {
    id: `apikey:${key.id}`,
    name: key.name,
    type: 'service',
    scopes: new Set(key.scopes),
    tenantId: key.tenantId,
    expiresAt,
    via: 'api-key',
    revoked: revocationSignal(dataSource, key.id),
  };
  const verified: Verified = { principal, keyId: key.id, lastUsedAt: key.lastUsedAt?.getTime() ?? 0 };
  touch(dataSource, verified);
  cache.set(token, verified);
  return principal;
}
