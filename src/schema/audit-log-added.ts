import { GraphQLError, type GraphQLResolveInfo } from 'graphql';
import { parseResolveInfo, simplifyParsedResolveInfoFragmentWithType, type ResolveTree } from 'graphql-parse-resolve-info';
import { parseAuditLogFilter } from '../services/audit-log-filter.js';
import { CredentialsExpired, ShuttingDown, SlowConsumer, streamAuditLogs, type StreamItem } from '../services/audit-log-stream.js';
import { LARGE_FIELDS, type LargeField } from '../services/audit-log-replay.js';
import { unauthenticated } from '../auth/authenticate.js';
import { decodeCursor, encodeCursor, type LogPosition } from '../services/cursor.js';
import { ErrorCode } from '../shared/errors.js';
import { AuditLogFilterInput } from './audit-log-filter.js';
import { AuditLogRef } from './audit-log.js';
import { builder } from './builder.js';
import { COST, searchFactor } from './cost.js';
import { confine } from '../services/viewer-tokens.js';

function shuttingDown(resumeAfter: LogPosition | null): GraphQLError {
  return new GraphQLError('The server is shutting down; subscribe again (to another instance, or once it is back) with "after" to resume', {
    extensions: { code: ErrorCode.ShuttingDown, after: resumeAfter ? encodeCursor(resumeAfter) : null },
  });
}

/** The GraphQL fields of AuditLog that read each large column (`changes` compares both states). */
const READS: Record<string, readonly LargeField[]> = { data: ['data'], previousData: ['previousData'], meta: ['meta'], changes: ['data', 'previousData'] };

/**
 * The large fields the subscription's selection set needs (through aliases, fragments and directives), so
 * that a replay reads only those: `{ id action }` over entries of 190 KB each reads a few hundred bytes each.
 */
function largeFieldsSelected(info: GraphQLResolveInfo): Set<LargeField> {
  const parsed = parseResolveInfo(info) as ResolveTree | null;
  if (!parsed) return new Set(LARGE_FIELDS);
  const { fields } = simplifyParsedResolveInfoFragmentWithType(parsed, info.returnType);
  return new Set(Object.values(fields as Record<string, ResolveTree>).flatMap((field) => READS[field.name] ?? []));
}

builder.subscriptionField('auditLogAdded', (t) =>
  t.field({
    type: AuditLogRef,
    authScopes: { restrictedRead: true },
    // Live matching is in memory; a replay (`after`) reads like a page.
    complexity: (args) => (args.after ? COST.page * searchFactor(args.filter) : COST.one),
    description:
      'Every new entry matching the filter, in commit order. With `after` (a cursor from auditLogs, or the `cursor` of the last ' +
      'entry received), first replays every matching entry committed after it, then continues live with no gap and no duplicate. ' +
      'A subscriber that falls too far behind receives a SLOW_CONSUMER error and the stream ends; resubscribe with `after` to catch up. ' +
      'When the server shuts down, the stream ends with a SHUTTING_DOWN error whose `extensions.after` is the cursor to resume from.',
    args: {
      filter: t.arg({ type: AuditLogFilterInput }),
      after: t.arg.string(),
    },
    subscribe: async (_root, args, ctx, info) => {
      const filter = confine(parseAuditLogFilter(args.filter, ctx.tenantId), ctx.principal?.restriction);
      const after = args.after != null ? decodeCursor(args.after, 'after') : undefined;
      if (ctx.closing.aborted) throw shuttingDown(after ?? null);
      const principal = ctx.principal!;
      const release = await ctx.quotas.acquireSubscription(principal);
      ctx.metaAudit.read(ctx, { action: 'subscribe', operation: 'auditLogAdded', filter: { ...args.filter, after: args.after } });
      return streamAuditLogs(ctx, filter, after, {
        expiresAt: principal.expiresAt,
        revoked: principal.revoked,
        onEnd: release,
        fields: largeFieldsSelected(info),
        principalKey: `${principal.tenantId}\u0000${principal.id}`,
      });
    },
    resolve: (payload: StreamItem) => {
      if (payload instanceof ShuttingDown) throw shuttingDown(payload.resumeAfter);
      if (payload instanceof CredentialsExpired) {
        throw unauthenticated(`The credentials of this subscription ${payload.reason === 'revoked' ? 'were revoked' : 'have expired'}; subscribe again with valid ones`);
      }
      if (payload instanceof SlowConsumer) {
        throw new GraphQLError(`Subscriber fell more than ${payload.what} behind and was closed; resubscribe with "after" to resume`, {
          extensions: { code: ErrorCode.SlowConsumer, after: payload.lastDelivered ? encodeCursor(payload.lastDelivered) : null },
        });
      }
      return payload;
    },
  }),
);
