import canonicalize from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalJson, entryHash, factsText, GENESIS_HASH, personalDigest, saltFor, type ChainRow } from '../src/shared/chain/canonical.js';
import { linkEntries, type UnlinkedEntry } from '../src/shared/chain/link.js';
import { DEFAULT_PERSONAL_FIELDS, findPersonalPaths, nameRuleMatcher } from '../src/shared/chain/personal.js';
import { parsePointer, replaceAt, valueAt } from '../src/shared/chain/pointer.js';
import { verifyChain } from '../src/shared/chain/verify.js';
import type { JsonValue } from '../src/shared/json.js';
import { random } from './helpers/seed.js';

const jcs = canonicalize as unknown as (value: unknown) => string;
const matcher = nameRuleMatcher(DEFAULT_PERSONAL_FIELDS);

function entry(i: number, overrides: Partial<UnlinkedEntry> = {}): UnlinkedEntry {
  return {
    tenantId: 'default', createdAt: 1_763_800_000_000 + i, resource: 'posts', resourceId: String(i), action: 'update',
    authorId: `u${i % 3}`, authorName: i % 2 ? `Ann ${i}` : null, authorType: 'user',
    data: { title: `T${i}`, b: [1, 2.5, -0, 1e21, 'x'], customer: { email: `c${i}@example.com`, note: 'ü€😀' } },
    previousData: i % 3 ? { title: 'old' } : null, meta: { requestId: `r${i}`, 'é': 1, Z: 2 },
    ip: '127.0.0.1', userAgent: i % 2 ? 'agent/1' : null, transactionId: `tx${i}`, idempotencyKey: null,
    redactedChanges: i % 4 ? null : ['password'], recordedBy: null, ...overrides,
  };
}

/** The facts object a third party builds from a stored row, personal values replaced by their digests. */
function factsObject(row: ChainRow): Record<string, JsonValue> {
  const facts: Record<string, JsonValue> = {
    action: row.action, authorId: row.authorId, authorName: row.authorName, authorType: row.authorType, createdAt: row.createdAt,
    data: row.data === null ? null : JSON.parse(row.data), hashVersion: row.hashVersion, idempotencyKey: row.idempotencyKey, ip: row.ip,
    meta: row.meta === null ? null : JSON.parse(row.meta), personalPaths: row.personalPaths,
    previousData: row.previousData === null ? null : JSON.parse(row.previousData), recordedBy: row.recordedBy,
    redactedChanges: row.redactedChanges, resource: row.resource, resourceId: row.resourceId, sequence: row.sequence,
    tenantId: row.tenantId, transactionId: row.transactionId, userAgent: row.userAgent,
  };
  for (const pointer of row.personalPaths) {
    const segments = parsePointer(pointer);
    const digest = row.erasedDigests?.[pointer] ?? personalDigest(saltFor(row, pointer)!, pointer, valueAt(facts, segments)!);
    replaceAt(facts, segments, digest);
  }
  return facts;
}

function link(entries: UnlinkedEntry[]) {
  return linkEntries(new Map([['default', { sequence: 0, hash: GENESIS_HASH }], ['acme', { sequence: 0, hash: GENESIS_HASH }]]), entries, matcher);
}

