/**
 * Field-name rules: which fields of a record a rule (redaction, "leave out", later "personal data") applies to.
 *
 * A field name is split into lower-case name parts at camelCase humps, acronym ends, letter/digit boundaries and
 * any non-alphanumeric separator (`_`, `-`, `.`, space): `userPasswordHash` → user·password·hash,
 * `X-API-Key` → x·api·key, `refresh_token` → refresh·token, `counters.likes` → counters·likes.
 *
 * - A **string** rule is split the same way and matches a field whose parts contain the rule's parts in a row:
 *   `password` matches `password`, `userPassword`, `password_hash`; `apiKey` matches `api_key`, `X-API-Key`,
 *   `stripeApiKey`; `token` matches `accessToken` and `tokens` (a plural of the last word) but not `tokenizer`.
 * - A **RegExp** is tested against the field name as it is (`/^pin$/i`), for anything the parts cannot say.
 * - An **allow** rule (same two kinds) wins over every match: `allow: ['tokenCount']` keeps `tokenCount` visible
 *   while `token` still redacts `accessToken`.
 *
 * The same semantics as Rails' `filter_parameters` partial matching, by word rather than substring, so that
 * `secretariat` or `passwordless` are not caught by `secret` / `password`.
 */
export type FieldRule = string | RegExp;

export interface FieldRules {
  /** Fields the rule applies to. */
  match: readonly FieldRule[];
  /** Fields it never applies to, even when `match` says so. */
  allow?: readonly FieldRule[];
}

export type FieldMatcher = (field: string) => boolean;

/** `userPasswordHash` → ['user', 'password', 'hash']. */
export function nameParts(field: string): string[] {
  return field
    .replace(/(?<=[a-z0-9])(?=[A-Z])/g, ' ') // camel hump: user|Password
    .replace(/(?<=[A-Z])(?=[A-Z][a-z])/g, ' ') // acronym end: API|Key
    .replace(/(?<=[a-zA-Z])(?=[0-9])|(?<=[0-9])(?=[a-zA-Z])/g, ' ') // letters|digits: oauth|2
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((part) => part.length > 0);
}

type Compiled = { parts: string[] } | { pattern: RegExp };

function compile(rules: readonly FieldRule[]): Compiled[] {
  const out: Compiled[] = [];
  for (const rule of rules) {
    if (typeof rule !== 'string') out.push({ pattern: rule });
    else if (nameParts(rule).length > 0) out.push({ parts: nameParts(rule) });
  }
  return out;
}

function containsRun(parts: readonly string[], run: readonly string[]): boolean {
  outer: for (let start = 0; start + run.length <= parts.length; start++) {
    for (let i = 0; i < run.length; i++) {
      const part = parts[start + i]!;
      const want = run[i]!;
      // The last word may be plural: `apiKeys`, `tokens`, `secrets`.
      if (part !== want && !(i === run.length - 1 && part === `${want}s`)) continue outer;
    }
    return true;
  }
  return spelledTogether(parts, run.join(''));
}

/**
 * Whether consecutive name parts, written together, spell the rule's words written together: `apikey`,
 * `APIKEY` or `x_apikey` for the rule `apiKey` (a name with no case change or separator is one part, and
 * PostgreSQL folds unquoted column names to lower case), `pass_word` for `password`.
 */
function spelledTogether(parts: readonly string[], word: string): boolean {
  for (let start = 0; start < parts.length; start++) {
    let text = '';
    for (let end = start; end < parts.length && text.length < word.length; end++) {
      text += parts[end]!;
      if (text === word || text === `${word}s`) return true;
    }
  }
  return false;
}

function anyMatches(rules: readonly Compiled[], field: string, parts: readonly string[]): boolean {
  return rules.some((rule) => {
    if ('pattern' in rule) {
      rule.pattern.lastIndex = 0; // a /g or /y pattern keeps state between tests
      return rule.pattern.test(field);
    }
    return containsRun(parts, rule.parts);
  });
}

/** Field names are few in an entity but unbounded in JSON data (keys can be ids): the memo is capped. */
const MEMO_LIMIT = 5000;

/** Compiles the rules once; the matcher remembers its answers per field name. */
export function createFieldMatcher(rules: FieldRules): FieldMatcher {
  const match = compile(rules.match);
  const allow = compile(rules.allow ?? []);
  if (match.length === 0) return () => false;
  const memo = new Map<string, boolean>();
  return (field) => {
    let answer = memo.get(field);
    if (answer === undefined) {
      const parts = nameParts(field);
      answer = anyMatches(match, field, parts) && !anyMatches(allow, field, parts);
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(field, answer);
    }
    return answer;
  };
}
