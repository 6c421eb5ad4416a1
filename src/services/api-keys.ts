import { randomBytes } from 'node:crypto';
import { IsNull, MoreThan, type DataSource } from 'typeorm';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import { announceApiKeyRevoked, hashSecret } from '../auth/api-keys.js';
import { ALL_SCOPES } from '../auth/principal.js';
import { ApiKey } from '../db/entities/api-key.entity.js';
import { writeTransaction } from '../db/transaction.js';
import { badUserInput, forbidden, notFound } from '../shared/errors.js';

/** A new key: its stored row, and the whole key, which is never shown again. */
export interface CreatedApiKey {
  apiKey: ApiKey;
  /** The whole key. Shown once; only its hash is stored. */
  secret: string;
}

export interface CreateApiKeyInput {
  name: string;
  scopes: string[];
  tenantId?: string;
  /** When the key stops working. `null`/absent: never, unless `maxTtlSeconds` applies. */
  expiresAt?: Date | null;
  /**
   * The scopes of whoever creates the key: a key may not grant more than its creator holds (an admin
   * without audit:impersonate cannot mint an impersonating key). Absent for the operator's CLI.
   */
  grantorScopes?: ReadonlySet<string>;
  /** Longest lifetime a new key may have (API_KEY_MAX_TTL); keys created without `expiresAt` get it. */
  maxTtlSeconds?: number;
}

function expiryOf(input: CreateApiKeyInput, now: number): Date | null {
  const max = input.maxTtlSeconds ? now + input.maxTtlSeconds * 1000 : null;
  if (!input.expiresAt) return max === null ? null : new Date(max);
  const at = input.expiresAt.getTime();
  if (at <= now) throw badUserInput('expiresAt must be in the future', 'expiresAt');
  if (max !== null && at > max) throw badUserInput(`expiresAt may be at most ${input.maxTtlSeconds} s from now (API_KEY_MAX_TTL)`, 'expiresAt');
  return input.expiresAt;
}

/**
 * Creates an API key (`aql_<id>_<secret>`) with the given scopes in a tenant. The secret is returned once;
 * only its SHA-256 is stored. With `grantorScopes`, the new key's scopes must be among them.
 */
export async function createApiKey(dataSource: DataSource, input: CreateApiKeyInput): Promise<CreatedApiKey> {
  const name = input.name.trim();
  if (name === '' || name.length > 255) throw badUserInput('name must be 1 to 255 characters', 'name');
  if (input.scopes.length === 0) throw badUserInput('give the key at least one scope', 'scopes');
  const unknown = input.scopes.filter((s) => !(ALL_SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) throw badUserInput(`unknown scope ${unknown.join(', ')}; known: ${ALL_SCOPES.join(', ')}`, 'scopes');
  const beyond = input.grantorScopes ? input.scopes.filter((s) => !input.grantorScopes!.has(s)) : [];
  if (beyond.length > 0) throw forbidden(`A key may only get scopes its creator holds; you lack ${[...new Set(beyond)].join(', ')}`);
  const tenantId = input.tenantId?.trim() || DEFAULT_TENANT;
  if (tenantId.length > 128) throw badUserInput('tenant takes at most 128 characters', 'tenant');
  const now = Date.now();
  const id = randomBytes(10).toString('hex').slice(0, 16);
  const secretPart = randomBytes(32).toString('base64url');
  const apiKey = Object.assign(new ApiKey(), {
    id,
    name,
    tenantId,
    scopes: [...new Set(input.scopes)].sort(),
    secretHash: hashSecret(secretPart),
    createdAt: new Date(now),
    lastUsedAt: null,
    revokedAt: null,
    expiresAt: expiryOf(input, now),
  });
  await writeTransaction(dataSource, (manager) => manager.insert(ApiKey, apiKey));
  return { apiKey, secret: `aql_${id}_${secretPart}` };
}

/** The keys of one tenant (or every tenant), oldest first; never their secrets. */
export function listApiKeys(dataSource: DataSource, tenantId?: string): Promise<ApiKey[]> {
  return dataSource.getRepository(ApiKey).find({ where: tenantId ? { tenantId } : {}, order: { createdAt: 'ASC' } });
}

/**
 * Revokes a key. Only once the revocation has committed does this process forget the key and end the
 * streams and sockets it opened (a rollback must leave both as they were).
 */
export async function revokeApiKey(dataSource: DataSource, id: string, tenantId?: string): Promise<ApiKey> {
  const key = await writeTransaction(dataSource, async (manager) => {
    const found = await manager.findOne(ApiKey, { where: tenantId ? { id, tenantId } : { id } });
    if (!found) throw notFound(`No API key with id "${id}"`);
    if (!found.revokedAt) {
      found.revokedAt = new Date();
      await manager.update(ApiKey, { id }, { revokedAt: found.revokedAt });
    }
    return found;
  });
  announceApiKeyRevoked(dataSource, key.id);
  return key;
}

/** Keys that can still be used: neither revoked nor expired. */
export async function countActiveApiKeys(dataSource: DataSource): Promise<number> {
  const now = new Date();
  return dataSource.getRepository(ApiKey).count({ where: [{ revokedAt: IsNull(), expiresAt: IsNull() }, { revokedAt: IsNull(), expiresAt: MoreThan(now) }] });
}
