import { ApiKey } from '../db/entities/api-key.entity.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../services/api-keys.js';
import { builder } from './builder.js';
import { COST } from './cost.js';

const ApiKeyRef = builder.objectType(ApiKey, {
  name: 'ApiKey',
  description: 'Credentials of a machine client. The secret is shown once, when the key is created.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    scopes: t.exposeStringList('scopes'),
    tenant: t.exposeString('tenantId'),
    createdAt: t.field({ type: 'DateTime', resolve: (key) => key.createdAt }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.lastUsedAt }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (key) => key.revokedAt }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, description: 'After this instant the key is refused; null: it does not expire.', resolve: (key) => key.expiresAt }),
  }),
});

const CreatedApiKeyRef = builder.objectRef<{ apiKey: ApiKey; secret: string }>('CreatedApiKey').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, resolve: (created) => created.apiKey }),
    secret: t.exposeString('secret', { description: 'Send it as "Authorization: Bearer <secret>" or "x-api-key: <secret>". Not retrievable later.' }),
  }),
});

builder.queryField('apiKeys', (t) =>
  t.field({
    type: [ApiKeyRef],
    authScopes: { admin: true },
    complexity: COST.one,
    description: "The API keys of the caller's tenant, revoked ones included.",
    resolve: (_root, _args, ctx) => listApiKeys(ctx.dataSource, ctx.tenantId),
  }),
);

builder.mutationField('createApiKey', (t) =>
  t.field({
    type: CreatedApiKeyRef,
    authScopes: { admin: true },
    complexity: COST.one,
    description:
      "Creates a key in the caller's tenant. Its scopes must be among the caller's own. With API_KEY_MAX_TTL set, " +
      'keys expire at most that long from now (and by then when expiresAt is not given).',
    args: {
      name: t.arg.string({ required: true }),
      scopes: t.arg.stringList({ required: true }),
      expiresAt: t.arg({ type: 'DateTime', description: 'When the key stops working; omitted: never (or API_KEY_MAX_TTL from now).' }),
    },
    resolve: async (_root, args, ctx) => {
      const created = await createApiKey(ctx.dataSource, {
        name: args.name,
        scopes: args.scopes,
        tenantId: ctx.tenantId,
        expiresAt: args.expiresAt,
        grantorScopes: ctx.principal!.scopes,
        maxTtlSeconds: ctx.limits.apiKeyMaxTtlSeconds,
      });
      await ctx.metaAudit.record(ctx, { resource: 'api_key', action: 'create_key', operation: 'createApiKey', resourceId: created.apiKey.id, data: { name: created.apiKey.name, scopes: created.apiKey.scopes } });
      return created;
    },
  }),
);

builder.mutationField('revokeApiKey', (t) =>
  t.field({
    type: ApiKeyRef,
    authScopes: { admin: true },
    complexity: COST.one,
    description: 'Revokes a key at once; requests with it are UNAUTHENTICATED from then on.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      const key = await revokeApiKey(ctx.dataSource, String(args.id), ctx.tenantId);
      await ctx.metaAudit.record(ctx, { resource: 'api_key', action: 'revoke_key', operation: 'revokeApiKey', resourceId: key.id, data: { name: key.name } });
      return key;
    },
  }),
);
