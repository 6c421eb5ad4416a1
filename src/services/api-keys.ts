import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
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

export async function revokeApiKey(dataSource: DataSource, id: string, tenantId?: string): Promise<ApiKey> {
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

export async function verifyApiKey(dataSource: DataSource, token: string): Promise<Principal> {
  const match = KEY_PATTERN.exec(token);
  if (!match) throw new InvalidCredentials('The API key is not valid');
  const key = await dataSource.getRepository(ApiKey).findOne({ where: { id: match[1]! } });
  const expected = Buffer.from(key?.secretHash ?? '0'.repeat(64), 'hex');
  const given = Buffer.from(sha256(match[2]!), 'hex');
  if (!key || !timingSafeEqual(expected, given)) throw new InvalidCredentials('The API key is not valid');
  if (key.revokedAt) throw new InvalidCredentials('The API key has been revoked');
  const now = Date.now();
  if (!key.lastUsedAt || now - key.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
    void writeTransaction(dataSource, (manager) => manager.update(ApiKey, { id: key.id }, { lastUsedAt: new Date(now) })).catch(() => undefined);
  }
  return { id: `apikey:${key.id}`, name: key.name, type: 'service', scopes: new Set(key.scopes), tenantId: key.tenantId, expiresAt: null, via: 'api-key' };
}
