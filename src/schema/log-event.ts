import type { JsonValue } from '../shared/json.js';
import { logEvent } from '../services/log-event.js';
import { ActorInput } from './actor.js';
import { AuditLogRef } from './audit-log.js';
import { builder } from './builder.js';
import { COST } from './cost.js';

const LogEventInput = builder.inputType('LogEventInput', {
  fields: (t) => ({
    resource: t.string({ required: true }),
    action: t.string({ required: true }),
    resourceId: t.string(),
    name: t.string(),
    data: t.field({ type: 'JSON', description: 'The new state.' }),
    previousData: t.field({ type: 'JSON', description: 'The state before.' }),
    meta: t.field({ type: 'JSON' }),
    author: t.field({ type: ActorInput }),
    idempotencyKey: t.string({ description: 'A retry with the same key (per author) returns the first entry instead of writing another.' }),
  }),
});

builder.mutationField('logEvent', (t) =>
  t.field({
    type: AuditLogRef,
    authScopes: { write: true },
    complexity: COST.one,
    description:
      'Records one event, authored by the caller. Only a principal with audit:impersonate may name another author. ' +
      'JSON values are limited in size, depth and keys (MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_JSON_KEYS).',
    args: { input: t.arg({ type: LogEventInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      logEvent(ctx, ctx.principal!, ctx.audit, {
        ...input,
        author: input.author ? { id: String(input.author.id), name: input.author.name, type: input.author.type } : null,
        data: input.data as JsonValue | null | undefined,
        previousData: input.previousData as JsonValue | null | undefined,
        meta: input.meta as JsonValue | null | undefined,
      }),
  }),
);
