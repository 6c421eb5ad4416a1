import { retentionPolicy, setRetentionPolicy, type RetentionPolicy } from '../services/retention.js';
import { forbidden } from '../shared/errors.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';

const RetentionPolicyRef = builder.objectRef<RetentionPolicy>('RetentionPolicy').implement({
  description: "How long a tenant's entries are kept (README, \"Retention\"). Expired entries are removed on the server's schedule and by `auditql retention`.",
  fields: (t) => ({
    tenant: t.exposeString('tenant'),
    days: t.exposeInt('days', { nullable: true, description: 'Days entries are kept: the tenant\'s own setting, else RETENTION_DAYS; null: forever.' }),
    tenantDays: t.exposeInt('tenantDays', { nullable: true, description: "The tenant's own setting (0: forever, whatever RETENTION_DAYS says); null: it follows RETENTION_DAYS." }),
    defaultDays: t.exposeInt('defaultDays', { nullable: true, description: 'RETENTION_DAYS; null when unset (forever).' }),
    updatedAt: t.field({ type: 'DateTime', nullable: true, resolve: (policy) => (policy.updatedAt === null ? null : new Date(policy.updatedAt)) }),
    updatedBy: t.exposeString('updatedBy', { nullable: true }),
    anchorSequence: t.exposeInt('anchorSequence', { description: 'Where the chain starts now: 0 until a purge removed its first entries.' }),
  }),
});

/**
 * The tenant a policy call is about: the caller's own. Principals belong to one tenant each, so naming
 * another one is refused rather than silently ignored.
 */
function tenantOf(ctx: GraphQLContext, tenant: string | null | undefined): string {
  if (tenant != null && tenant !== ctx.tenantId) throw forbidden('An administrator sets the retention policy of their own tenant only');
  return ctx.tenantId;
}

builder.queryField('retentionPolicy', (t) =>
  t.field({
    type: RetentionPolicyRef,
    authScopes: { admin: true },
    args: { tenant: t.arg.string({ required: false, description: "Default: the caller's tenant (the only one it may name)." }) },
    resolve: (_root, args, ctx) => retentionPolicy(ctx.store, tenantOf(ctx, args.tenant), ctx.retentionDays),
  }),
);

builder.mutationField('setRetentionPolicy', (t) =>
  t.field({
    type: RetentionPolicyRef,
    authScopes: { admin: true },
    description: "Sets how many days the tenant's entries are kept (0: forever), or with `days: null` lets it follow RETENTION_DAYS again. Recorded as an entry (`set_retention`).",
    args: {
      tenant: t.arg.string({ required: false, description: "Default: the caller's tenant (the only one it may name)." }),
      days: t.arg.int({ required: false }),
    },
    resolve: async (_root, args, ctx) => {
      const tenant = tenantOf(ctx, args.tenant);
      const before = await retentionPolicy(ctx.store, tenant, ctx.retentionDays);
      const policy = await setRetentionPolicy(ctx.store, tenant, args.days ?? null, ctx.principal?.id ?? null, ctx.retentionDays);
      await ctx.metaAudit.record(ctx, { action: 'set_retention', operation: 'setRetentionPolicy', data: { tenantDays: policy.tenantDays, previousTenantDays: before.tenantDays, days: policy.days } });
      return policy;
    },
  }),
);
