import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signViewerToken, verifyViewerToken } from '../src/auth/viewer-token.js';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import { createApiKey } from '../src/services/api-keys.js';
import { confine } from '../src/services/viewer-tokens.js';
import { collect, LOG_EVENT, logEvents, signToken, startTestApp, type TestApp } from './helpers/test-app.js';

const MINT = 'mutation ($filter: AuditLogFilter!, $expiresIn: Int!) { createViewerToken(filter: $filter, expiresIn: $expiresIn) { token expiresAt } }';
const LIST = 'query ($filter: AuditLogFilter) { auditLogs(filter: $filter, first: 100) { totalCount edges { node { id resource action name } } } }';
const CHART = 'query ($filter: AuditLogFilter) { activityChart(filter: $filter, interval: HOUR) { count } }';
const ONE = 'query ($id: ID!) { auditLog(id: $id) { id resource } }';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const codes = (result: { errors?: Array<{ extensions?: { code?: string } }> }) => result.errors?.map((e) => e.extensions?.code);

describe('viewer tokens on a server with API keys only (no JWT configuration)', () => {
  let app: TestApp;
  let entries: Array<{ id: string; resource: string; name: string }>;
  let postsToken: string;

  beforeAll(async () => {
    app = await startTestApp({ auth: {} });
    entries = await logEvents(app, [
      { resource: 'posts', action: 'create', resourceId: '1', name: 'post 1 created' },
      { resource: 'orders', action: 'create', resourceId: '7', name: 'order 7 created' },
      { resource: 'posts', action: 'update', resourceId: '1', name: 'post 1 edited' },
      { resource: 'customers', action: 'update', resourceId: '3', name: 'customer 3 edited' },
      { resource: 'posts', action: 'delete', resourceId: '2', name: 'post 2 deleted' },
    ]);
    const minted = await app.gql(MINT, { filter: { resource: ['posts'] }, expiresIn: 600 });
    expect(minted.errors).toBeUndefined();
    postsToken = minted.data!.createViewerToken.token;
  });
  afterAll(() => app.close());

  it('mints an aqv_ token that expires when asked, and records who minted it for what', async () => {
    expect(postsToken).toMatch(/^aqv_[\w-]+\.[\w-]+\.[\w-]+$/);
    const minted = await app.gql(MINT, { filter: { action: ['create'] }, expiresIn: 120 });
    const expiresAt = Date.parse(minted.data!.createViewerToken.expiresAt);
    expect(Math.abs(expiresAt - (Date.now() + 120_000))).toBeLessThan(5_000);
    const recorded = await app.gql(LIST, { filter: { resource: ['viewer_token'] } });
    expect(recorded.data!.auditLogs.totalCount).toBe(2);
    const full = await app.gql('{ auditLogs(filter: { resource: ["viewer_token"] }, first: 1) { edges { node { action author { id } data } } } }');
    const node = full.data!.auditLogs.edges[0].node;
    expect(node.action).toBe('create');
    expect(node.author.id).toMatch(/^apikey:/);
    expect(node.data).toEqual({ filter: { action: ['create'] }, expiresAt: new Date(expiresAt).toISOString() });
  });

  it('lists, counts and charts only what the token allows, intersected with the request filter', async () => {
    const all = await app.gql(LIST, {}, bearer(postsToken));
    expect(all.errors).toBeUndefined();
    expect(all.data!.auditLogs.totalCount).toBe(3);
    expect(all.data!.auditLogs.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['post 2 deleted', 'post 1 edited', 'post 1 created']);

    const wider = await app.gql(LIST, { filter: { resource: ['posts', 'orders'] } }, bearer(postsToken));
    expect(wider.data!.auditLogs.totalCount).toBe(3);
    const narrower = await app.gql(LIST, { filter: { action: ['update'] } }, bearer(postsToken));
    expect(narrower.data!.auditLogs.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['post 1 edited']);
    const searched = await app.gql(LIST, { filter: { search: 'edited' } }, bearer(postsToken));
    expect(searched.data!.auditLogs.totalCount).toBe(1);

    const outside = await app.gql(LIST, { filter: { resource: ['orders'] } }, bearer(postsToken));
    expect(codes(outside)).toEqual(['FORBIDDEN']);
    expect(outside.errors![0]!.message).toContain('"orders"');

    const chart = await app.gql(CHART, {}, bearer(postsToken));
    expect(chart.data!.activityChart.reduce((sum: number, b: { count: number }) => sum + b.count, 0)).toBe(3);
  });

  it('finds an entry by id only inside the allowed part', async () => {
    const post = entries.find((e) => e.resource === 'posts')!;
    const order = entries.find((e) => e.resource === 'orders')!;
    expect((await app.gql(ONE, { id: post.id }, bearer(postsToken))).data!.auditLog).toEqual({ id: post.id, resource: 'posts' });
    const hidden = await app.gql(ONE, { id: order.id }, bearer(postsToken));
    expect(codes(hidden)).toEqual(['NOT_FOUND']);
  });

  it('streams only allowed entries live, and replays only allowed ones', async () => {
    const first = entries[0]!;
    const cursor = (await app.gql('query ($id: ID!) { auditLog(id: $id) { cursor } }', { id: first.id })).data!.auditLog.cursor;
    const client = app.wsClient(bearer(postsToken));
    const stream = collect(client, 'subscription ($after: String) { auditLogAdded(after: $after) { name resource } }', { after: cursor }, 3);
    // Replayed: "post 1 edited", "post 2 deleted"; then live: only the post below.
    await logEvents(app, [
      { resource: 'orders', action: 'create', resourceId: '8', name: 'order 8 created' },
      { resource: 'posts', action: 'create', resourceId: '9', name: 'post 9 created' },
    ]);
    const received = await stream.reached;
    expect(received.map((r) => r.data!.auditLogAdded.name)).toEqual(['post 1 edited', 'post 2 deleted', 'post 9 created']);
    stream.unsubscribe();
  });

  it('refuses a live filter outside the token, and socket connections with a bad token', async () => {
    const client = app.wsClient(bearer(postsToken));
    const outside = collect(client, 'subscription { auditLogAdded(filter: { resource: ["orders"] }) { id } }');
    const { error, received } = await outside.done;
    const errors = (error as Array<{ extensions: { code: string } }> | undefined) ?? received[0]?.errors;
    expect(errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);

    const forged = collect(app.wsClient(bearer('aqv_not.a.token')), 'subscription { auditLogAdded { id } }');
    expect(((await forged.done).error as { code: number }).code).toBe(4403);
  });

  it('is read-only: no writes, no admin, no minting', async () => {
    expect(codes(await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'x' } }, bearer(postsToken)))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql('mutation ($id: ID!) { renameLog(id: $id, name: "x") { id } }', { id: entries[0]!.id }, bearer(postsToken)))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql('{ apiKeys { id } }', {}, bearer(postsToken)))).toEqual(['FORBIDDEN']);
    expect(codes(await app.gql(MINT, { filter: {}, expiresIn: 60 }, bearer(postsToken)))).toEqual(['FORBIDDEN']);
  });

  it('refuses altered, expired and foreign tokens', async () => {
    const [header, payload, signature] = postsToken.slice(4).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, flt: {} })).toString('base64url');
    const altered = await app.gql(LIST, {}, bearer(`aqv_${header}.${widened}.${signature}`));
    expect(codes(altered)).toEqual(['UNAUTHENTICATED']);

    const expired = await signViewerToken(app.dataSource, { tenantId: 'default', restriction: {}, createdBy: 'test', expiresIn: -5 });
    const refused = await app.gql(LIST, {}, bearer(expired.token));
    expect(codes(refused)).toEqual(['UNAUTHENTICATED']);
    expect(refused.errors![0]!.message).toBe('The viewer token has expired');

    // Signed by another database's key, or a JWT with the prefix in front.
    const other = await openDatabase(createSqliteDataSource({ database: ':memory:' }));
    const foreign = await signViewerToken(other, { tenantId: 'default', restriction: {}, createdBy: 'test', expiresIn: 60 });
    await other.destroy();
    expect(codes(await app.gql(LIST, {}, bearer(foreign.token)))).toEqual(['UNAUTHENTICATED']);
    const jwt = await signToken({ sub: 'x', scope: 'audit:read' });
    expect(codes(await app.gql(LIST, {}, bearer(`aqv_${jwt}`)))).toEqual(['UNAUTHENTICATED']);
  });

  it('is verified by any process on the same database (the key is stored there)', async () => {
    const second = await openDatabase(createSqliteDataSource({ database: app.file }));
    try {
      const principal = await verifyViewerToken(second, postsToken);
      expect(principal).toMatchObject({ tenantId: 'default', via: 'viewer-token', restriction: { resource: ['posts'] } });
      expect([...principal.scopes]).toEqual(['audit:read']);
    } finally {
      await second.destroy();
    }
  });

  it('validates expiresIn, refuses search, and needs audit:admin', async () => {
    expect(codes(await app.gql(MINT, { filter: {}, expiresIn: 0 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await app.gql(MINT, { filter: {}, expiresIn: 86_401 }))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await app.gql(MINT, { filter: { search: 'post' }, expiresIn: 60 }))).toEqual(['BAD_USER_INPUT']);
    const { secret: reader } = await createApiKey(app.dataSource, { name: 'reader', scopes: ['audit:read'] });
    expect(codes(await app.gql(MINT, { filter: {}, expiresIn: 60 }, bearer(reader)))).toEqual(['FORBIDDEN']);
  });

  it('stays in the tenant of the admin who minted it', async () => {
    const { secret: acmeAdmin } = await createApiKey(app.dataSource, { name: 'acme admin', scopes: ['audit:admin', 'audit:write'], tenantId: 'acme' });
    await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'create', name: 'acme post' } }, bearer(acmeAdmin));
    const minted = await app.gql(MINT, { filter: { resource: ['posts'] }, expiresIn: 60 }, bearer(acmeAdmin));
    const listed = await app.gql(LIST, {}, bearer(minted.data!.createViewerToken.token));
    expect(listed.data!.auditLogs.edges.map((e: { node: { name: string } }) => e.node.name)).toEqual(['acme post']);
  });
});

