import type { JsonValue } from '../shared/json.js';
import { logEvent, logEvents, MAX_LOG_EVENTS } from '../services/log-event.js';
import { ActorInput } from './actor.js';
import { AuditLogRef } from './audit-log.js';
import { builder } from './builder.js';
import { COST, logEventsCost } from './cost.js';

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

type LogEventArgs = typeof LogEventInput.$inferInput;

/** The GraphQL input as the service takes it (JSON values typed, the author's id as text). */
const toServiceInput = (input: LogEventArgs) => ({
  ...input,
  author: input.author ? { id: String(input.author.id), name: input.author.name, type: input.author.type } : null,
  data: input.data as JsonValue | null | undefined,
  previousData: input.previousData as JsonValue | null | undefined,
  meta: input.meta as JsonValue | null | undefined,
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
    resolve: (_root, { input }, ctx) => logEvent(ctx, ctx.principal!, ctx.audit, toServiceInput(input)),
  }),
);

builder.mutationField('logEvents', (t) =>
  t.field({
    type: [AuditLogRef],
    authScopes: { write: true },
    // The write is bounded by MAX_LOG_EVENTS; aliases repeating it count again.
    complexity: (args) => logEventsCost(args.inputs.length),
    description:
      `Records a list of events (at most ${MAX_LOG_EVENTS}, and at most WRITE_RATE_LIMIT) in one transaction, in order: all are stored or none, ` +
      'and an invalid item refuses the whole list (its index in the error). Each entry counts as one write against WRITE_RATE_LIMIT. ' +
      'Idempotency is per item, as for logEvent: an item whose key names a stored entry returns that entry and writes nothing. ' +
      'Returns one entry per item, in the same order.',
    args: { inputs: t.arg({ type: [LogEventInput], required: true }) },
    resolve: (_root, { inputs }, ctx) => logEvents(ctx, ctx.principal!, ctx.audit, inputs.map(toServiceInput)),
  }),
);
