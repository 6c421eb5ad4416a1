/**
 * The canonical form of an entry's hashed facts, version 1 (README, "Evidence"). Everything here is a pure
 * function of the stored values, so the writer, the server's verifier, the CLI and a third party's script
 * compute the same bytes.
 *
 *   facts    = the entry's recorded facts as one JSON object (FACT_KEYS), each personal value replaced by
 *              its digest
 *   digest   = sha256_hex(salt + JCS([pointer, value]))      per personal value, salt = 32 hex characters
 *   hash     = sha256_hex(JCS(facts) + previousHash)         previousHash of the first entry: GENESIS_HASH
 *
 * JCS is RFC 8785 (the `canonicalize` package, by one of its authors). Strings are hashed as UTF-8.
 */
import { hash as sha256Once } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { JsonValue } from '../json.js';
import { parsePointer, replaceAt, valueAt } from './pointer.js';

/** The version of the form below, stored with every entry (`hash_version`). */
export const HASH_VERSION = 1;
/** What the first entry of a tenant chains to. */
export const GENESIS_HASH = '0'.repeat(64);

// The package is CommonJS (`module.exports = fn`) with an ES-style `export default` declaration.
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (value: unknown) => string | undefined;

/** RFC 8785 (JCS) text of a JSON value. */
export function canonicalJson(value: JsonValue): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value has no JSON form');
  return text;
}

export function sha256Hex(text: string): string {
  return sha256Once('sha256', text, 'hex');
}

/**
 * One stored entry as the chain sees it. JSON columns are JSON text (auditql stores them in JCS form; other
 * text is re-canonicalised), `createdAt` is epoch milliseconds.
 */
export interface ChainRow {
  tenantId: string;
  sequence: number;
  hash: string;
  previousHash: string;
  hashVersion: number;
  /** 32 hex characters; null when the entry has no personal values, or after they were erased. */
  salt: string | null;
  /** JSON pointers of the values that enter the hash only as digests, in stored order. */
  personalPaths: string[];
  /** Digests kept for erased values, by pointer. */
  erasedDigests: Record<string, string> | null;
  createdAt: number;
  resource: string;
  resourceId: string | null;
  action: string;
  authorId: string | null;
  authorName: string | null;
  authorType: string | null;
  data: string | null;
  previousData: string | null;
  meta: string | null;
  ip: string | null;
  userAgent: string | null;
  transactionId: string | null;
  idempotencyKey: string | null;
  redactedChanges: string[] | null;
  recordedBy: string | null;
}

/** The hashed facts, in JCS key order (keys sorted by UTF-16 code units). */
export const FACT_KEYS = [
  'action', 'authorId', 'authorName', 'authorType', 'createdAt', 'data', 'hashVersion', 'idempotencyKey', 'ip', 'meta',
  'personalPaths', 'previousData', 'recordedBy', 'redactedChanges', 'resource', 'resourceId', 'sequence', 'tenantId',
  'transactionId', 'userAgent',
] as const;

/** Facts whose value may be personal: a pointer of one segment names one of these. */
const TEXT_FACTS = ['authorId', 'authorName', 'authorType', 'ip', 'userAgent', 'resourceId', 'recordedBy', 'transactionId', 'idempotencyKey'] as const;
type TextFact = (typeof TEXT_FACTS)[number];
const JSON_FACTS = ['data', 'previousData', 'meta'] as const;
type JsonFact = (typeof JSON_FACTS)[number];
const isTextFact = (key: string): key is TextFact => (TEXT_FACTS as readonly string[]).includes(key);
const isJsonFact = (key: string): key is JsonFact => (JSON_FACTS as readonly string[]).includes(key);

export class MalformedEntry extends Error {}

/**
 * JCS of a string, or of an array of strings, is what JSON.stringify writes (RFC 8785 §3.2.2.2 takes its
 * string escaping from ECMAScript): the hot paths below use it and leave everything else to canonicalize.
 */
const jcsStrings = (value: string | readonly string[]) => JSON.stringify(value);

/**
 * A few pointers (`/authorName`, `/ip`, …) recur in nearly every entry: their parsed segments and JSON text
 * are kept once per pointer text (read only).
 */
const pointers = new Map<string, { segments: string[]; json: string }>();

function knownPointer(pointer: string): { segments: string[]; json: string } {
  let known = pointers.get(pointer);
  if (known === undefined) {
    let segments: string[];
    try {
      segments = parsePointer(pointer);
    } catch {
      throw new MalformedEntry(`personal path ${JSON.stringify(pointer)} is not a JSON pointer`);
    }
    known = { segments, json: JSON.stringify(pointer) };
    if (pointers.size >= 1024) pointers.clear();
    pointers.set(pointer, known);
  }
  return known;
}

