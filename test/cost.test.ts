import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, logEvents, startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
  await logEvents(app, [{ resource: 'posts', action: 'create', name: 'xylophone' }]);
});
afterAll(() => app.close());

const aliases = (n: number, field: string) => Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ');
/** Statements that touched the entries since the last reset. */
const entryReads = () => app.sql.statements.filter((q) => /audit_log|audit_activity/.test(q) && !q.includes('search indexer'));

describe('the cost of an operation', () => {
  it('refuses 50 aliased searches with totalCount before running any of them', async () => {
    app.sql.reset();
    const result = await app.gql(`{ ${aliases(50, 'auditLogs(filter: { search: "x" }) { totalCount }')} }`);
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', maxCost: 1000, cost: expect.any(Number) });
    expect(result.errors![0]!.extensions!.cost).toBeGreaterThan(1000);
    expect(result.errors![0]!.message).toMatch(/MAX_QUERY_COST/);
    expect(result.data ?? null).toBeNull();
    expect(entryReads()).toEqual([]);
  });

  it('weighs what is passed in variables', async () => {
    const query = `query($s: String) { ${aliases(10, 'auditLogs(filter: { search: $s }) { totalCount }')} }`;
    app.sql.reset();
    expect((await app.gql(query, { s: 'x' })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(entryReads()).toEqual([]);
    const cheap = await app.gql(query, { s: null });
    expect(cheap.errors).toBeUndefined();
    expect(cheap.data!.a9.totalCount).toBe(1);
  });

  it('counts a search of 3 or more characters (indexed) for less than a shorter one (scanned)', async () => {
    const ok = await app.gql(`{ ${aliases(4, 'auditLogs(filter: { search: "xyl" }) { totalCount }')} }`);
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.a3.totalCount).toBe(1);
    expect((await app.gql(`{ ${aliases(4, 'auditLogs(filter: { search: "xy" }) { totalCount }')} }`)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('weighs a chart by its bucket count, its grouping and its search', async () => {
    const chart = (args: string) => app.gql(`{ activityChart(${args}) { count } }`);
    // Thirty days by action: a dashboard's chart.
    expect((await chart('interval: DAY, groupBy: ACTION')).errors).toBeUndefined();
    // 1,000 hourly buckets by author are allowed alone, not with a search on top.
    const range = 'filter: { from: "2026-01-01T00:00:00Z", to: "2026-02-11T00:00:00Z"';
    expect((await chart(`interval: HOUR, groupBy: AUTHOR, ${range} }`)).errors).toBeUndefined();
    app.sql.reset();
    const refused = await chart(`interval: HOUR, groupBy: AUTHOR, ${range}, search: "post" }`);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', cost: 4925 }); // 985 buckets × 5 (author) × 10 (search) ÷ 10
    expect(entryReads()).toEqual([]);
    // Aliases count again.
    expect((await app.gql(`{ ${aliases(3, `activityChart(interval: HOUR, groupBy: AUTHOR, ${range} }) { count }`)} }`)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('lets a dashboard through: a page with its count, and a chart', async () => {
    const result = await app.gql(`{
      auditLogs(first: 50, filter: { search: "xylo" }) { totalCount edges { node { id name changes { field } } } pageInfo { hasNextPage } }
      activityChart(interval: DAY, groupBy: RESOURCE) { start count groups { key count } }
    }`);
    expect(result.errors).toBeUndefined();
    expect(result.data!.auditLogs.totalCount).toBe(1);
  });

  it('measures the operation that runs, not the others in the document', async () => {
    const document = `query Cheap { auditLogs { totalCount } } query Costly { ${aliases(50, 'auditLogs(filter: { search: "x" }) { totalCount }')} }`;
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.adminKey}` },
      body: JSON.stringify({ query: document, operationName: 'Cheap' }),
    });
    expect(((await response.json()) as { errors?: unknown }).errors).toBeUndefined();
  });

  it('weighs variables in every request of a document, not only its first', async () => {
    // The same document text, so the same parsed document: a cheap request first, then a costly one.
    const query = `query($s: String) { ${aliases(10, 'auditLogs(filter: { search: $s }) { totalCount }')} }`;
    expect((await app.gql(query, { s: null })).errors).toBeUndefined();
    app.sql.reset();
    expect((await app.gql(query, { s: 'x' })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(entryReads()).toEqual([]);
    const small = `mutation($inputs: [LogEventInput!]!) { logEvents(inputs: $inputs) { id } }`;
    const inputs = (n: number) => Array.from({ length: n }, () => ({ resource: 'posts', action: 'cost-check' }));
    expect((await app.gql(small, { inputs: inputs(2) })).errors).toBeUndefined();
    expect((await app.gql(small, { inputs: inputs(10_000) })).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', cost: 1001 });
  });

  it('refuses an operation whose cost needs no variables on every request, and measures each operation of a document', async () => {
    const tight = await startTestApp({ limits: { maxQueryCost: 10 } });
    try {
      const id = (await tight.gql(`mutation { logEvent(input: { resource: "posts", action: "create" }) { id } }`)).data!.logEvent.id;
      const document = `query Few { ${aliases(5, `auditLog(id: "${id}") { id }`)} } query Many { ${aliases(11, `auditLog(id: "${id}") { id }`)} }`;
      const run = async (operationName: string) => {
        const response = await fetch(tight.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tight.adminKey}` },
          body: JSON.stringify({ query: document, operationName }),
        });
        return (await response.json()) as { errors?: Array<{ extensions?: Record<string, unknown> }> };
      };
      for (let i = 0; i < 3; i++) {
        expect((await run('Few')).errors).toBeUndefined();
        expect((await run('Many')).errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', cost: 11, maxCost: 10 });
      }
    } finally {
      await tight.close();
    }
  });

  it('holds on graphql-ws too', async () => {
    app.sql.reset();
    const { received, error } = await collect(app.wsClient(), `{ ${aliases(50, 'auditLogs(filter: { search: "x" }) { totalCount }')} }`).done;
    expect(JSON.stringify({ received, error })).toMatch(/MAX_QUERY_COST/);
    expect(entryReads()).toEqual([]);
  });
});
