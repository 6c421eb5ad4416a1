/**
 * The README's canonical form (hash versions 1 and 2) written the plain way, as a third party would from the
 * text: the facts object built whole, each personal value replaced by its salted digest, RFC 8785 by the
 * `canonicalize` package, SHA-256 by a hash object. Nothing here comes from src/shared/chain, so that the
 * verifier's fast form can be held against it.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { ChainRow } from '../../src/shared/chain/canonical.js';

const jcs = canonicalize as unknown as (value: unknown) => string;
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** RFC 6901: `/a~1b/0` → ['a/b', '0']. */
function segmentsOf(pointer: string): string[] {
  return pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** JCS(facts'): the stored row's 20 facts, JSON columns parsed, personal values replaced by their digests. */
export function referenceFactsText(row: ChainRow): string {
  const parse = (text: string | null): Json => (text === null ? null : (JSON.parse(text) as Json));
  const facts: { [key: string]: Json } = {
    action: row.action, authorId: row.authorId, authorName: row.authorName, authorType: row.authorType, createdAt: row.createdAt,
    data: parse(row.data), hashVersion: row.hashVersion, idempotencyKey: row.idempotencyKey, ip: row.ip, meta: parse(row.meta),
    personalPaths: [...row.personalPaths], previousData: parse(row.previousData), recordedBy: row.recordedBy,
    redactedChanges: row.redactedChanges === null ? null : [...row.redactedChanges], resource: row.resource, resourceId: row.resourceId,
    sequence: row.sequence, tenantId: row.tenantId, transactionId: row.transactionId, userAgent: row.userAgent,
  };
  // Version 2: one salt for the one-segment pointers (the actor's values), one for those inside JSON.
  const groupOf = (pointer: string) => (segmentsOf(pointer).length === 1 ? 'actor' : 'content');
  const erasedGroup = (group: string) => {
    const members = row.personalPaths.filter((pointer) => groupOf(pointer) === group);
    return members.length > 0 && members.every((pointer) => row.erasedDigests?.[pointer] !== undefined);
  };
  const saltOf = (pointer: string) => {
    if (row.hashVersion !== 2) return row.salt!;
    const group = groupOf(pointer);
    return erasedGroup(group === 'actor' ? 'content' : 'actor') ? row.salt! : sha256(group + row.salt!).slice(0, 32);
  };
  for (const pointer of row.personalPaths) {
    const path = segmentsOf(pointer);
    const key = path[path.length - 1]!;
    const parent = path.slice(0, -1).reduce<Json>((node, segment) => (node as { [key: string]: Json })[segment]!, facts) as { [key: string]: Json };
    parent[key] = row.erasedDigests?.[pointer] ?? sha256(saltOf(pointer) + jcs([pointer, parent[key]!]));
  }
  return jcs(facts);
}

/** The entry's hash by the README: SHA-256 of JCS(facts') followed by the previous hash. */
export const referenceHash = (row: ChainRow, previousHash: string) => sha256(referenceFactsText(row) + previousHash);
