import { publicKeyPem } from '../shared/chain/checkpoint.js';
import { createCheckpoint, listCheckpoints, type StoredCheckpoint } from '../services/checkpoints.js';
import { badUserInput } from '../shared/errors.js';
import { builder } from './builder.js';

const CheckpointRef = builder.objectRef<StoredCheckpoint>('Checkpoint').implement({
  description: "A signed statement of a tenant's chain head: keep them elsewhere; `auditql verify --checkpoints` holds the chain against them.",
  fields: (t) => ({
    id: t.id({ resolve: (checkpoint) => String(checkpoint.id) }),
    tenant: t.exposeString('tenant'),
    sequence: t.exposeInt('sequence'),
    hash: t.exposeString('hash'),
    createdAt: t.field({ type: 'DateTime', resolve: (checkpoint) => new Date(checkpoint.createdAt) }),
    keyId: t.exposeString('keyId', { description: 'RFC 7638 thumbprint of the signing key.' }),
    jws: t.exposeString('jws', { description: 'The checkpoint as a compact JWS (EdDSA / Ed25519); its payload is {createdAt, hash, sequence, tenant} in JCS form.' }),
  }),
});

const CheckpointPublicKeyRef = builder.objectRef<{ keyId: string; pem: string }>('CheckpointPublicKey').implement({
  fields: (t) => ({
    keyId: t.exposeString('keyId'),
    algorithm: t.string({ resolve: () => 'Ed25519' }),
    pem: t.exposeString('pem', { description: 'SPKI, PEM.' }),
  }),
});

builder.queryField('checkpointPublicKey', (t) =>
  t.field({
    type: CheckpointPublicKeyRef,
    authScopes: { read: true },
    description: 'The key that checks checkpoints; also served without credentials at GET /.well-known/auditql/checkpoint-key.',
    resolve: (_root, _args, ctx) => ({ keyId: ctx.checkpointKey.keyId, pem: publicKeyPem(ctx.checkpointKey.publicKey) }),
  }),
);

builder.queryField('auditCheckpoints', (t) =>
  t.connection(
    {
      type: CheckpointRef,
      authScopes: { admin: true },
      description: "The caller's tenant's checkpoints, newest first. All of them as one file: GET /checkpoints.",
      resolve: async (_root, args, ctx) => {
        if (args.last != null || args.before != null) throw badUserInput('auditCheckpoints pages forward only (first, after)', 'last');
        const first = args.first ?? 50;
        if (first < 1 || first > 500) throw badUserInput('"first" must be between 1 and 500', 'first');
        const after = args.after != null ? Number(args.after) : undefined;
        if (after !== undefined && !Number.isSafeInteger(after)) throw badUserInput('"after" is not a cursor of this list', 'after');
        const rows = await listCheckpoints(ctx.dataSource, ctx.tenantId, first + 1, after);
        const page = rows.slice(0, first);
        return {
          edges: page.map((node) => ({ node, cursor: String(node.id) })),
          pageInfo: { hasNextPage: rows.length > first, hasPreviousPage: after !== undefined, startCursor: page[0] ? String(page[0].id) : null, endCursor: page.at(-1) ? String(page.at(-1)!.id) : null },
        };
      },
    },
    { name: 'CheckpointConnection' },
    { name: 'CheckpointEdge' },
  ),
);

builder.mutationField('createCheckpoint', (t) =>
  t.field({
    type: CheckpointRef,
    authScopes: { admin: true },
    description: "Signs the caller's tenant's current chain head now (checkpoints are also written every CHECKPOINT_INTERVAL).",
    resolve: async (_root, _args, ctx) => {
      const checkpoint = await createCheckpoint(ctx.dataSource, ctx.checkpointKey, ctx.tenantId);
      await ctx.metaAudit.record(ctx, { action: 'checkpoint', operation: 'createCheckpoint', resourceId: String(checkpoint.id), data: { sequence: checkpoint.sequence, hash: checkpoint.hash } });
      return checkpoint;
    },
  }),
);
