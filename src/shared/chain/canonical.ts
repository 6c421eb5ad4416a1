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
/**
 * Version 2: the same form, with two salts made from the entry's salt, one for the values of the one who
 * acted (the one-segment pointers: author, IP address, user agent) and one for the personal values inside
 * data, previousData and meta, which may be someone else's (the filter of a read of the log names the person
 * whose entries were read, the record's in an entry about a person's record). Either group can then be erased
 * while the other's salt is kept, and the kept salt reveals nothing of the erased group's (README, "The
 * canonical form"). The writer uses it for every entry with personal values inside its JSON.
 */
export const HASH_VERSION_GROUPED = 2;
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
 * The characters JSON.stringify writes other than as themselves: quote, backslash, controls, and (as
 * `\\uXXXX` when lone) surrogates. A string without any is its own JSON text between quotes.
 */
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JCS of a string is what JSON.stringify writes (RFC 8785 §3.2.2.2 takes its string escaping from
 * ECMAScript). Most stored strings need no escaping, and one test for that is about twice as fast as
 * JSON.stringify (measured); anything else goes through JSON.stringify itself.
 */
export const jsonString = (value: string): string => (ESCAPED.test(value) ? JSON.stringify(value) : `"${value}"`);

/**
 * A stored text fact as JSON. The column may hold another type after a hand edit (SQLite keeps what it is
 * given): that is written as JSON.stringify writes it, as for any value.
 */
const str = (value: string | null): string => (typeof value === 'string' ? jsonString(value) : `${JSON.stringify(value)}`);

/** JCS of an array of strings (anything else as JSON.stringify writes it). */
function jsonStrings(values: readonly string[]): string {
  if (!Array.isArray(values) || !values.every((value) => typeof value === 'string')) return `${JSON.stringify(values)}`;
  if (values.length === 0) return '[]';
  let text = `[${jsonString(values[0]!)}`;
  for (let i = 1; i < values.length; i++) text += `,${jsonString(values[i]!)}`;
  return `${text}]`;
}

/**
 * A few pointers (`/authorName`, `/ip`, …) recur in nearly every entry: their parsed segments and JSON text
 * are kept once per pointer text (read only).
 */
interface KnownPointer {
  segments: string[];
  json: string;
  /** The text fact a one-segment pointer names, or undefined. */
  fact: TextFact | undefined;
}
const pointers = new Map<string, KnownPointer>();

function knownPointer(pointer: string): KnownPointer {
  let known = pointers.get(pointer);
  if (known === undefined) {
    let segments: string[];
    try {
      segments = parsePointer(pointer);
    } catch {
      throw new MalformedEntry(`personal path ${JSON.stringify(pointer)} is not a JSON pointer`);
    }
    const top = segments[0] ?? '';
    known = { segments, json: jsonString(pointer), fact: segments.length === 1 && isTextFact(top) ? top : undefined };
    if (pointers.size >= 1024) pointers.clear();
    pointers.set(pointer, known);
  }
  return known;
}

/** Which of version 2's salts a personal value takes. */
export type SaltGroup = 'actor' | 'content';

/** A version-2 group's salt: the first 32 hex characters of sha256(group + salt). */
export const groupSalt = (salt: string, group: SaltGroup): string => sha256Hex(group + salt).slice(0, 32);

/** A pointer of one segment names a fact of the entry (actor group); any longer one a value inside JSON. */
export const isContentPointer = (pointer: string): boolean => pointer.indexOf('/', 1) !== -1;
const groupOfPointer = (pointer: string): SaltGroup => (isContentPointer(pointer) ? 'content' : 'actor');

/** Whether every personal value of the group has been erased (false for a group with none). */
function groupErased(row: ChainRow, group: SaltGroup): boolean {
  const erased = row.erasedDigests;
  if (erased === null) return false;
  let any = false;
  for (const pointer of row.personalPaths) {
    if (groupOfPointer(pointer) !== group) continue;
    if (erased[pointer] === undefined) return false;
    any = true;
  }
  return any;
}

/**
 * The salt a personal value at `pointer` is digested with, or null when the entry keeps none for it.
 * Version 1: the entry's salt. Version 2: the salt column holds the entry's salt while neither group is
 * erased, the other group's salt once one group is, nothing once both are.
 */
export function saltFor(row: ChainRow, pointer: string): string | null {
  if (row.salt === null) return null;
  if (row.hashVersion !== HASH_VERSION_GROUPED) return row.salt;
  const group = groupOfPointer(pointer);
  const other: SaltGroup = group === 'actor' ? 'content' : 'actor';
  if (groupErased(row, group)) return null;
  return groupErased(row, other) ? row.salt : groupSalt(row.salt, group);
}

/** sha256(salt + JCS([pointer, value])), the pointer given as its JSON text. */
const digestOf = (salt: string, pointerJson: string, value: JsonValue) =>
  sha256Hex(`${salt}[${pointerJson},${typeof value === 'string' ? jsonString(value) : canonicalJson(value)}]`);

/** The digest that stands for one personal value in the hash. */
export function personalDigest(salt: string, pointer: string, value: JsonValue): string {
  return digestOf(salt, pointers.get(pointer)?.json ?? jsonString(pointer), value);
}

