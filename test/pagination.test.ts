import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logEvents, startTestApp, type TestApp } from './helpers/test-app.js';
import { seed } from './helpers/seed.js';

let app: TestApp;
let ids: string[]; // oldest first
const t0 = Date.parse('2026-05-01T00:00:00.000Z');

beforeAll(async () => {
  app = await startTestApp();
  // 103 entries, many sharing a timestamp, so the id tie-breaker matters.
  const rows = await seed(
    app.dataSource,
    Array.from({ length: 103 }, (_, i) => ({ resource: i % 2 ? 'posts' : 'users', action: 'update', createdAt: new Date(t0 + Math.floor(i / 4) * 1000) })),
  );
  ids = rows.map((r) => String(r.id));
});
afterAll(() => app.close());

const PAGE = /* GraphQL */ `
  query($first: Int, $after: String, $last: Int, $before: String, $orderBy: AuditLogOrder, $filter: AuditLogFilter) {
    auditLogs(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy, filter: $filter) {
      totalCount
      edges { cursor node { id cursor } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
`;

async function walkForward(orderBy: string, size: number, filter?: object) {
  const seen: string[] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const result = await app.gql(PAGE, { first: size, after, orderBy, filter });
    expect(result.errors).toBeUndefined();
    const connection = result.data!.auditLogs;
    for (const edge of connection.edges) {
      expect(edge.cursor).toBe(edge.node.cursor);
      seen.push(edge.node.id);
    }
    if (!connection.pageInfo.hasNextPage) return seen;
    after = connection.pageInfo.endCursor;
  }
  throw new Error('did not end');
}

async function walkBackward(orderBy: string, size: number) {
  const seen: string[] = [];
  let before: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const result = await app.gql(PAGE, { last: size, before, orderBy });
    expect(result.errors).toBeUndefined();
    const connection = result.data!.auditLogs;
    seen.unshift(...connection.edges.map((e: { node: { id: string } }) => e.node.id));
    if (!connection.pageInfo.hasPreviousPage) return seen;
    before = connection.pageInfo.startCursor;
  }
  throw new Error('did not end');
}

describe('auditLogs pagination', () => {
  it('defaults to 50 newest first', async () => {
    const result = await app.gql(PAGE, {});
    expect(result.data!.auditLogs.edges).toHaveLength(50);
    expect(result.data!.auditLogs.edges[0].node.id).toBe(ids.at(-1));
    expect(result.data!.auditLogs.totalCount).toBe(103);
    expect(result.data!.auditLogs.pageInfo.hasNextPage).toBe(true);
  });

  it.each([1, 7, 50, 500])('walks forward and backward in both orders with page size %i, every entry exactly once', async (size) => {
    const newest = [...ids].reverse();
    expect(await walkForward('NEWEST_FIRST', size)).toEqual(newest);
    expect(await walkForward('OLDEST_FIRST', size)).toEqual(ids);
    expect(await walkBackward('NEWEST_FIRST', size)).toEqual(newest);
    expect(await walkBackward('OLDEST_FIRST', size)).toEqual(ids);
  });

  it('keeps pages stable while new entries arrive between them', async () => {
    const first = await app.gql(PAGE, { first: 10 });
    const page1 = first.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id);
    const added = await logEvents(app, [
      { resource: 'posts', action: 'create' },
      { resource: 'posts', action: 'create' },
    ]);
    const second = await app.gql(PAGE, { first: 10, after: first.data!.auditLogs.pageInfo.endCursor });
    const page2 = second.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id);
    // The next page continues exactly where the first stopped, unaffected by the newer entries.
    const all = [...ids].reverse();
    expect(page1).toEqual(all.slice(0, 10));
    expect(page2).toEqual(all.slice(10, 20));
    // The new entries show up above the first page, reachable with `before`.
    const newer = await app.gql(PAGE, { last: 10, before: first.data!.auditLogs.pageInfo.startCursor });
    expect(newer.data!.auditLogs.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(added.map((a) => a.id).reverse());
  });

  it('walks a filtered list and counts only matches', async () => {
    const expected = ids.filter((_, i) => i % 2 === 1);
    expect(await walkForward('OLDEST_FIRST', 9, { resource: ['posts'], to: new Date(t0 + 3_600_000).toISOString() })).toEqual(expected);
    const result = await app.gql(PAGE, { first: 1, filter: { resource: ['posts'], to: new Date(t0 + 3_600_000).toISOString() } });
    expect(result.data!.auditLogs.totalCount).toBe(expected.length);
  });

  it.each([
    [{ first: 0 }, 'first'],
    [{ first: 501 }, 'first'],
    [{ last: -1 }, 'last'],
    [{ last: 501 }, 'last'],
    [{ first: 5, last: 5 }, 'first'],
    [{ after: 'not-a-cursor' }, 'after'],
    [{ before: 'YWwxOng6eQ' }, 'before'],
    [{ after: Buffer.from('al1:1:').toString('base64url') }, 'after'],
  ])('refuses %o with BAD_USER_INPUT', async (args, argument) => {
    const result = await app.gql(PAGE, args);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    expect(result.errors?.[0]?.message).not.toMatch(/SQL|sqlite|at .*\.ts/i);
  });
});
