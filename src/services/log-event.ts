import type { AuditActor, AuditContext } from '../audit/context.js';
import type { JsonValue } from '../shared/json.js';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import type { ServiceDeps } from './deps.js';
import type { TenantDraft } from '../audit/group-commit.js';
import { GraphQLError } from 'graphql';
import { badUserInput, forbidden } from '../shared/errors.js';
import { Scope, type Principal } from '../auth/principal.js';
import { assertJsonWithinLimits } from './json-limits.js';

export interface LogEventInput {
  resource: string;
  action: string;
  resourceId?: string | null;
  name?: string | null;
  data?: JsonValue | null;
  previousData?: JsonValue | null;
  meta?: JsonValue | null;
  author?: AuditActor | null;
  idempotencyKey?: string | null;
}

const MAX_LENGTH = { resource: 255, action: 64, resourceId: 255, name: 512, idempotencyKey: 255, authorId: 255, authorName: 255, authorType: 64 };

function text(value: string | null | undefined, field: keyof typeof MAX_LENGTH, required: boolean): string | null {
  if (value == null) return null;
  const trimmed = value.trim();
  if (required && trimmed === '') throw badUserInput(`${field} must not be empty`, field);
  if (value.length > MAX_LENGTH[field]) throw badUserInput(`${field} takes at most ${MAX_LENGTH[field]} characters`, field);
  return required ? trimmed : value;
}

function validate(input: LogEventInput, deps: ServiceDeps) {
  const author = input.author
    ? {
        id: text(input.author.id, 'authorId', true)!,
        name: text(input.author.name, 'authorName', false),
        type: text(input.author.type, 'authorType', false),
      }
    : undefined;
  for (const field of ['data', 'previousData', 'meta'] as const) assertJsonWithinLimits(input[field], field, deps.limits);
  return {
    resource: text(input.resource, 'resource', true)!,
    action: text(input.action, 'action', true)!,
    resourceId: text(input.resourceId, 'resourceId', false),
    name: text(input.name, 'name', false),
    idempotencyKey: text(input.idempotencyKey, 'idempotencyKey', false),
    author,
  };
}

/** What an entry costs the tenant's write quota: its text fields and serialised JSON values, in bytes. */
function entryBytes(checked: ReturnType<typeof validate>, input: LogEventInput): number {
  const texts = [checked.resource, checked.action, checked.resourceId, checked.name, checked.idempotencyKey, checked.author?.id, checked.author?.name, checked.author?.type];
  let bytes = 0;
  for (const text of texts) if (text) bytes += Buffer.byteLength(text, 'utf8');
  for (const value of [input.data, input.previousData, input.meta]) if (value != null) bytes += Buffer.byteLength(JSON.stringify(value), 'utf8');
  return bytes;
}

/** The draft of an entry, checked: the author is the caller unless an impersonating principal names one. */
function draftOf(deps: ServiceDeps, principal: Principal, context: AuditContext, input: LogEventInput): { draft: TenantDraft; bytes: number } {
  // The author is the caller. Naming someone else is for trusted backends relaying their users, and
  // such entries also record who wrote them.
  if (input.author && !principal.scopes.has(Scope.Impersonate)) {
    throw forbidden('Only a principal with the audit:impersonate scope may set author');
  }
  const checked = validate(input, deps);
  const tenantId = principal.tenantId;
  const author = checked.author ?? { id: principal.id, name: principal.name, type: principal.type };
  const recordedBy = checked.author ? principal.id : null;
  // Keys are scoped to the tenant (by the unique index) and to the author (by being part of the key).
  const idempotencyKey = checked.idempotencyKey === null ? null : JSON.stringify([author?.id ?? null, checked.idempotencyKey]);
  const draft: TenantDraft = {
    tenantId,
    resource: checked.resource,
    action: checked.action,
    resourceId: checked.resourceId,
    name: checked.name,
    author,
    data: input.data ?? null,
    previousData: input.previousData ?? null,
    meta: input.meta ?? null,
    ip: context.ip ?? null,
    userAgent: context.userAgent ?? null,
    idempotencyKey,
    recordedBy,
  };
  return { draft, bytes: entryBytes(checked, input) };
}

/**
 * A replay hands back the first entry, which another principal may have written (two relays naming the
 * same author and key): only to a caller who may read entries, or who wrote it.
 */
function assertMayReceive(principal: Principal, entry: AuditLog): void {
  const writer = entry.recordedBy ?? entry.authorId;
  if (writer !== principal.id && !principal.scopes.has(Scope.Read)) {
    throw forbidden('An entry with this idempotency key was written by another principal, and you may not read entries');
  }
}

/**
 * Records one event. With an idempotency key, a retry by the same author returns the entry the first
 * attempt wrote instead of writing a second one.
 */
export async function logEvent(deps: ServiceDeps, principal: Principal, context: AuditContext, input: LogEventInput): Promise<AuditLog> {
  const { draft, bytes } = draftOf(deps, principal, context, input);
  await deps.quotas.consumeWrite(principal, bytes);
  const entry = await deps.commit(draft);
  assertMayReceive(principal, entry);
  return entry;
}

/** The most entries one `logEvents` takes. */
export const MAX_LOG_EVENTS = 1000;

/**
 * Records a list of events in one transaction, in their order: all are stored or none (an invalid item
 * refuses the whole list before anything is written). Each item keeps `logEvent`'s idempotency: an item
 * whose key (per author) names a stored entry returns that entry and writes nothing; two items of the list
 * with the same key are one entry. Every entry counts against the write rate (WRITE_RATE_LIMIT), so a
 * list may hold at most that many.
 */
export async function logEvents(deps: ServiceDeps, principal: Principal, context: AuditContext, inputs: LogEventInput[]): Promise<AuditLog[]> {
  const max = Math.min(MAX_LOG_EVENTS, deps.limits.writesPerSecond);
  if (inputs.length > max) {
    throw badUserInput(
      `logEvents takes at most ${max} entries (${max === MAX_LOG_EVENTS ? 'the most one list may hold' : 'WRITE_RATE_LIMIT, the entries a principal may write per second'}); split the list`,
      'inputs',
    );
  }
  if (inputs.length === 0) return [];
  const drafts: TenantDraft[] = [];
  let bytes = 0;
  inputs.forEach((input, i) => {
    try {
      const checked = draftOf(deps, principal, context, input);
      drafts.push(checked.draft);
      bytes += checked.bytes;
    } catch (error) {
      throw atItem(error, i);
    }
  });
  await deps.quotas.consumeWrite(principal, bytes, drafts.length);
  const entries = await deps.commitAll(drafts);
  for (const entry of entries) assertMayReceive(principal, entry);
  return entries;
}

/** The same error, naming the item of the list it is about (`inputs[3].resource must not be empty`). */
function atItem(error: unknown, index: number): unknown {
  if (!(error instanceof GraphQLError)) return error;
  const argument = error.extensions.argument;
  return new GraphQLError(`inputs[${index}]: ${error.message}`, {
    extensions: { ...error.extensions, ...(argument ? { argument: `inputs[${index}].${String(argument)}` } : {}), index },
  });
}
