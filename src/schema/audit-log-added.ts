import { GraphQLError } from 'graphql';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { parseAuditLogFilter } from '../services/audit-log-filter.js';
import { CredentialsExpired, SlowConsumer, streamAuditLogs } from '../services/audit-log-stream.js';
import { unauthenticated } from '../auth/authenticate.js';
import { decodeCursor, encodeCursor } from '../services/cursor.js';
import { ErrorCode } from '../shared/errors.js';
import { AuditLogFilterInput } from './audit-log-filter.js';
import { AuditLogRef } from './audit-log.js';
import { builder } from './builder.js';
import { COST, searchFactor } from './cost.js';
import { confine } from '../services/viewer-tokens.js';

builder.subscriptionField('auditLogAdded', (t) =>
  t.field({
    type: AuditLogRef,
    authScopes: { restrictedRead: true },
    // Live matching is in memory; a replay (`after`) reads like a page.
    complexity: (args) => (args.after ? COST.page * searchFactor(args.filter) : COST.one),
    description:
      'Every new entry matching the filter, in commit order. With `after` (a cursor from auditLogs, or the `cursor` of the last ' +
      'entry received), first replays every matching entry committed after it, then continues live with no gap and no duplicate. ' +
      'A subscriber that falls too far behind receives a SLOW_CONSUMER error and the stream ends; resubscribe with `after` to catch up.',
    args: {
      filter: t.arg({ type: AuditLogFilterInput }),
      after: t.arg.string(),
    },
    subscribe: async (_root, args, ctx) => {
      const filter = confine(parseAuditLogFilter(args.filter, ctx.tenantId), ctx.principal?.restriction);
      const after = args.after != null ? decodeCursor(args.after, 'after') : undefined;
      const principal = ctx.principal!;
      const release = await ctx.quotas.acquireSubscription(principal);
      return streamAuditLogs(ctx, filter, after, { expiresAt: principal.expiresAt, revoked: principal.revoked, onEnd: release });
    },
    resolve: (payload: AuditLog | SlowConsumer | CredentialsExpired) => {
      if (payload instanceof CredentialsExpired) {
        throw unauthenticated(`The credentials of this subscription ${payload.reason === 'revoked' ? 'were revoked' : 'have expired'}; subscribe again with valid ones`);
      }
      if (payload instanceof SlowConsumer) {
        throw new GraphQLError(`Subscriber fell more than ${payload.limit} entries behind and was closed; resubscribe with "after" to resume`, {
          extensions: { code: ErrorCode.SlowConsumer, after: payload.lastDelivered ? encodeCursor(payload.lastDelivered) : null },
        });
      }
      return payload;
    },
  }),
);
