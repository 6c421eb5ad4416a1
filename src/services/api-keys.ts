import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { DataSource } from 'typeorm';
import { DEFAULT_TENANT } from '../audit/context.js';
import { InvalidCredentials } from '../auth/jwt.js';
import { ALL_SCOPES, type Principal } from '../auth/principal.js';
import { ApiKey } from '../db/entities/api-key.entity.js';
import { writeTransaction } from '../db/transaction.js';
import { badUserInput, notFound } from './errors.js';

/** `aql_<id>_<secret>`: the id finds the row, the secret is checked against its SHA-256. */
const KEY_PATTERN = /^aql_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

export interface CreatedApiKey {
  apiKey: ApiKey;
  /** The whole key. Shown once; only its hash is stored. */
  secret: string;
}

export async function createApiKey(dataSource: DataSource, input: { name: string; scopes: string[]; tenantId?: string }): Promise<CreatedApiKey> {
  const name = input.name.trim();
  if (name === '' || name.length > 255) throw badUserInput('name must be 1 to 255 characters', 'name');
  if (input.scopes.length === 0) throw badUserInput('give the key at least one scope', 'scopes');
  const unknown = input.scopes.filter((s) => !(ALL_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) throw badUserInput(`unknown scope ${unknown.join(', ')}; known: ${ALL_SCOPES.join(', ')}`, 'scopes');
  const tenantId = input.tenantId?.trim() || DEFAULT_TENANT;
  if (tenantId.length > 128) throw badUserInput('tenant takes at most 128 characters', 'tenant');
  const id = randomBytes(10).toString('hex').slice(0, 16);
  const secretPart = randomBytes(32).toString('base64url');
  const apiKey = Object.assign(new ApiKey(), {
    id,
    name,
    tenantId,
    scopes: [...new Set(input.scopes)].sort(),
    secretHash: sha256(secretPart),
    createdAt: new Date(),
    lastUsedAt: null,
    revokedAt: null,
  });
  await writeTransaction(dataSource, (manager) => manager.insert(ApiKey, apiKey));
  return { apiKey, secret: `aql_${id}_${secretPart}` };
}

export function listApiKeys(dataSource: DataSource, tenantId?: string): Promise<ApiKey[]> {
  return dataSource.getRepository(ApiKey).find({ where: tenantId ? { tenantId } : {}, order: { createdAt: 'ASC' } });
}

/**
 * Verified keys are remembered for a few seconds, so that a busy client does not cost a lookup and a
 * hash per request. Revoking a key forgets it at once in this process; other instances notice within
 * VERIFIED_TTL_MS.
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

export async function revokeApiKey(dataSource: DataSource, id: string, tenantId?: string): Promise<ApiKey> {
  const cache = verifiedCache(dataSource);
  for (const [token, verified] of cache.entries()) if (verified.keyId === id) cache.delete(token);
  return writeTransaction(dataSource, async (manager) => {
    const key = await manager.findOne(ApiKey, { where: tenantId ? { id, tenantId } : { id } });
    if (!key) throw notFound(`No API key with id "${id}"`);
    if (!key.revokedAt) {
      key.revokedAt = new Date();
      await manager.update(ApiKey, { id }, { revokedAt: key.revokedAt });
    }
    return key;
  });
}

export async function countActiveApiKeys(dataSource: DataSource): Promise<number> {
  return dataSource.getRepository(ApiKey).createQueryBuilder('k').where('k.revokedAt IS NULL').getCount();
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
  const given = Buffer.from(sha256(match[2]!), 'hex');
  if (!key || !timingSafeEqual(expected, given)) throw new InvalidCredentials('The API key is not valid');
  if (key.revokedAt) throw new InvalidCredentials('The API key has been revoked');
  const principal: Principal = { id: `apikey:${key.id}`, name: key.name, type: 'service', scopes: new Set(key.scopes), tenantId: key.tenantId, expiresAt: null, via: 'api-key' };
  const verified: Verified = { principal, keyId: key.id, lastUsedAt: key.lastUsedAt?.getTime() ?? 0 };
  touch(dataSource, verified);
  cache.set(token, verified);
  return principal;
}
