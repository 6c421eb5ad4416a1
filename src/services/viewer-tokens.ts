import { withAuditContext, type AuditContext } from '../audit/context.js';
import { writeAuditEntries } from '../audit/writer.js';
import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { writeTransaction } from '../db/transaction.js';
import type { Principal, ViewerRestriction } from '../auth/principal.js';
import { MAX_VIEWER_TOKEN_SECONDS, signViewerToken, type SignedViewerToken } from '../auth/viewer-token.js';
import type { DataSource } from 'typeorm';
import { matchesAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import { badUserInput, forbidden } from '../shared/errors.js';

/**
 * Mints a viewer token for the caller's tenant, limited to `filter`, and records that it did (resource
 * "viewer_token", action "create"), so the log says who let whom see what, and until when.
 */
export async function createViewerToken(deps: { dataSource: DataSource }, principal: Principal, context: AuditContext, filter: AuditLogFilter, expiresIn: number): Promise<SignedViewerToken> {
  if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_VIEWER_TOKEN_SECONDS) {
    throw badUserInput(`expiresIn must be between 1 and ${MAX_VIEWER_TOKEN_SECONDS} seconds`, 'expiresIn');
  }
  const { tenantId, resource, resourceId, action, authorId, transactionId, from, to, ...others } = filter;
  // Only conditions a token can carry and every read can intersect; anything else is refused, not dropped.
  for (const [field, value] of Object.entries(others)) {
    if (value !== undefined) throw badUserInput(`A viewer token cannot be limited by ${field}; use resource, resourceId, action, authorId, transactionId, from and to`, `filter.${field}`);
  }
  const restriction: ViewerRestriction = JSON.parse(JSON.stringify({ resource, resourceId, action, authorId, transactionId, from, to }));
  const signed = await signViewerToken(deps.dataSource, { tenantId, restriction, createdBy: principal.id, expiresIn });
  await withAuditContext(context, () =>
    writeTransaction(deps.dataSource, (manager) =>
      writeAuditEntries(manager, [
        {
          tenantId,
          resource: 'viewer_token',
          action: 'create',
          resourceId: signed.id,
          data: { filter: toJson(restriction), expiresAt: signed.expiresAt.toISOString() },
        },
      ]),
    ),
  );
  return signed;
}

function toJson(restriction: ViewerRestriction) {
  const { from, to, ...rest } = restriction;
  return {
    ...rest,
    ...(from !== undefined ? { from: new Date(from).toISOString() } : {}),
    ...(to !== undefined ? { to: new Date(to).toISOString() } : {}),
  };
}

function intersect(field: string, requested: string[] | undefined, allowed: string[] | undefined): string[] | undefined {
  if (!allowed) return requested;
  if (!requested) return allowed;
  const both = requested.filter((value) => allowed.includes(value));
  if (both.length === 0) throw forbidden(`This viewer token does not show ${field} ${requested.map((v) => JSON.stringify(v)).join(', ')}`);
  return both;
}

function same(field: string, requested: string | undefined, allowed: string | undefined): string | undefined {
  if (allowed === undefined) return requested;
  if (requested !== undefined && requested !== allowed) throw forbidden(`This viewer token does not show ${field} ${JSON.stringify(requested)}`);
  return allowed;
}

/**
 * The filter a request may use: its own conditions and the viewer token's, both. Lists keep the values in
 * both (none in common is FORBIDDEN, which tells the reader why they see nothing), single values must
 * agree, and the time range is the overlap (an empty overlap matches nothing). Without a restriction the
 * filter is returned as it is.
 */
export function confine(filter: AuditLogFilter, restriction: ViewerRestriction | undefined): AuditLogFilter {
  if (!restriction) return filter;
  const confined: AuditLogFilter = { ...filter };
  const set = <K extends keyof AuditLogFilter>(key: K, value: AuditLogFilter[K] | undefined) => {
    if (value === undefined) delete confined[key];
    else confined[key] = value;
  };
  set('resource', intersect('resource', filter.resource, restriction.resource));
  set('action', intersect('action', filter.action, restriction.action));
  set('authorId', intersect('authorId', filter.authorId, restriction.authorId));
  set('resourceId', same('resourceId', filter.resourceId, restriction.resourceId));
  set('transactionId', same('transactionId', filter.transactionId, restriction.transactionId));
  const from = Math.max(filter.from ?? -Infinity, restriction.from ?? -Infinity);
  const to = Math.min(filter.to ?? Infinity, restriction.to ?? Infinity);
  set('from', Number.isFinite(from) ? from : undefined);
  set('to', Number.isFinite(to) ? Math.max(to, from) : undefined);
  return confined;
}

/** Whether a principal's restriction lets it see one entry (for lookups by id). */
export function visibleTo(entry: AuditLog, principal: Principal | null): boolean {
  const restriction = principal?.restriction;
  return !restriction || matchesAuditLogFilter(entry, { tenantId: entry.tenantId, ...restriction });
}
