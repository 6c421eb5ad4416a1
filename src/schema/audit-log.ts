import { Kind, responsePathAsArray, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { diff } from '../audit/diff.js';
import { AuditLog } from '../db/entities/audit-log.entity.js';
import { parseAuditLogFilter } from '../services/audit-log-filter.js';
import { countAuditLogs } from '../services/audit-log-query.js';
import { cursorOf, HEAVY_FIELDS, listWithinBudget, type HeavyField } from '../services/response-budget.js';
import { decodeCursor, encodeCursor, parseEntryId, positionOf } from '../services/cursor.js';
import { badUserInput, notFound } from '../shared/errors.js';
import { confine, visibleTo } from '../services/viewer-tokens.js';
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
    sequence: t.exposeInt('sequence', { description: "The entry's place in its tenant's chain: 1, 2, 3, … in commit order, without gaps." }),
    hash: t.exposeString('hash', { description: 'SHA-256 (hex) of the entry\'s canonical facts followed by previousHash (README, "Evidence").' }),
    previousHash: t.exposeString('previousHash', { description: 'The hash of the entry before it in the chain; 64 zeros for the first.' }),
    hashVersion: t.exposeInt('hashVersion', { description: 'The version of the canonical form the hash was computed with.' }),
  }),
});

/**
 * Which heavy fields of the entries (`edges { node { … } }`) the query selects, so that a list of ids is not
 * charged for payloads it does not return. Behind a fragment, everything counts.
 */
function selectedHeavyFields(info: GraphQLResolveInfo): ReadonlySet<HeavyField> {
  const all = new Set(HEAVY_FIELDS);
  const found = new Set<HeavyField>();
  const fieldsIn = (set: SelectionSetNode | undefined, name: string): Array<SelectionSetNode | undefined> | null => {
    const out: Array<SelectionSetNode | undefined> = [];
    for (const selection of set?.selections ?? []) {
      if (selection.kind !== Kind.FIELD) return null;
      if (selection.name.value === name) out.push(selection.selectionSet);
    }
    return out;
  };
  for (const field of info.fieldNodes) {
    const edges = fieldsIn(field.selectionSet, 'edges');
    if (!edges) return all;
    for (const edge of edges) {
      const nodes = fieldsIn(edge, 'node');
      if (!nodes) return all;
      for (const node of nodes) {
        for (const selection of node?.selections ?? []) {
          if (selection.kind !== Kind.FIELD) return all;
          if ((HEAVY_FIELDS as readonly string[]).includes(selection.name.value)) found.add(selection.name.value as HeavyField);
        }
      }
    }
  }
  return found;
}

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
    authScopes: { restrictedRead: true },
    complexity: COST.one,
    args: { id: t.arg.id({ required: true }) },
    description: 'One entry by id; an unknown id is a NOT_FOUND error.',
    resolve: async (_root, args, ctx) => {
      const entry = await ctx.loaders.auditLogById.load(parseEntryId(String(args.id)));
      if (!entry || !visibleTo(entry, ctx.principal)) throw notFound(`No audit log entry with id "${args.id}"`);
      ctx.metaAudit.read(ctx, { action: 'view', operation: 'auditLog', resourceId: String(args.id) });
      return entry;
    },
  }),
);

builder.queryField('auditLogs', (t) =>
  t.connection(
    {
      type: AuditLogRef,
      authScopes: { restrictedRead: true },
      complexity: auditLogsCost,
      description: `Entries matching the filter, newest first by default. Keyset-paginated: pages stay stable while new entries arrive. "first" defaults to ${DEFAULT_PAGE_SIZE}, at most ${MAX_PAGE_SIZE}.`,
      args: {
        filter: t.arg({ type: AuditLogFilterInput }),
        orderBy: t.arg({ type: AuditLogOrderEnum, defaultValue: 'NEWEST_FIRST' }),
      },
      resolve: async (_root, args, ctx, info) => {
        pageArgs(args);
        const after = args.after != null ? decodeCursor(args.after, 'after') : undefined;
        const before = args.before != null ? decodeCursor(args.before, 'before') : undefined;
        const filter = confine(parseAuditLogFilter(args.filter, ctx.tenantId), ctx.principal?.restriction);
        let cut = false;
        const connection = await resolveCursorConnection(
          { args, toCursor: (entry: AuditLog) => encodeCursor(positionOf(entry)), defaultSize: DEFAULT_PAGE_SIZE, maxSize: MAX_PAGE_SIZE },
          async ({ limit, inverted }: ResolveCursorConnectionArgs) => {
            const page = await listWithinBudget(ctx, filter, args.orderBy ?? 'NEWEST_FIRST', { after, before, limit, inverted }, ctx.responseBudget, selectedHeavyFields(info), ctx.reads);
            cut = page.cut;
            // `limit` asks for one entry more than the page, to learn whether another page follows.
            if (cut && page.entries.length < limit - 1) {
              ctx.responseBudget.cuts.push({ path: responsePathAsArray(info.path), returned: page.entries.length, after: cursorOf(page.entries.at(-1)) });
            }
            return page.entries;
          },
        );
        ctx.metaAudit.read(ctx, { action: 'view', operation: 'auditLogs', filter: { ...args.filter, orderBy: args.orderBy } });
        // A cut list continues where it stopped: more entries follow in the direction of travel.
        const pageInfo = cut ? { ...connection.pageInfo, ...(args.last != null ? { hasPreviousPage: true } : { hasNextPage: true }) } : connection.pageInfo;
        return { ...connection, pageInfo, totalCount: () => countAuditLogs(ctx, filter, ctx.reads) };
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