const pointerSegments = (pointer: string) => knownPointer(pointer).segments;

/** The digest that stands for one personal value in the hash. */
export function personalDigest(salt: string, pointer: string, value: JsonValue): string {
  return sha256Hex(`${salt}[${pointers.get(pointer)?.json ?? JSON.stringify(pointer)},${typeof value === 'string' ? jcsStrings(value) : canonicalJson(value)}]`);
}

const str = (value: string | null) => (value === null ? 'null' : JSON.stringify(value));
const int = (value: number, name: string) => {
  if (!Number.isSafeInteger(value)) throw new MalformedEntry(`${name} is not an integer`);
  return String(value);
};

function parseColumn(row: ChainRow, key: JsonFact): JsonValue {
  const text = row[key];
  if (text === null) return null;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    throw new MalformedEntry(`${key} is not JSON`);
  }
}

function digestAt(row: ChainRow, pointer: string, value: JsonValue | undefined): string {
  const erased = row.erasedDigests?.[pointer];
  if (erased !== undefined) return erased;
  if (row.salt === null) throw new MalformedEntry(`personal value ${pointer} has neither a salt nor an erased digest`);
  if (value === undefined) throw new MalformedEntry(`personal value ${pointer} is missing`);
  return personalDigest(row.salt, pointer, value);
}

/**
 * JCS(facts') of a row: its facts with each personal value replaced by its digest. Written out key by key
 * rather than by building the object and canonicalising it, since verification runs this once per entry
 * and the generic serialiser is several times slower (measured); a test compares both on generated entries.
 * With `recanonicalise`, JSON columns are parsed and written in JCS form instead of being taken as stored.
 */
export function factsText(row: ChainRow, recanonicalise = false): string {
  const text: Record<TextFact, string> = {
    authorId: str(row.authorId), authorName: str(row.authorName), authorType: str(row.authorType), ip: str(row.ip), userAgent: str(row.userAgent),
    resourceId: str(row.resourceId), recordedBy: str(row.recordedBy), transactionId: str(row.transactionId), idempotencyKey: str(row.idempotencyKey),
  };
  const json: Record<JsonFact, string> = { data: row.data ?? 'null', previousData: row.previousData ?? 'null', meta: row.meta ?? 'null' };
  let parsed: Partial<Record<JsonFact, JsonValue>> | undefined;
  for (const pointer of row.personalPaths) {
    const segments = pointerSegments(pointer);
    const top = segments[0] ?? '';
    if (segments.length === 1 && isTextFact(top)) {
      const value = row[top];
      text[top] = JSON.stringify(digestAt(row, pointer, value === null ? undefined : value));
    } else if (segments.length > 1 && isJsonFact(top)) {
      parsed ??= {};
      if (!(top in parsed)) parsed[top] = parseColumn(row, top);
      const root = parsed[top]!;
      const rest = segments.slice(1);
      if (!replaceAt(root, rest, digestAt(row, pointer, valueAt(root, rest)))) throw new MalformedEntry(`personal path ${pointer} does not exist`);
    } else {
      throw new MalformedEntry(`personal path ${pointer} names no personal fact`);
    }
  }
  for (const key of JSON_FACTS) {
    if (parsed && key in parsed) json[key] = canonicalJson(parsed[key]!);
    else if (recanonicalise && row[key] !== null) json[key] = canonicalJson(parseColumn(row, key));
  }
  return (
    `{"action":${str(row.action)},"authorId":${text.authorId},"authorName":${text.authorName},"authorType":${text.authorType}` +
    `,"createdAt":${int(row.createdAt, 'createdAt')},"data":${json.data},"hashVersion":${int(row.hashVersion, 'hashVersion')}` +
    `,"idempotencyKey":${text.idempotencyKey},"ip":${text.ip},"meta":${json.meta},"personalPaths":${jcsStrings(row.personalPaths)}` +
    `,"previousData":${json.previousData},"recordedBy":${text.recordedBy},"redactedChanges":${row.redactedChanges === null ? 'null' : jcsStrings(row.redactedChanges)}` +
    `,"resource":${str(row.resource)},"resourceId":${text.resourceId},"sequence":${int(row.sequence, 'sequence')},"tenantId":${str(row.tenantId)}` +
    `,"transactionId":${text.transactionId},"userAgent":${text.userAgent}}`
  );
}

/** The entry's hash given the hash of the entry before it. */
export function entryHash(row: ChainRow, previousHash: string, recanonicalise = false): string {
  return sha256Hex(factsText(row, recanonicalise) + previousHash);
}
