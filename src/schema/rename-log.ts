import { parseEntryId, renameLog } from '../services/rename-log.js';
import { AuditLogRef } from './audit-log.js';
import { builder } from './builder.js';

builder.mutationField('renameLog', (t) =>
  t.field({
    type: AuditLogRef,
    description: 'Changes the human label of an entry; nothing else about an entry can be changed.',
    args: { id: t.arg.id({ required: true }), name: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => renameLog(ctx, ctx.tenantId, parseEntryId(String(args.id)), args.name),
  }),
);