describe('confine', () => {
  const base = { tenantId: 't' };
  it('keeps a filter as it is without a restriction', () => {
    expect(confine({ ...base, resource: ['a'] }, undefined)).toEqual({ ...base, resource: ['a'] });
  });
  it('intersects lists, requires single values to agree, and overlaps time ranges', () => {
    expect(confine({ ...base, resource: ['a', 'b'], action: ['x'] }, { resource: ['b', 'c'], authorId: ['u'] })).toEqual({ ...base, resource: ['b'], action: ['x'], authorId: ['u'] });
    expect(confine({ ...base, resourceId: '1' }, { resourceId: '1', transactionId: 'tx' })).toEqual({ ...base, resourceId: '1', transactionId: 'tx' });
    expect(() => confine({ ...base, resourceId: '2' }, { resourceId: '1' })).toThrow('does not show resourceId "2"');
    expect(() => confine({ ...base, authorId: ['v'] }, { authorId: ['u'] })).toThrow('does not show authorId "v"');
    expect(confine({ ...base, from: 100, to: 500 }, { from: 200, to: 1000 })).toEqual({ ...base, from: 200, to: 500 });
    expect(confine({ ...base }, { to: 1000 })).toEqual({ ...base, to: 1000 });
    // No overlap: an empty range, which matches nothing.
    expect(confine({ ...base, from: 2000 }, { to: 1000 })).toEqual({ ...base, from: 2000, to: 2000 });
  });
});
