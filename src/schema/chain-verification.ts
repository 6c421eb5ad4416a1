import { verifyTenantChain } from '../services/chain.js';
import { ChainFailure, type ChainVerification } from '../shared/chain/verify.js';
import { builder } from './builder.js';

const ChainFailureEnum = builder.enumType('ChainFailure', {
  description: 'Why a chain does not verify.',
  values: {
    HASH_MISMATCH: { value: ChainFailure.HashMismatch, description: "The entry's hash is not the hash of its facts and the previous hash: its facts were changed." },
    PREVIOUS_HASH_MISMATCH: { value: ChainFailure.PreviousHashMismatch, description: "The entry's previousHash is not the hash of the entry before it." },
    SEQUENCE_GAP: { value: ChainFailure.SequenceGap, description: 'An entry is missing: the sequence jumps.' },
    DUPLICATE_SEQUENCE: { value: ChainFailure.DuplicateSequence, description: 'Two entries claim one sequence number.' },
    HEAD_MISMATCH: { value: ChainFailure.HeadMismatch, description: 'The entries end before, or go on past, the recorded head: the tail was cut or extended.' },
    CHECKPOINT_MISMATCH: { value: ChainFailure.CheckpointMismatch, description: 'A signed checkpoint names another hash at its sequence, or lies past the end: the chain was rewritten.' },
    CHECKPOINT_SIGNATURE: { value: ChainFailure.CheckpointSignature, description: "A stored checkpoint's signature does not verify with the checkpoint key." },
    UNKNOWN_HASH_VERSION: { value: ChainFailure.UnknownHashVersion, description: 'The entry names a version of the canonical form this server does not know.' },
    MALFORMED_ENTRY: { value: ChainFailure.MalformedEntry, description: 'The entry cannot be read as a chain entry (bad JSON, a personal value without salt or digest …).' },
  } as const,
});

const ChainVerificationRef = builder.objectRef<ChainVerification>('ChainVerification').implement({
  description: "The result of recomputing a tenant's chain.",
  fields: (t) => ({
    valid: t.exposeBoolean('valid'),
    checked: t.exposeInt('checked', { description: 'Entries whose hash was recomputed.' }),
    firstInvalidSequence: t.exposeInt('firstInvalidSequence', { nullable: true }),
    reason: t.field({ type: ChainFailureEnum, nullable: true, resolve: (result) => result.reason }),
    detail: t.exposeString('detail', { nullable: true, description: 'What was found, in words.' }),
    headSequence: t.exposeInt('headSequence', { description: 'The last entry verified.' }),
    headHash: t.exposeString('headHash'),
    anchorSequence: t.exposeInt('anchorSequence', { description: 'Where the chain starts: 0 unless retention re-anchored it.' }),
    checkpointsChecked: t.exposeInt('checkpointsChecked', { description: 'Signed checkpoints the chain was held against.' }),
  }),
});

builder.queryField('verifyAuditChain', (t) =>
  t.field({
    type: ChainVerificationRef,
    authScopes: { admin: true },
    description:
      "Recomputes the caller's tenant's chain from fromSequence (default: its start) through toSequence (default: its head) and holds it against " +
      'the stored signed checkpoints. Reads in batches without blocking the server. See README, "Evidence".',
    args: { fromSequence: t.arg.int(), toSequence: t.arg.int() },
    resolve: async (_root, args, ctx) => {
      const result = await verifyTenantChain(ctx.dataSource, ctx.checkpointKey, ctx.tenantId, args);
      await ctx.metaAudit.record(ctx, {
        action: 'verify',
        operation: 'verifyAuditChain',
        filter: { fromSequence: args.fromSequence, toSequence: args.toSequence },
        data: { valid: result.valid, checked: result.checked, firstInvalidSequence: result.firstInvalidSequence, reason: result.reason, headSequence: result.headSequence },
      });
      return result;
    },
  }),
);
