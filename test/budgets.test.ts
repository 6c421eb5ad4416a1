import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logEvents, signToken, startTestApp, type TestApp } from './helpers/test-app.js';

describe('the response byte budget (MAX_RESPONSE_BYTES)', () => {
  let app: TestApp;
  const budget = 1024 * 1024;
  let ids: string[];
  beforeAll(async () => {
    app = await startTestApp({ limits: { maxResponseBytes: budget } });
    const blob = (i: number) => ({ text: `${i}`.padEnd(30_000, '.') });
    ids = (await logEvents(app, Array.from({ length: 40 }, (_, i) => ({ resource: 'big', action: 'update', previousData: blob(i), data: blob(i + 1) })))).map((e) => e.id);
  });
  afterAll(() => app.close());

  const PAGE = 'query($after: String) { auditLogs(first: 40, after: $after, filter: { resource: ["big"] }, orderBy: OLDEST_FIRST) { edges { node { id data previousData changes { field } } } pageInfo { hasNextPage endCursor } } }';

  async function fetchPage(after: string | null) {
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.adminKey}` },
      body: JSON.stringify({ query: PAGE, variables: { after } }),
    });
    const text = await response.text();
    return { bytes: Buffer.byteLength(text), body: JSON.parse(text) };
  }

  it('cuts a list at the budget with RESPONSE_TOO_LARGE and the cursor to continue from; paging on returns every entry once', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let cuts = 0;
    for (let round = 0; round < 40; round++) {
      const { bytes, body } = await fetchPage(after);
      expect(bytes).toBeLessThan(budget + 200_000);
      const edges = body.data.auditLogs.edges as Array<{ node: { id: string } }>;
      seen.push(...edges.map((e) => e.node.id));
      if (body.errors) {
        cuts++;
        expect(body.errors).toHaveLength(1);
        expect(body.errors[0]).toMatchObject({ path: ['auditLogs'], extensions: { code: 'RESPONSE_TOO_LARGE', maxResponseBytes: budget } });
        expect(body.errors[0].extensions.after).toBe(body.data.auditLogs.pageInfo.endCursor);
        expect(body.data.auditLogs.pageInfo.hasNextPage).toBe(true);
      }
      if (!body.data.auditLogs.pageInfo.hasNextPage) break;
      after = body.data.auditLogs.pageInfo.endCursor;
    }
    expect(cuts).toBeGreaterThan(1);
    expect(seen).toEqual(ids);
  });

  it('shares one budget between aliases', async () => {
    const aliases = Array.from({ length: 5 }, (_, i) => `a${i}: auditLogs(first: 40, filter: { resource: ["big"] }) { edges { node { data previousData } } }`).join(' ');
    const response = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.adminKey}` },
      body: JSON.stringify({ query: `{ ${aliases} }` }),
    });
    const text = await response.text();
    expect(Buffer.byteLength(text)).toBeLessThan(budget + 5 * 200_000);
    const body = JSON.parse(text);
    expect(body.errors.length).toBeGreaterThanOrEqual(4);
    expect(body.errors.every((e: { extensions: { code: string } }) => e.extensions.code === 'RESPONSE_TOO_LARGE')).toBe(true);
  });

  it('leaves small responses alone', async () => {
    const result = await app.gql('{ auditLogs(first: 40, filter: { resource: ["big"] }) { edges { node { id } } pageInfo { hasNextPage } } }');
    expect(result.errors).toBeUndefined();
    expect(result.data!.auditLogs.edges).toHaveLength(40);
    expect(result.data!.auditLogs.pageInfo.hasNextPage).toBe(false);
  });
});

describe('the per-tenant write quota (TENANT_WRITE_BYTES_PER_HOUR)', () => {
  it('answers RATE_LIMITED with retryAfter once a tenant has written its bytes for the hour, whoever in it writes; other tenants go on', async () => {
    const app = await startTestApp({ limits: { tenantWriteBytesPerHour: 10_000 } });
    try {
      const write = (headers: Record<string, string> = {}) =>
        app.gql('mutation($data: JSON) { logEvent(input: { resource: "quota", action: "x", data: $data }) { id } }', { data: { blob: 'y'.repeat(3000) } }, headers);
      const other = { authorization: `Bearer ${await signToken({ sub: 'someone-else', scope: 'audit:write' })}` };
      expect((await write()).errors).toBeUndefined();
      expect((await write(other)).errors).toBeUndefined();
      expect((await write()).errors).toBeUndefined();
      const refused = await write(other);
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
      expect(refused.errors![0]!.extensions!.retryAfter).toBeGreaterThan(3000);
      const acme = { authorization: `Bearer ${await signToken({ sub: 'a', scope: 'audit:write', tenant: 'acme' })}` };
      expect((await write(acme)).errors).toBeUndefined();
      expect(Number((await app.dataSource.query("SELECT COUNT(*) AS n FROM audit_log WHERE resource = 'quota'"))[0].n)).toBe(4);
    } finally {
      await app.close();
    }
  });
});
