/**
 * What `search` looks in on PostgreSQL: the five searched columns joined by a separator no needle contains
 * (U+0001; searches with control characters match nothing), folded to lower case for ASCII letters only,
 * as SQLite's `lower()` and the live filter fold. One expression, so one pg_trgm GIN index serves every
 * substring search, and the index is kept in the same transaction as the entry (no unindexed tail).
 * `column` qualifies a column name as the query needs it (`"a"."name"` in a query, `"name"` in the index).
 */
export const SEARCH_SEPARATOR = '\u0001';

export function postgresSearchExpression(column: (name: string) => string): string {
  const part = (name: string, nullable: boolean) => (nullable ? `coalesce(${column(name)}, '')` : column(name));
  const joined = [part('name', true), part('resource', false), part('resource_id', true), part('action', false), part('author_name', true)].join(` || E'\\x01' || `);
  return `translate(${joined}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`;
}
