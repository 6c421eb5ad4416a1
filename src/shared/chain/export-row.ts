/** Reading an export or archive line (README, "Export") back as the chain row it was written from. */
import type { JsonValue } from '../json.js';
import { canonicalJson, type ChainRow } from './canonical.js';

/** One line of an export (NDJSON; `.gz` too) as a chain row: JSON values are re-serialised in JCS form. */
export function chainRowFromExport(line: Record<string, unknown>): ChainRow {
  const text = (key: string) => (line[key] ?? null) as string | null;
  const json = (key: string) => (line[key] === null || line[key] === undefined ? null : canonicalJson(line[key] as JsonValue));
  const createdAt = typeof line.createdAt === 'string' ? Date.parse(line.createdAt) : Number(line.createdAt);
  return {
    tenantId: String(line.tenantId ?? line.tenant ?? 'default'),
    sequence: Number(line.sequence),
    hash: String(line.hash ?? ''),
    previousHash: String(line.previousHash ?? ''),
    hashVersion: Number(line.hashVersion),
    salt: text('salt'),
    personalPaths: (line.personalPaths as string[] | null) ?? [],
    erasedDigests: (line.erasedDigests as Record<string, string> | null) ?? null,
    createdAt,
    resource: String(line.resource),
    resourceId: text('resourceId'),
    action: String(line.action),
    authorId: text('authorId'),
    authorName: text('authorName'),
    authorType: text('authorType'),
    data: json('data'),
    previousData: json('previousData'),
    meta: json('meta'),
    ip: text('ip'),
    userAgent: text('userAgent'),
    transactionId: text('transactionId'),
    idempotencyKey: text('idempotencyKey'),
    redactedChanges: (line.redactedChanges as string[] | null) ?? null,
    recordedBy: text('recordedBy'),
  };
}

