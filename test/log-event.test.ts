import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_EVENT, startTestApp, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { maxJsonBytes: 2048, maxJsonDepth: 5 } });
});
afterAll(() => app.close());

async function count() {
  const result = await app.gql('{ auditLogs { totalCount } }');
  return result.data!.auditLogs.totalCount as number;
}

describe('logEvent', () => {
  it('stores every field and returns the entry with a field-level diff', async () => {
    const before = Date.now();
    const result = await app.gql(LOG_EVENT, {
      input: {
        resource: 'posts',
        action: 'update',
        resourceId: '42',
        name: 'Edited a post',
        author: { id: 'u1', name: 'Ann', type: 'user' },
        previousData: { title: 'Old', tags: ['a'], body: 'same', gone: true, nested: { a: 1, b: [1, 2] } },
        data: { title: 'New', tags: ['a'], body: 'same', added: '2026-01-01T00:00:00.000Z', nested: { b: [1, 2], a: 1 } },
        meta: { source: 'test' },
      },
    });
    expect(result.errors).toBeUndefined();
    const entry = result.data!.logEvent;
    expect(entry).toMatchObject({
      resource: 'posts',
      action: 'update',
      resourceId: '42',
      name: 'Edited a post',
      author: { id: 'u1', name: 'Ann', type: 'user' },
      meta: { source: 'test' },
    });
    expect(entry.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(entry.createdAt)).toBeGreaterThanOrEqual(before);
    expect(entry.transactionId).toEqual(expect.any(String));
    // Nested objects are compared by value: key order inside `nested` does not count as a change.
    expect(entry.changes).toEqual([
      { field: 'added', kind: 'ADDED', from: null, to: '2026-01-01T00:00:00.000Z' },
      { field: 'gone', kind: 'REMOVED', from: true, to: null },
      { field: 'title', kind: 'CHANGED', from: 'Old', to: 'New' },
    ]);

    const read = await app.gql('query($id: ID!) { auditLog(id: $id) { id data previousData changes { field } ip userAgent } }', { id: entry.id }, { 'user-agent': 'vitest-agent' });
    expect(read.data!.auditLog.id).toBe(entry.id);
    expect(read.data!.auditLog.data.title).toBe('New');
    expect(read.data!.auditLog.previousData.gone).toBe(true);
  });

  it('records the peer address and user agent of the request, not forwarded headers', async () => {
    const result = await app.gql(LOG_EVENT, { input: { resource: 'session', action: 'login' } }, { 'user-agent': 'agent/1.0', 'x-forwarded-for': '6.6.6.6' });
    expect(result.data!.logEvent).toMatchObject({ resource: 'session', action: 'login' });
    const read = await app.gql('query($id: ID!) { auditLog(id: $id) { ip userAgent author { id } } }', { id: result.data!.logEvent.id });
    expect(read.data!.auditLog.userAgent).toBe('agent/1.0');
    expect(read.data!.auditLog.ip).toMatch(/127\.0\.0\.1/);
    // Without an author in the input, the author is the caller.
    expect(read.data!.auditLog.author).toEqual({ id: expect.stringMatching(/^apikey:/) });
  });

  it('returns the original entry when retried with the same idempotency key by the same author', async () => {
    const input = { resource: 'invoices', action: 'export', idempotencyKey: 'k-1', author: { id: 'svc' } };
    const first = await app.gql(LOG_EVENT, { input });
    const total = await count();
    const retry = await app.gql(LOG_EVENT, { input });
    expect(retry.data!.logEvent.id).toBe(first.data!.logEvent.id);
    expect(await count()).toBe(total);
    // Another author may use the same key.
    const other = await app.gql(LOG_EVENT, { input: { ...input, author: { id: 'svc-2' } } });
    expect(other.data!.logEvent.id).not.toBe(first.data!.logEvent.id);
    expect(await count()).toBe(total + 1);
  });

  it.each([
    ['an empty resource', { resource: '  ', action: 'create' }, 'resource'],
    ['an empty action', { resource: 'posts', action: '' }, 'action'],
    ['oversized data', { resource: 'posts', action: 'create', data: { blob: 'x'.repeat(3000) } }, 'data'],
    ['oversized meta', { resource: 'posts', action: 'create', meta: { blob: 'x'.repeat(3000) } }, 'meta'],
    ['too deeply nested data', { resource: 'posts', action: 'create', data: { a: { b: { c: { d: { e: { f: 1 } } } } } } }, 'data'],
    ['an overlong resource', { resource: 'r'.repeat(256), action: 'create' }, 'resource'],
    ['an empty author id', { resource: 'posts', action: 'create', author: { id: ' ' } }, 'authorId'],
  ])('refuses %s with BAD_USER_INPUT and writes nothing', async (_label, input, argument) => {
    const total = await count();
    const result = await app.gql(LOG_EVENT, { input });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    expect(await count()).toBe(total);
  });

  it('refuses an invalid DateTime in a literal and in a variable with BAD_USER_INPUT', async () => {
    const literal = await app.gql('{ auditLogs(filter: { from: "yesterday" }) { totalCount } }');
    expect(literal.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const variable = await app.gql('query($f: DateTime) { auditLogs(filter: { from: $f }) { totalCount } }', { f: '2026-13-45T99:00:00Z' });
    expect(variable.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('renameLog', () => {
  it('changes only the name', async () => {
    const created = await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'create', name: 'before', data: { a: 1 } } });
    const entry = created.data!.logEvent;
    const renamed = await app.gql('mutation($id: ID!, $name: String!) { renameLog(id: $id, name: $name) { id name data createdAt action } }', { id: entry.id, name: 'after' });
    expect(renamed.data!.renameLog).toEqual({ id: entry.id, name: 'after', data: { a: 1 }, createdAt: entry.createdAt, action: 'create' });
    const read = await app.gql('query($id: ID!) { auditLog(id: $id) { name data createdAt } }', { id: entry.id });
    expect(read.data!.auditLog).toEqual({ name: 'after', data: { a: 1 }, createdAt: entry.createdAt });
  });

  it.each(['999999', 'abc', '-1'])('answers NOT_FOUND for unknown id %s', async (id) => {
    const renamed = await app.gql('mutation($id: ID!) { renameLog(id: $id, name: "x") { id } }', { id });
    expect(renamed.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const read = await app.gql('query($id: ID!) { auditLog(id: $id) { id } }', { id });
    expect(read.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