describe('the canonical form', () => {
  it('writes the same bytes as RFC 8785 over the facts object, for generated entries', () => {
    const next = random(7);
    const entries = Array.from({ length: 300 }, (_, i) =>
      entry(i, {
        data: { [`k${Math.floor(next() * 100)}`]: next() * 1e6, nested: { z: [next(), { email: 'e@x', phone: null }], a: 'ä\u2028\u0001"\\' }, list: [{ fullName: 'N' }] },
        authorName: next() > 0.5 ? 'Bob' : null,
      }),
    );
    for (const row of link(entries).rows) {
      expect(factsText(row)).toBe(jcs(factsObject(row)));
      expect(row.hash).toBe(entryHash(row, row.previousHash));
    }
  });

  it('stores JSON columns in JCS form and lists personal values by JSON pointer', () => {
    const [row] = link([entry(1)]).rows;
    expect(row!.data).toBe(canonicalJson(entry(1).data!));
    expect(row!.meta).toBe('{"Z":2,"requestId":"r1","é":1}');
    expect(row!.personalPaths).toEqual(['/authorId', '/authorName', '/data/customer/email', '/ip', '/userAgent']);
    expect(row!.salt).toMatch(/^[0-9a-f]{32}$/);
    // The digested value appears in the hashed text only as its digest.
    expect(factsText(row!)).not.toContain('c1@example.com');
    expect(factsText(row!)).not.toContain('Ann 1');
  });

  it('gives an entry without personal values no salt', () => {
    const [row] = link([entry(2, { authorId: null, ip: null, data: null })]).rows;
    expect(row!.personalPaths).toEqual([]);
    expect(row!.salt).toBeNull();
  });

  it('matches field names by part across camelCase, snake_case and kebab-case, and RegExps whole', () => {
    const m = nameRuleMatcher(['email', 'firstName', /^ssn$/i]);
    expect(['email', 'userEmail', 'email_address', 'EMAIL', 'first_name', 'customer-first-name', 'SSN'].map(m)).toEqual([true, true, true, true, true, true, true]);
    expect(['emails', 'name', 'first', 'ssnx', 'firstname'].map(m)).toEqual([false, false, false, false, false]);
    expect(findPersonalPaths({ authorId: null, authorName: null, ip: null, userAgent: null, data: { 'a/b': { email: 'x' }, list: [{ email: 'y' }] }, previousData: null, meta: null }, m)).toEqual([
      '/data/a~1b/email',
      '/data/list/0/email',
    ]);
    // Answers are remembered per name; asking again, or with a stateful /g pattern, answers the same.
    expect(['userEmail', 'userEmail', 'SSN', 'SSN'].map(m)).toEqual([true, true, true, true]);
    const global = nameRuleMatcher([/ssn/gi]);
    expect(['ssn', 'ssn', 'ssn'].map(global)).toEqual([true, true, true]);
  });
});