const int = (value: number, name: string) => {
  if (!Number.isSafeInteger(value)) throw new MalformedEntry(`${name} is not an integer`);
  return `${value}`;
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

/** Version 2's group salts of one row, made once per row and group. */
type GroupSalts = Partial<Record<SaltGroup, string | null>>;

function digestAt(row: ChainRow, pointer: string, known: KnownPointer, value: JsonValue | undefined, salts: GroupSalts): string {
  const erased = row.erasedDigests?.[pointer];
  if (erased !== undefined) return erased;
  let salt = row.salt;
  if (row.hashVersion === HASH_VERSION_GROUPED && salt !== null) {
    const group = known.segments.length === 1 ? 'actor' : 'content';
    salt = salts[group] !== undefined ? salts[group] : (salts[group] = saltFor(row, pointer));
  }
  if (salt === null) throw new MalformedEntry(`personal value ${pointer} has neither a salt nor an erased digest`);
  if (value === undefined) throw new MalformedEntry(`personal value ${pointer} is missing`);
  return digestOf(salt, known.json, value);
}

/** A JSON column as it enters the facts: as stored (JCS text), or parsed and written again. */
function jsonColumn(row: ChainRow, key: JsonFact, recanonicalise: boolean): string {
  const text = row[key];
  if (text === null) return 'null';
  return recanonicalise ? canonicalJson(parseColumn(row, key)) : text;
}

/**
 * JCS(facts') of a row: its facts with each personal value replaced by its digest. Written out key by key
 * into one string rather than by building the object and canonicalising it, since verification runs this
 * once per entry and the generic serialiser is several times slower (measured); tests compare it with a
 * plain implementation of the README's form over generated and hostile entries.
 * With `recanonicalise`, JSON columns are parsed and written in JCS form instead of being taken as stored.
 */
export function factsText(row: ChainRow, recanonicalise = false): string {
  // A personal text fact's JSON text (its digest, quoted), or undefined: the value itself.
  let authorId: string | undefined;
  let authorName: string | undefined;
  let authorType: string | undefined;
  let ip: string | undefined;
  let userAgent: string | undefined;
  let resourceId: string | undefined;
  let recordedBy: string | undefined;
  let transactionId: string | undefined;
  let idempotencyKey: string | undefined;
  // JSON columns with personal values inside, parsed (digests put in place); written again in JCS form.
  let parsed: Partial<Record<JsonFact, JsonValue>> | undefined;
  const salts: GroupSalts = {};
  const paths = row.personalPaths;
  if (!Array.isArray(paths)) throw new MalformedEntry('personalPaths is not an array');
  let pathsText = paths.length === 0 ? '[]' : '';
  for (let i = 0; i < paths.length; i++) {
    const pointer = paths[i]!;
    const known = knownPointer(pointer);
    pathsText += (i === 0 ? '[' : ',') + known.json;
    const fact = known.fact;
    if (fact !== undefined) {
      const value = row[fact];
      // A digest computed here is hex and needs no quoting; a stored one is quoted as any string.
      const erased = row.erasedDigests?.[pointer];
      const digest = erased !== undefined ? str(erased) : `"${digestAt(row, pointer, known, value === null ? undefined : value, salts)}"`;
      switch (fact) {
        case 'authorId': authorId = digest; break;
        case 'authorName': authorName = digest; break;
        case 'authorType': authorType = digest; break;
        case 'ip': ip = digest; break;
        case 'userAgent': userAgent = digest; break;
        case 'resourceId': resourceId = digest; break;
        case 'recordedBy': recordedBy = digest; break;
        case 'transactionId': transactionId = digest; break;
        case 'idempotencyKey': idempotencyKey = digest; break;
      }
      continue;
    }
    const segments = known.segments;
    const top = segments[0] ?? '';
    if (segments.length > 1 && isJsonFact(top)) {
      parsed ??= {};
      if (!(top in parsed)) parsed[top] = parseColumn(row, top);
      const root = parsed[top]!;
      const rest = segments.slice(1);
      if (!replaceAt(root, rest, digestAt(row, pointer, known, valueAt(root, rest), salts))) throw new MalformedEntry(`personal path ${pointer} does not exist`);
    } else {
      throw new MalformedEntry(`personal path ${pointer} names no personal fact`);
    }
  }
  if (paths.length > 0) pathsText += ']';
  const data = parsed !== undefined && 'data' in parsed ? canonicalJson(parsed.data!) : jsonColumn(row, 'data', recanonicalise);
  const previousData =
    parsed !== undefined && 'previousData' in parsed ? canonicalJson(parsed.previousData!) : jsonColumn(row, 'previousData', recanonicalise);
  const meta = parsed !== undefined && 'meta' in parsed ? canonicalJson(parsed.meta!) : jsonColumn(row, 'meta', recanonicalise);
  return (
    `{"action":${str(row.action)},"authorId":${authorId ?? str(row.authorId)},"authorName":${authorName ?? str(row.authorName)}` +
    `,"authorType":${authorType ?? str(row.authorType)},"createdAt":${int(row.createdAt, 'createdAt')},"data":${data}` +
    `,"hashVersion":${int(row.hashVersion, 'hashVersion')},"idempotencyKey":${idempotencyKey ?? str(row.idempotencyKey)}` +
    `,"ip":${ip ?? str(row.ip)},"meta":${meta},"personalPaths":${pathsText},"previousData":${previousData}` +
    `,"recordedBy":${recordedBy ?? str(row.recordedBy)},"redactedChanges":${row.redactedChanges === null ? 'null' : jsonStrings(row.redactedChanges)}` +
    `,"resource":${str(row.resource)},"resourceId":${resourceId ?? str(row.resourceId)},"sequence":${int(row.sequence, 'sequence')}` +
    `,"tenantId":${str(row.tenantId)},"transactionId":${transactionId ?? str(row.transactionId)},"userAgent":${userAgent ?? str(row.userAgent)}}`
  );
}

/** The entry's hash given the hash of the entry before it. */
export function entryHash(row: ChainRow, previousHash: string, recanonicalise = false): string {
  return sha256Hex(factsText(row, recanonicalise) + previousHash);
}
