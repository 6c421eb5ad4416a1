import { describe, expect, it } from 'vitest';
import { entryHash, factsText, GENESIS_HASH, groupSalt, jsonString, personalDigest, type ChainRow } from '../src/shared/chain/canonical.js';
import { eraseContent, eraseRow } from '../src/shared/chain/erase.js';
import { linkEntries, type UnlinkedEntry } from '../src/shared/chain/link.js';
import { DEFAULT_PERSONAL_FIELDS, nameRuleMatcher } from '../src/shared/chain/personal.js';
import { verifyChain } from '../src/shared/chain/verify.js';
import type { JsonValue } from '../src/shared/json.js';
import { referenceFactsText, referenceHash } from './helpers/facts.js';
import { random } from './helpers/seed.js';

const matcher = nameRuleMatcher(DEFAULT_PERSONAL_FIELDS);

/** Pieces strings are made of: what JSON escapes, what UTF-8 encodes in 2, 3 and 4 bytes, lone surrogates. */
const PIECES = [
  'a', 'Z', ' ', '0', 'é', 'ü', '€', '😀', '\ud83d', '\ude00', '\udbff\udfff', '\u0000', '\u0001', '\b', '\t', '\n', '\f', '\r', '\u001f',
  '\u007f', '\u0080', '\u00a0', '"', '\\', '/', '~', '~1', '\u2028', '\u2029', '\ufeff', '\uffff', 'email', '{"a":1}', 'null', '[', ']', ':', ',',
];
const NUMBERS = [0, -0, 1, -1, 0.1 + 0.2, 1e21, 1e-7, 2 ** 53 + 2, -(2 ** 53), 5e-324, Number.MAX_VALUE, 123456789.125, 1e300, 4.35, 1 / 3];

function generator(seed: number) {
  const next = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const text = (max = 8) => Array.from({ length: Math.floor(next() * max) }, () => pick(PIECES)).join('');
  const maybe = (max?: number) => (next() < 0.2 ? null : text(max));
  const key = () => (next() < 0.25 ? pick(['email', 'userEmail', 'phone', 'first_name', 'address']) : text(4));
  const json = (depth: number): JsonValue => {
    const kind = Math.floor(next() * (depth > 3 ? 4 : 6));
    if (kind === 0) return null;
    if (kind === 1) return next() < 0.5;
    if (kind === 2) return pick(NUMBERS);
    if (kind === 3) return text();
    if (kind === 4) return Array.from({ length: Math.floor(next() * 4) }, () => json(depth + 1));
    return Object.fromEntries(Array.from({ length: Math.floor(next() * 5) }, () => [key(), json(depth + 1)]));
  };
  const object = () => (next() < 0.2 ? null : { [key()]: json(1), [key()]: json(1), nested: json(2) });
  const entry = (): UnlinkedEntry => ({
    tenantId: text() || 'default', createdAt: pick([0, 1_767_225_600_000, 8.64e15, Math.floor(next() * 2e12)]), resource: text(), resourceId: maybe(),
    action: text(), authorId: maybe(), authorName: maybe(), authorType: maybe(3), data: object(), previousData: object(), meta: object(),
    ip: maybe(3), userAgent: maybe(12), transactionId: maybe(), idempotencyKey: maybe(), redactedChanges: next() < 0.5 ? null : Array.from({ length: Math.floor(next() * 3) }, () => text(4)),
    recordedBy: maybe(),
  });
  return { next, text, entry };
}

/** One entry linked as the writer links it, at a sequence up to 2^53 − 1. */
function linked(entry: UnlinkedEntry, sequence: number): ChainRow {
  const previous = { sequence: sequence - 1, hash: sequence === 1 ? GENESIS_HASH : 'f'.repeat(64) };
  return linkEntries(new Map([[entry.tenantId, previous]]), [entry], matcher).rows[0]!;
}

