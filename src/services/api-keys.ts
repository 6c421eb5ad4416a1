import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { DEFAULT_TENANT } from '../shared/tenant.js';
import { apiKeyRevoked, forgetApiKey, hashSecret } from '../auth/api-keys.js';
import { ALL_SCOPES } from '../auth/principal.js';
import { ApiKey } from '../db/entities/api-key.entity.js';
import { writeTransaction } from '../db/transaction.js';
import { badUserInput, notFound } from '../shared/errors.js';

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
    secretHash: hashSecret(secretPart),
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
  forgetApiKey(dataSource, id);
  const revoked = await writeTransaction(dataSource, async (manager) => {
    const key = await manager.findOne(ApiKey, { where: tenantId ? { id, tenantId } : { id } });
    if (!key) throw notFound(`No API key with id "${id}"`);
    if (!key.revokedAt) {
      key.revokedAt = new Date();
      await manager.update(ApiKey, { id }, { revokedAt: key.revokedAt });
    }
    return key;
  });
  // Again after the commit (a request may have remembered the key meanwhile), and for the other instances.
  apiKeyRevoked(dataSource, id);
  return revoked;
}

export async function countActiveApiKeys(dataSource: DataSource): Promise<number> {
  return dataSource.getRepository(ApiKey).createQueryBuilder('k').where('k.revokedAt IS NULL').getCount();
}
