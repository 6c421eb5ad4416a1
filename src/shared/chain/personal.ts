/**
 * Which values of an entry are personal, so that they enter the hash only as salted digests and can be
 * erased later without breaking the chain. Four are fixed (the author's id and name, the IP address and the
 * user agent); inside `data`, `previousData` and `meta`, fields are personal when their name matches a rule.
 * The author's id is one of them so that erasure can replace it with a pseudonym: an id an app chose is
 * often an e-mail address or a login name.
 */
import type { JsonValue } from '../json.js';
import { encodePointer, parsePointer, valueAt } from './pointer.js';

/** Decides by field name whether a value inside data, previousData or meta is personal. */
export type FieldMatcher = (field: string) => boolean;

/** The values that are always personal when present. */
export const FIXED_PERSONAL_PATHS = ['/authorId', '/authorName', '/ip', '/userAgent'] as const;

/**
 * The default rules for personal fields inside data, previousData and meta (PERSONAL_FIELDS): contact
 * details, names and birth dates of people.
 */
export const DEFAULT_PERSONAL_FIELDS: ReadonlyArray<string | RegExp> = ['email', 'phone', 'firstName', 'lastName', 'fullName', 'birthDate', 'dateOfBirth', 'address'];

/** `firstName`, `first_name`, `First-Name` → ['first', 'name']. */
function nameParts(field: string): string[] {
  return field
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part.toLowerCase());
}

/**
 * A minimal field-name matcher: a string rule matches a field whose name parts contain the rule's parts in a
 * row, case-insensitively across camelCase, snake_case and kebab-case (`email` matches `email`,
 * `userEmail` and `email_address`; `firstName` matches `first_name`); a RegExp is tested against the whole
 * name. The capture's field rules may replace it: anything of type FieldMatcher fits.
 */
export function nameRuleMatcher(rules: ReadonlyArray<string | RegExp>): FieldMatcher {
  const patterns = rules.filter((rule): rule is RegExp => rule instanceof RegExp);
  const partRules = rules.filter((rule): rule is string => typeof rule === 'string').map(nameParts).filter((parts) => parts.length > 0);
  if (patterns.length === 0 && partRules.length === 0) return () => false;
  const matches = (field: string) => {
    const pattern = patterns.find((p) => {
      p.lastIndex = 0; // a /g or /y pattern keeps state between tests
      return p.test(field);
    });
    if (pattern) return true;
    const parts = nameParts(field);
    return partRules.some((rule) => {
      for (let start = 0; start + rule.length <= parts.length; start++) {
        if (rule.every((part, i) => parts[start + i] === part)) return true;
      }
      return false;
    });
  };
  // An app's entities have a few dozen field names, asked about for every entry: the answer is kept per
  // name (splitting a name by regular expressions cost more than the rest of finding the paths, measured).
  const known = new Map<string, boolean>();
  return (field) => {
    let answer = known.get(field);
    if (answer === undefined) {
      answer = matches(field);
      if (known.size >= 4096) known.clear();
      known.set(field, answer);
    }
    return answer;
  };
}

/** What the path finder needs of an entry. */
export interface PersonalSource {
  authorId: string | null;
  authorName: string | null;
  ip: string | null;
  userAgent: string | null;
  data: JsonValue | null;
  previousData: JsonValue | null;
  meta: JsonValue | null;
}

const MAX_DEPTH = 64;

function walk(value: JsonValue, path: Array<string | number>, matcher: FieldMatcher, out: string[]): void {
  if (path.length > MAX_DEPTH || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => walk(item, [...path, index], matcher, out));
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    // A personal value is digested whole, objects included; null stays null (there is nothing to erase).
    if (child !== null && matcher(key)) out.push(encodePointer([...path, key]));
    else walk(child, [...path, key], matcher, out);
  }
}

const JSON_FACTS = ['data', 'previousData', 'meta'] as const;

/** Whether one pointer names a value inside (or is) the other's. */
const nested = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

/**
 * Of the pointers a writer declares personal (values inside data, previousData or meta that may be
 * someone else's, such as the filter of a read of the log), those that name a value that is there and not
 * null, and do not overlap a path the rules found (a value is digested once, whole).
 */
function declaredPaths(entry: PersonalSource, declared: readonly string[], found: readonly string[]): string[] {
  const out: string[] = [];
  for (const pointer of declared) {
    let segments: string[];
    try {
      segments = parsePointer(pointer);
    } catch {
      continue;
    }
    const [top, ...rest] = segments;
    const column = JSON_FACTS.find((name) => name === top);
    if (!column || rest.length === 0) continue;
    const value = valueAt(entry[column] ?? undefined, rest);
    if (value === undefined || value === null) continue;
    if (found.some((path) => nested(path, pointer)) || out.some((path) => nested(path, pointer))) continue;
    out.push(pointer);
  }
  return out;
}

/** findPersonalPaths with the pointers the writer declared (see declaredPaths), sorted the same way. */
export function findPersonalPathsDeclared(entry: PersonalSource, matcher: FieldMatcher, declared: readonly string[]): string[] {
  const found = findPersonalPaths(entry, matcher);
  const extra = declaredPaths(entry, declared, found);
  return extra.length === 0 ? found : [...found, ...extra].sort();
}

/** The pointers of an entry's personal values, sorted (UTF-16 code units, as JCS sorts keys). */
export function findPersonalPaths(entry: PersonalSource, matcher: FieldMatcher): string[] {
  const out: string[] = [];
  if (entry.authorId !== null) out.push('/authorId');
  if (entry.authorName !== null) out.push('/authorName');
  if (entry.ip !== null) out.push('/ip');
  if (entry.userAgent !== null) out.push('/userAgent');
  for (const key of ['data', 'previousData', 'meta'] as const) {
    const value = entry[key];
    if (value !== null) walk(value, [key], matcher, out);
  }
  return out.sort();
}