/** The same JSON in another form: keys in reverse order, whitespace, numbers as written by hand. */
const reformat = (text: string | null) =>
  text === null ? null : JSON.stringify(JSON.parse(text), (_key, value: unknown) => (value && typeof value === 'object' && !Array.isArray(value) ? Object.fromEntries(Object.entries(value).reverse()) : value), 1);

describe('the canonical form against the README, over hostile values', () => {
  it('quotes strings exactly as JSON.stringify does', () => {
    const { text } = generator(11);
    const strings = [...PIECES, ...Array.from({ length: 3000 }, () => text(12)), ...Array.from({ length: 0x10000 }, (_, code) => String.fromCharCode(code))];
    for (const value of strings) expect(jsonString(value)).toBe(JSON.stringify(value));
  });

  it('writes byte for byte the facts and hash of a plain implementation, for entries linked by the writer', async () => {
    const { next, entry } = generator(23);
    const rows: ChainRow[] = [];
    for (let i = 0; i < 1500; i++) {
      const row = linked(entry(), next() < 0.1 ? Number.MAX_SAFE_INTEGER : 1 + Math.floor(next() * 1e9));
      expect(factsText(row)).toBe(referenceFactsText(row));
      expect(row.hash).toBe(referenceHash(row, row.previousHash));
      rows.push(row);
    }
    expect(rows.filter((row) => row.personalPaths.some((p) => p.split('/').length > 2)).length).toBeGreaterThan(100);
    expect(rows.filter((row) => /[\ud800-\udfff\u0000-\u001f"\\]/.test(factsText(row))).length).toBeGreaterThan(1000);
    // Each row is the start of a range of its own: its stored previousHash is taken as given.
    for (const row of rows.slice(0, 200)) expect(await verifyChain([[row]], { from: row.sequence, to: row.sequence })).toMatchObject({ valid: true, checked: 1 });
  });

  it('matches it after erasure, with digests kept in place of values, and for stored JSON not in JCS form', async () => {
    const { next, entry } = generator(37);
    for (let i = 0; i < 600; i++) {
      const row = linked(entry(), 1 + i);
      const erased = eraseRow(row, `pseudonym-${i}`);
      const after: ChainRow = erased ? { ...row, ...erased } : row;
      expect(factsText(after)).toBe(referenceFactsText(after));
      expect(entryHash(after, after.previousHash)).toBe(row.hash);
      // Half erased: one digest kept, the other values still there with their salt.
      // (Version 2: a pointer whose group has others, so that no group is wholly erased and the salt stays.)
      const group = (pointer: string) => pointer.split('/').length > 2;
      const first = row.personalPaths.find((p) => row.hashVersion === 1 || row.personalPaths.filter((q) => group(q) === group(p)).length > 1);
      if (erased && row.personalPaths.length > 1 && first !== undefined) {
        const half = { ...row, erasedDigests: { [first!]: erased.erasedDigests![first!]! } };
        expect(factsText(half)).toBe(referenceFactsText(half));
        expect(entryHash(half, half.previousHash)).toBe(row.hash);
      }
      const reformatted = { ...after, data: reformat(after.data), previousData: reformat(after.previousData), meta: next() < 0.5 ? reformat(after.meta) : after.meta };
      expect(factsText(reformatted, true)).toBe(referenceFactsText(reformatted));
      expect(await verifyChain([[reformatted]], { from: row.sequence, to: row.sequence })).toMatchObject({ valid: true });
    }
  });

  it('matches it for version 2 (values inside JSON, some declared personal), with either group erased, then both', async () => {
    const { next, text, entry } = generator(43);
    let contentOnly = 0;
    for (let i = 0; i < 600; i++) {
      const base = entry();
      const filter: Record<string, JsonValue> = { authorId: next() < 0.5 ? text(8) : [text(5), text(5)], resource: ['posts'] };
      if (next() < 0.5) filter.search = text(10);
      const row = linked({ ...base, meta: { filter, other: text(4) }, declaredPersonal: ['/meta/filter/authorId', '/meta/filter/search', '/meta/filter/missing'] }, 1 + i);
      expect(row.hashVersion).toBe(2);
      expect(row.personalPaths).toContain('/meta/filter/authorId');
      expect(row.personalPaths).not.toContain('/meta/filter/missing');
      expect(factsText(row)).toBe(referenceFactsText(row));
      expect(row.hash).toBe(referenceHash(row, row.previousHash));
      // The content's values erased: the filter reads as replaced, the actor's values and their salt stay.
      const erased = eraseContent(row, () => '[ERASED]')!;
      const after: ChainRow = { ...row, ...erased };
      expect(JSON.parse(after.meta!).filter.authorId).toBe('[ERASED]');
      expect(factsText(after)).toBe(referenceFactsText(after));
      expect(entryHash(after, after.previousHash)).toBe(row.hash);
      const actor = row.personalPaths.filter((p) => p.split('/').length === 2);
      if (actor.length > 0) {
        contentOnly++;
        expect(after.salt).toBe(groupSalt(row.salt!, 'actor'));
        // The kept salt is not the one the erased values were digested with.
        expect(personalDigest(after.salt!, '/meta/filter/authorId', filter.authorId!)).not.toBe(erased.erasedDigests!['/meta/filter/authorId']);
      } else {
        expect(after.salt).toBeNull();
      }
      expect(eraseContent(after, () => '[ERASED]')).toBeNull();
      // Then the author: nothing left, the hash the same.
      const both = eraseRow(after, 'pseudonym');
      const last: ChainRow = both ? { ...after, ...both } : after;
      expect(last.salt).toBeNull();
      expect(factsText(last)).toBe(referenceFactsText(last));
      expect(entryHash(last, last.previousHash)).toBe(row.hash);
      // The author first, whole (every value of the entry), as for version 1.
      const whole = eraseRow(row, 'pseudonym')!;
      expect(entryHash({ ...row, ...whole }, row.previousHash)).toBe(row.hash);
      // A forged salt in the column (the entry's own, or the other group's) breaks the hash.
      if (actor.length > 0) {
        expect(entryHash({ ...after, salt: row.salt }, row.previousHash)).not.toBe(row.hash);
        expect(entryHash({ ...after, salt: groupSalt(row.salt!, 'content') }, row.previousHash)).not.toBe(row.hash);
      }
    }
    expect(contentOnly).toBeGreaterThan(100);
    // Version 1 has one salt for everything: its content is never erased on its own.
    const v1 = linked({ ...entry(), data: null, previousData: null, meta: null }, 1);
    expect(v1.hashVersion).toBe(1);
    expect(eraseContent(v1, () => '[ERASED]')).toBeNull();
  });

  it('matches it for stored values a writer would not produce: digests that need quoting, paths that need escaping', () => {
    const { text, entry } = generator(41);
    for (let i = 0; i < 300; i++) {
      const row = linked(entry(), 1 + i);
      if (row.personalPaths.length === 0) continue;
      const forged = { ...row, salt: null, erasedDigests: Object.fromEntries(row.personalPaths.map((p) => [p, text(6)])) };
      expect(factsText(forged)).toBe(referenceFactsText(forged));
      expect(entryHash(forged, GENESIS_HASH)).toBe(referenceHash(forged, GENESIS_HASH));
    }
  });

  it('reports an entry it cannot read as malformed, whatever went wrong with it', async () => {
    const row = linked({ ...generator(5).entry(), authorId: 'someone' }, 1);
    for (const broken of [
      { ...row, personalPaths: 'authorId' as unknown as string[] },
      { ...row, personalPaths: { 0: '/authorId' } as unknown as string[] },
      { ...row, personalPaths: ['authorId'] },
      { ...row, personalPaths: ['/action'] },
      { ...row, personalPaths: ['/data/no/such/thing'] },
      { ...row, salt: null },
      { ...row, createdAt: 1.5 },
    ]) {
      expect(await verifyChain([[broken]], { from: 1, to: 1 })).toMatchObject({ valid: false, reason: 'MALFORMED_ENTRY' });
    }
  });
});