describe('the chain', () => {
  it('links per tenant and verifies', async () => {
    const { rows, heads } = link([entry(1), entry(2, { tenantId: 'acme' }), entry(3), entry(4, { tenantId: 'acme' })]);
    expect(rows.map((r) => [r.tenantId, r.sequence])).toEqual([['default', 1], ['acme', 1], ['default', 2], ['acme', 2]]);
    expect(rows[2]!.previousHash).toBe(rows[0]!.hash);
    expect(heads.get('acme')).toEqual({ sequence: 2, hash: rows[3]!.hash });
    const ok = await verifyChain([rows.filter((r) => r.tenantId === 'default')], { head: heads.get('default') });
    expect(ok).toMatchObject({ valid: true, checked: 2, headSequence: 2, headHash: rows[2]!.hash });
  });

  it('still verifies after personal values and the salt are erased, their digests kept', async () => {
    const { rows, heads } = link([entry(1), entry(2), entry(3)]);
    const erased = rows.map((row) => {
      if (!row.salt) return row;
      const facts = factsObject(row);
      const digests = Object.fromEntries(row.personalPaths.map((p) => [p, valueAt(facts, parsePointer(p)) as string]));
      const data = JSON.parse(row.data!);
      replaceAt(data, ['customer', 'email'], '[ERASED]');
      return { ...row, authorName: null, ip: null, userAgent: null, data: canonicalJson(data), salt: null, erasedDigests: digests };
    });
    expect(JSON.stringify(erased)).not.toMatch(/example\.com|Ann|127\.0\.0\.1|agent\/1/);
    expect(await verifyChain([erased], { head: heads.get('default') })).toMatchObject({ valid: true, checked: 3 });
  });

  it('finds a changed fact, a changed personal value, a missing salt and a broken link at the right sequence', async () => {
    const { rows, heads } = link([1, 2, 3, 4, 5].map((i) => entry(i)));
    const head = heads.get('default');
    const edited = (i: number, change: Partial<ChainRow>) => rows.map((r, k) => (k === i ? { ...r, ...change } : r));
    expect(await verifyChain([edited(2, { action: 'delete' })], { head })).toMatchObject({ valid: false, reason: 'HASH_MISMATCH', firstInvalidSequence: 3, checked: 3 });
    expect(await verifyChain([edited(1, { ip: '10.0.0.1' })], { head })).toMatchObject({ reason: 'HASH_MISMATCH', firstInvalidSequence: 2 });
    expect(await verifyChain([edited(3, { salt: null })], { head })).toMatchObject({ reason: 'MALFORMED_ENTRY', firstInvalidSequence: 4 });
    expect(await verifyChain([edited(3, { previousHash: GENESIS_HASH })], { head })).toMatchObject({ reason: 'PREVIOUS_HASH_MISMATCH', firstInvalidSequence: 4 });
    expect(await verifyChain([rows.filter((r) => r.sequence !== 2)], { head })).toMatchObject({ reason: 'SEQUENCE_GAP', firstInvalidSequence: 2 });
    expect(await verifyChain([rows.slice(0, 3)], { head })).toMatchObject({ reason: 'HEAD_MISMATCH', firstInvalidSequence: 4 });
    expect(await verifyChain([[...rows.slice(0, 3), rows[2]!, ...rows.slice(3)]], { head })).toMatchObject({ reason: 'DUPLICATE_SEQUENCE', firstInvalidSequence: 3 });
    expect(await verifyChain([edited(4, { hashVersion: 9 })], { head })).toMatchObject({ reason: 'UNKNOWN_HASH_VERSION', firstInvalidSequence: 5 });
    // A range from the middle takes the first row's previousHash as given.
    expect(await verifyChain([rows.slice(2, 4)], { from: 3, to: 4, head })).toMatchObject({ valid: true, checked: 2, headSequence: 4 });
  });

  it('accepts JSON that is not in JCS form when it means the same, and batches of any size', async () => {
    const { rows, heads } = link([entry(1), entry(2)]);
    const reordered = rows.map((r) => ({ ...r, meta: JSON.stringify({ requestId: JSON.parse(r.meta!).requestId, Z: 2, 'é': 1 }) }));
    expect(reordered[0]!.meta).not.toBe(rows[0]!.meta);
    expect(await verifyChain([[reordered[0]!], [], [reordered[1]!]], { head: heads.get('default') })).toMatchObject({ valid: true, checked: 2 });
  });

  it('holds a rewritten chain against signed checkpoints', async () => {
    const { rows, heads } = link([1, 2, 3, 4].map((i) => entry(i)));
    const checkpoints = [{ sequence: 3, hash: rows[2]!.hash }];
    // Rewrite from entry 2 on, recomputing every later hash: valid on its own …
    const forged = linkEntries(new Map([['default', { sequence: 1, hash: rows[0]!.hash }]]), [entry(2, { action: 'forged' }), entry(3), entry(4)], matcher);
    const rewritten = [rows[0]!, ...forged.rows];
    expect(await verifyChain([rewritten], { head: forged.heads.get('default') })).toMatchObject({ valid: true });
    // … but not against the checkpoint.
    expect(await verifyChain([rewritten], { head: forged.heads.get('default'), checkpoints })).toMatchObject({ reason: 'CHECKPOINT_MISMATCH', firstInvalidSequence: 3 });
    expect(await verifyChain([rows.slice(0, 2)], { head: { sequence: 2, hash: rows[1]!.hash }, checkpoints })).toMatchObject({ reason: 'CHECKPOINT_MISMATCH', firstInvalidSequence: 3 });
    expect(await verifyChain([rows], { head: heads.get('default'), checkpoints })).toMatchObject({ valid: true, checkpointsChecked: 1 });
  });
});
