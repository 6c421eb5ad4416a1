import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, startTestApp, type TestApp } from './helpers/test-app.js';
import { seed } from './helpers/seed.js';

let app: TestApp;
let ids: number[];
// A JWT, so that authentication itself issues no SQL and the counts below are the resolvers' own.
let reader: Record<string, string>;
beforeAll(async () => {
  // Pages are read in chunks sized so that even entries of the largest size fit MAX_RESPONSE_BYTES (83 at
  // the defaults); with JSON values of at most 4 KB a page of 500 is one chunk, and the counts below are
  // about N+1, not the budget.
  app = await startTestApp({ limits: { maxJsonBytes: 4096 } });
  const rows = await seed(
    app.dataSource,
    Array.from({ length: 600 }, (_, i) => ({ resource: 'posts', action: 'update', authorId: `u${i % 50}`, authorName: `User ${i % 50}`, createdAt: new Date(Date.UTC(2026, 0, 1) + i * 1000) })),
  );
  ids = rows.map((r) => r.id);
  reader = { authorization: `Bearer ${await signToken({ sub: 'dash', scope: 'audit:read' })}` };
});
afterAll(() => app.close());

describe('SQL statements per request', () => {
  it('reads a page of 500 entries, with authors, diffs and the count, in 2 statements', async () => {
    app.sql.reset();
    const result = await app.gql(`{
      auditLogs(first: 500, filter: { resource: ["posts"] }) {
        totalCount
        edges { cursor node { id author { id name type } changes { field } createdAt } }
      }
    }`, {}, reader);
    expect(result.errors).toBeUndefined();
    expect(result.data!.auditLogs.edges).toHaveLength(500);
    expect(result.data!.auditLogs.edges[0].node.author).toEqual({ id: 'u49', name: 'User 49', type: 'user' });
    expect(app.sql.selects()).toHaveLength(2);
  });

  it('does not count when totalCount is not asked for', async () => {
    app.sql.reset();
    await app.gql('{ auditLogs(first: 500) { edges { node { id } } } }', {}, reader);
    expect(app.sql.selects()).toHaveLength(1);
  });

  it('batches lookups by id into one statement', async () => {
    app.sql.reset();
    const query = `{ ${ids.slice(0, 40).map((id, i) => `e${i}: auditLog(id: "${id}") { id resource }`).join(' ')} }`;
    const result = await app.gql(query, {}, reader);
    expect(result.errors).toBeUndefined();
    expect(Object.keys(result.data!)).toHaveLength(40);
    expect(result.data!.e39.id).toBe(String(ids[39]));
    expect(app.sql.selects()).toHaveLength(1);
  });
});
