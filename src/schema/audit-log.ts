import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { diff } from '../audit/diff.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { parseAuditLogFilter } from '../services/audit-log-filter.js';
import { countAuditLogs, listAuditLogs } from '../services/audit-log-query.js';
import { decodeCursor, encodeCursor, parseEntryId, positionOf } from '../services/cursor.js';
import { badUserInput, notFound } from '../shared/errors.js';
import { ActorRef } from './actor.js';
import { AuditLogFilterInput, AuditLogOrderEnum } from './audit-log-filter.js';
import { builder } from './builder.js';
import { auditLogsCost, COST } from './cost.js';
import { FieldChangeRef } from './field-change.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export const AuditLogRef = builder.objectType(AuditLog, {
  name: 'AuditLog',
  description: 'One recorded fact: who did what to which record, when, with the state before and after.',
  fields: (t) => ({
    id: t.id({ description: 'Opaque.', resolve: (entry) => String(entry.id) }),
    cursor: t.string({
      description: 'This entry\'s position: pass it as `after` to `auditLogs` or `auditLogAdded` to resume after it.',
      resolve: (entry) => encodeCursor(positionOf(entry)),
    }),
    resource: t.exposeString('resource'),
    resourceId: t.exposeString('resourceId', { nullable: true }),
    action: t.exposeString('action', { description: '"create", "update", "delete", or any custom action such as "login".' }),
    name: t.exposeString('name', { nullable: true }),
    author: t.field({
      type: ActorRef,
      nullable: true,
      resolve: (entry) => (entry.authorId === null ? null : { id: entry.authorId, name: entry.authorName, type: entry.authorType }),
    }),
    data: t.field({ type: 'JSON', nullable: true, description: 'The new state.', resolve: (entry) => entry.data }),
    previousData: t.field({ type: 'JSON', nullable: true, description: 'The state before.', resolve: (entry) => entry.previousData }),
    changes: t.field({ type: [FieldChangeRef], resolve: (entry) => diff(entry.previousData, entry.data, entry.redactedChanges ?? []) }),
    meta: t.field({ type: 'JSON', nullable: true, resolve: (entry) => entry.meta }),
    ip: t.exposeString('ip', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    transactionId: t.exposeString('transactionId', { nullable: true, description: 'Shared by every entry one database transaction wrote.' }),
    recordedBy: t.exposeString('recordedBy', { nullable: true, description: 'The principal that wrote this entry in the author\'s name (a service relaying its users).' }),
    createdAt: t.field({ type: 'DateTime', resolve: (entry) => entry.createdAt }),
  }),
});

function pageArgs(args: { first?: number | null; last?: number | null }) {
  if (args.first != null && args.last != null) throw badUserInput('Pass either "first" or "last", not both', 'first');
  for (const name of ['first', 'last'] as const) {
    const value = args[name];
    if (value != null && (value < 1 || value > MAX_PAGE_SIZE)) throw badUserInput(`"${name}" must be between 1 and ${MAX_PAGE_SIZE}`, name);
  }
}

builder.queryField('auditLog', (t) =>
  t.field({
    type: AuditLogRef,
    nullable: true,
    authScopes: { read: true },
    complexity: COST.one,
    args: { id: t.arg.id({ required: true }) },
    description: 'One entry by id; an unknown id is a NOT_FOUND error.',
    resolve: async (_root, args, ctx) => {
      const entry = await ctx.loaders.auditLogById.load(parseEntryId(String(args.id)));
      if (!entry) throw notFound(`No audit log entry with id "${args.id}"`);
      return entry;
    },
  }),
);

builder.queryField('auditLogs', (t) =>
  t.connection(
    {
      type: AuditLogRef,
      authScopes: { read: true },
      complexity: auditLogsCost,
      description: `Entries matching the filter, newest first by default. Keyset-paginated: pages stay stable while new entries arrive. "first" defaults to ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE}.`,
      args: {
        filter: t.arg({ type: AuditLogFilterInput }),
        orderBy: t.arg({ type: AuditLogOrderEnum, defaultValue: 'NEWEST_FIRST' }),
      },
      resolve: async (_root, args, ctx) => {
        pageArgs(args);
        const after = args.after != null ? decodeCursor(args.after, 'after') : undefined;
        const before = args.before != null ? decodeCursor(args.before, 'before') : undefined;
        const filter = parseAuditLogFilter(args.filter, ctx.tenantId);
        const connection = await resolveCursorConnection(
          { args, toCursor: (entry: AuditLog) => encodeCursor(positionOf(entry)), defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE },
          ({ limit, inverted }: ResolveCursorConnectionArgs) => listAuditLogs(ctx.dataSource, filter, args.orderBy ?? 'NEWEST_FIRST', { after, before, limit, inverted }),
        );
        return { ...connection, totalCount: () => countAuditLogs(ctx.dataSource, filter) };
      },
    },
    {
      name: 'AuditLogConnection',
      fields: (c) => ({
        totalCount: c.int({ description: 'All entries matching the filter, across pages.', complexity: COST.count, resolve: (connection) => connection.totalCount() }),
      }),
    },
    { name: 'AuditLogEdge' },
  ),
);
