import type { SignedViewerToken } from '../auth/viewer-token.js';
import { parseAuditLogFilter } from '../services/audit-log-filter.js';
import { createViewerToken } from '../services/viewer-tokens.js';
import { AuditLogFilterInput } from './audit-log-filter.js';
import { builder } from './builder.js';

const ViewerTokenRef = builder.objectRef<SignedViewerToken>('ViewerToken').implement({
  description: 'A read-only credential limited to a filter, for embedding the viewer. Shown once.',
  fields: (t) => ({
    token: t.exposeString('token', { description: 'Send it as "Authorization: Bearer <token>" (or hand it to the viewer at /audit-log).' }),
    expiresAt: t.field({ type: 'DateTime', resolve: (token) => token.expiresAt }),
  }),
});

builder.mutationField('createViewerToken', (t) =>
  t.field({
    type: ViewerTokenRef,
    authScopes: { admin: true },
    description:
      "Mints a short-lived, read-only token for the caller's tenant that sees only entries matching `filter` (every " +
      'auditLogs, auditLog, activityChart and auditLogAdded it runs is confined to it). `expiresIn` in seconds, at most 86400. ' +
      'The filter may not use `search`. Recorded as an entry (resource "viewer_token", action "create").',
    args: {
      filter: t.arg({ type: AuditLogFilterInput, required: true }),
      expiresIn: t.arg.int({ required: true }),
    },
    resolve: (_root, args, ctx) => createViewerToken(ctx, ctx.principal!, ctx.audit, parseAuditLogFilter(args.filter, ctx.tenantId), args.expiresIn),
  }),
);
