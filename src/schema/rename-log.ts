import { parseEntryId } from '../services/cursor.js';
import { renameLog } from '../services/rename-log.js';
import { AuditLogRef } from './audit-log.js';
import { builder } from './builder.js';
import { COST } from './cost.js';

builder.mutationField('renameLog', (t) =>
  t.field({
    type: AuditLogRef,
    authScopes: { admin: true },
    complexity: COST.one,
    description: 'Changes the human label of an entry; nothing else about an entry can be changed. The rename is itself recorded.',
    args: { id: t.arg.id({ required: true }), name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => renameLog(ctx, ctx.audit, parseEntryId(String(args.id)), args.name),
  }),
);
