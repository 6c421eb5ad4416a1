import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ComplexityPlugin from '@pothos/plugin-complexity';
import { GraphQLError } from 'graphql';
import { Scope } from '../auth/principal.js';
import { ErrorCode } from '../shared/errors.js';
import { DateTimeISOResolver, JSONResolver } from 'graphql-scalars';
import type { GraphQLContext } from './context.js';
import type { JsonValue } from '../shared/json.js';

/** Configuration only: plugins, scalars, context. Types live one per file beside this one. */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: {
    /** audit:read with no restriction: the whole tenant. */
    read: boolean;
    /** audit:read, possibly restricted (viewer tokens): for the reads that confine themselves to `principal.restriction`. */
    restrictedRead: boolean;
    write: boolean;
    admin: boolean;
    impersonate: boolean;
  };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: JsonValue; Output: unknown };
    ID: { Input: string; Output: string | number };
  };
}>({
  // Scope auth must come first so that it wraps every other plugin's resolvers.
  plugins: [ScopeAuthPlugin, ComplexityPlugin, RelayPlugin],
  // Fields cost nothing unless they say so (src/schema/cost.ts): the costly ones declare it beside their
  // definition. No `limit` here: src/server/cost-limit.ts enforces MAX_QUERY_COST once per operation,
  // before execution, on every transport.
  complexity: { defaultComplexity: 0, defaultListMultiplier: 1 },
  scopeAuth: {
    authScopes: ({ principal }) => ({
      // A restricted principal (a viewer token) may only use the reads that apply its restriction, so a read
      // added later is closed to it until it does too.
      read: !!principal?.scopes.has(Scope.Read) && !principal.restriction,
      restrictedRead: !!principal?.scopes.has(Scope.Read),
      write: !!principal?.scopes.has(Scope.Write),
      admin: !!principal?.scopes.has(Scope.Admin),
      impersonate: !!principal?.scopes.has(Scope.Impersonate),
    }),
    // Subscriptions are checked when they start, not per event.
    authorizeOnSubscribe: true,
    unauthorizedError: (_parent, context) =>
      context.principal
        ? new GraphQLError('Your credentials do not allow this operation', { extensions: { code: ErrorCode.Forbidden } })
        : new GraphQLError('Send credentials: "Authorization: Bearer <token>" or "x-api-key: <key>"', { extensions: { code: ErrorCode.Unauthenticated } }),
  },
  // Output fields are non-null unless they say otherwise: clients can rely on what the contract promises.
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // Entries are addressed by `auditLog(id:)`; a generic `node` field would be one more door to guard.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    edgesFieldOptions: { nullable: false },
    nodeFieldOptions: { nullable: false },
  },
});

builder.addScalarType('DateTime', DateTimeISOResolver, {
  description: 'An ISO-8601 instant. Output is always UTC with milliseconds, e.g. 2026-11-22T10:15:30.123Z.',
});
builder.addScalarType('JSON', JSONResolver, {});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
