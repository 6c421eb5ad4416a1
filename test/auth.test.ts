import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApiKey, revokeApiKey } from '../src/services/api-keys.js';
import { writeTransaction } from '../src/db/transaction.js';
import { collect, LOG_EVENT, signToken, startTestApp, untilSubscribed, type TestApp } from './helpers/test-app.js';

let app: TestApp;
let entryId: string;
const tokens: Record<string, string | null> = {};

beforeAll(async () => {
  app = await startTestApp();
  entryId = (await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'create' } })).data!.logEvent.id;
  const all = 'audit:read audit:write audit:admin';
  tokens.none = null;
  tokens.expired = await signToken({ sub: 'late', scope: all }, { exp: -60 });
  tokens.wrongSignature = await signToken({ sub: 'mallory', scope: all }, { secret: 'another-secret-that-is-long-enough-too!!' });
  tokens.readOnly = await signToken({ sub: 'reader', scope: 'audit:read' });
  tokens.writeOnly = await signToken({ sub: 'writer', scope: 'audit:write' });
  tokens.admin = await signToken({ sub: 'root', name: 'Root', scope: all });
  tokens.otherTenant = await signToken({ sub: 'acme-admin', scope: all, tenant: 'acme' });
  tokens.impersonating = (await createApiKey(app.dataSource, { name: 'relay', scopes: ['audit:write', 'audit:impersonate'] })).secret;
  tokens.apiKey = (await createApiKey(app.dataSource, { name: 'billing', scopes: ['audit:read', 'audit:write'] })).secret;
  const revoked = await createApiKey(app.dataSource, { name: 'old', scopes: ['audit:read', 'audit:write', 'audit:admin'] });
  await revokeApiKey(app.dataSource, revoked.apiKey.id);
  tokens.revokedKey = revoked.secret;
});
afterAll(() => app.close());

const as = (who: string) => (tokens[who] ? { authorization: `Bearer ${tokens[who]}` } : { authorization: '' });

const operations: Record<string, [string, () => Record<string, unknown>]> = {
  auditLogs: ['{ auditLogs { totalCount } }', () => ({})],
  auditLog: ['query($id: ID!) { auditLog(id: $id) { id } }', () => ({ id: entryId })],
  activityChart: ['{ activityChart { count } }', () => ({})],
  logEvent: ['mutation { logEvent(input: { resource: "matrix", action: "x" }) { id author { id } } }', () => ({})],
  logEventAsSomeoneElse: ['mutation { logEvent(input: { resource: "matrix", action: "y", author: { id: "end-user-7" } }) { id author { id } recordedBy } }', () => ({})],
  renameLog: ['mutation($id: ID!) { renameLog(id: $id, name: "renamed") { id } }', () => ({ id: entryId })],
  apiKeys: ['{ apiKeys { id } }', () => ({})],
  createApiKey: ['mutation { createApiKey(name: "k", scopes: ["audit:read"]) { secret } }', () => ({})],
  verifyAuditChain: ['{ verifyAuditChain { valid } }', () => ({})],
  createCheckpoint: ['mutation { createCheckpoint { sequence } }', () => ({})],
  checkpointPublicKey: ['{ checkpointPublicKey { keyId } }', () => ({})],
};

type Outcome = 'ok' | 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND';
const U: Outcome = 'UNAUTHENTICATED';
const F: Outcome = 'FORBIDDEN';
// operation:            auditLogs auditLog  chart  logEvent  asOther  rename    apiKeys  createKey  verify  checkpoint  publicKey
const matrix: Record<string, Outcome[]> = {
  none:           [U, U, U, U, U, U, U, U, U, U, U],
  expired:        [U, U, U, U, U, U, U, U, U, U, U],
  wrongSignature: [U, U, U, U, U, U, U, U, U, U, U],
  revokedKey:     [U, U, U, U, U, U, U, U, U, U, U],
  readOnly:       ['ok', 'ok', 'ok', F, F, F, F, F, F, F, 'ok'],
  writeOnly:      [F, F, F, 'ok', F, F, F, F, F, F, F],
  admin:          ['ok', 'ok', 'ok', 'ok', F, 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
  otherTenant:    ['ok', 'NOT_FOUND', 'ok', 'ok', F, 'NOT_FOUND', 'ok', 'ok', 'ok', 'ok', 'ok'],
  impersonating:  [F, F, F, 'ok', 'ok', F, F, F, F, F, F],
  apiKey:         ['ok', 'ok', 'ok', 'ok', F, F, F, F, F, F, 'ok'],
};

describe('who may do what', () => {
  const cases = Object.entries(matrix).flatMap(([who, outcomes]) => Object.keys(operations).map((op, i) => [who, op, outcomes[i]!] as const));
  it.each(cases)('%s → %s: %s', async (who, op, expected) => {
    const [query, variables] = operations[op]!;
    const before = (await app.dataSource.query('SELECT COUNT(*) AS n FROM audit_log'))[0].n;
    const result = await app.gql(query, variables(), as(who));
    if (expected === 'ok') {
      expect(result.errors).toBeUndefined();
    } else {
      expect(result.errors?.[0]?.extensions?.code).toBe(expected);
      // A refused write leaves nothing behind.
      if (op === 'logEvent' || op === 'logEventAsSomeoneElse') expect((await app.dataSource.query('SELECT COUNT(*) AS n FROM audit_log'))[0].n).toBe(before);
    }
  });
});

describe('authorship and tenants', () => {
  it('records the caller as author; only an impersonating service may name another, and is recorded as the writer', async () => {
    const own = await app.gql(operations.logEvent![0], {}, as('admin'));
    expect(own.data!.logEvent.author).toEqual({ id: 'root' });
    const relayed = await app.gql(operations.logEventAsSomeoneElse![0], {}, as('impersonating'));
    expect(relayed.data!.logEvent.author).toEqual({ id: 'end-user-7' });
    expect(relayed.data!.logEvent.recordedBy).toMatch(/^apikey:/);
  });

  it('confines every read to the caller\'s tenant', async () => {
    await app.gql('mutation { logEvent(input: { resource: "acme-only", action: "create" }) { id } }', {}, as('otherTenant'));
    const acme = await app.gql('{ auditLogs { totalCount edges { node { resource } } } activityChart { count } }', {}, as('otherTenant'));
    expect(acme.data!.auditLogs.edges.map((e: { node: { resource: string } }) => e.node.resource).every((r: string) => r === 'matrix' || r === 'acme-only')).toBe(true);
    const home = await app.gql('{ auditLogs(filter: { resource: ["acme-only"] }) { totalCount } }', {}, as('admin'));
    expect(home.data!.auditLogs.totalCount).toBe(0);
    const acmeChart = acme.data!.activityChart.reduce((s: number, b: { count: number }) => s + b.count, 0);
    expect(acmeChart).toBe(acme.data!.auditLogs.totalCount);
  });

  it('records a rename as an entry of its own and changes nothing else', async () => {
    const created = await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'create', name: 'old', data: { a: 1 } } });
    const id = created.data!.logEvent.id;
    await app.gql('mutation($id: ID!) { renameLog(id: $id, name: "new") { id } }', { id }, as('admin'));
    const history = await app.gql('query($id: String!) { auditLogs(filter: { resource: ["audit_log"], resourceId: $id }) { edges { node { action author { id } changes { field from to } } } } }', { id });
    expect(history.data!.auditLogs.edges.map((e: { node: unknown }) => e.node)).toEqual([
      { action: 'rename', author: { id: 'root' }, changes: [{ field: 'name', from: 'old', to: 'new' }] },
    ]);
  });

  it('offers no mutation that deletes or edits an entry\'s recorded facts', async () => {
    const result = await app.gql('{ __type(name: "Mutation") { fields { name } } }');
    // createCheckpoint signs the chain's head; it changes no entry. eraseActor replaces personal values by the
    // digests they were hashed as (the chain still verifies); setRetentionPolicy sets when entries expire.
    expect(result.data!.__type.fields.map((f: { name: string }) => f.name).sort()).toEqual([
      'createApiKey', 'createCheckpoint', 'createViewerToken', 'eraseActor', 'logEvent', 'logEvents', 'renameLog', 'revokeApiKey', 'setRetentionPolicy',
    ]);
  });
});

describe('API keys', () => {
  it('are created, listed and revoked by an admin; the secret is shown once and only its hash is stored', async () => {
    const created = await app.gql('mutation { createApiKey(name: "ci", scopes: ["audit:read"]) { secret apiKey { id name scopes tenant lastUsedAt revokedAt } } }', {}, as('admin'));
    const { secret, apiKey } = created.data!.createApiKey;
    expect(apiKey).toMatchObject({ name: 'ci', scopes: ['audit:read'], tenant: 'default', lastUsedAt: null, revokedAt: null });
    const stored = await app.dataSource.query('SELECT * FROM api_key WHERE id = ?', [apiKey.id]);
    // The secret part is everything after `aql_<16-character id>_` (base64url, which may itself hold `_` and `-`).
    const secretPart = /^aql_[a-z0-9]{16}_(.+)$/.exec(secret)![1]!;
    expect(secretPart).toHaveLength(43);
    expect(JSON.stringify(stored)).not.toContain(secretPart);
    // x-api-key works as well as the bearer form, and marks the key used.
    const used = await app.gql('{ auditLogs { totalCount } }', {}, { authorization: '', 'x-api-key': secret });
    expect(used.errors).toBeUndefined();
    // The last-used time is written off the request's path, by a write transaction queued while the request
    // was verified; write transactions run in arrival order, so one queued now runs after it has committed.
    await writeTransaction(app.dataSource, async () => undefined);
    const listed = await app.gql('{ apiKeys { id lastUsedAt } }', {}, as('admin'));
    expect(listed.data!.apiKeys.find((k: { id: string }) => k.id === apiKey.id).lastUsedAt).toEqual(expect.any(String));
    await app.gql('mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }', { id: apiKey.id }, as('admin'));
    const after = await app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${secret}` });
    expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses unknown scopes', async () => {
    const result = await app.gql('mutation { createApiKey(name: "x", scopes: ["audit:everything"]) { secret } }', {}, as('admin'));
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'scopes' });
  });
});

describe('credentials on WebSockets', () => {
  function connect(connectionParams: Record<string, unknown>) {
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      const client = createClient({
        url: app.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        connectionParams,
        on: { closed: (event) => resolve(event as { code: number; reason: string }) },
      });
      collect(client, 'subscription { auditLogAdded { id } }');
    });
    return closed;
  }

  it.each([
    ['no credentials', {}],
    ['an expired token', { authorization: `Bearer ${'expired'}` }],
    ['a revoked key', { apiKey: 'revokedKey' }],
  ])('closes a socket with %s with 4403', async (_label, params) => {
    const resolved = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v.replace(/expired|revokedKey/, (w) => tokens[w]!) : v]));
    expect((await connect(resolved)).code).toBe(4403);
  });

  it('refuses a subscription without the read scope, with FORBIDDEN, and keeps the socket', async () => {
    const client = app.wsClient({ authorization: `Bearer ${tokens.writeOnly}` });
    const refused = collect(client, 'subscription { auditLogAdded { id } }');
    const { received, error } = await refused.done;
    expect(error ?? received[0]?.errors).toBeDefined();
    expect(JSON.stringify(received)).toMatch(/FORBIDDEN/);
  });

  it('keeps subscriptions of a key valid for 60 days (longer than a Node timer can wait)', async () => {
    const { secret: longLived } = await createApiKey(app.dataSource, { name: 'patient', scopes: ['audit:read'], expiresAt: new Date(Date.now() + 60 * 86_400_000) });
    const client = app.wsClient({ authorization: `Bearer ${longLived}` });
    const subscribed = app.server.pubsub.subscriberCount + 1;
    const sub = collect(client, 'subscription { auditLogAdded(filter: { resource: ["long-lived"] }) { resource } }', {}, 1);
    await untilSubscribed(app.server.pubsub, subscribed);
    await app.gql(LOG_EVENT, { input: { resource: 'long-lived', action: 'ping' } });
    expect((await sub.reached)[0]!.data!.auditLogAdded.resource).toBe('long-lived');
    sub.unsubscribe();
  });

  it('refuses a token it has already verified once the token expires (verified tokens are remembered only until then)', async () => {
    // Four seconds (exp is whole seconds, so at least three): the two answers before the expiry must both come
    // before it, even on a loaded machine.
    const brief = await signToken({ sub: 'brief-http', scope: 'audit:read' }, { exp: 4 });
    const ok = await app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${brief}` });
    expect(ok.errors).toBeUndefined();
    const again = await app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${brief}` });
    expect(again.errors).toBeUndefined();
    // Waiting for the expiry is the point of this test (exp has a resolution of one second).
    const exp = JSON.parse(Buffer.from(brief.split('.')[1]!, 'base64url').toString()).exp as number;
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
    const late = await app.gql('{ auditLogs { totalCount } }', {}, { authorization: `Bearer ${brief}` });
    expect(late.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(late.errors?.[0]?.message).toMatch(/expired/);
  });

  it('ends live subscriptions when the token expires', async () => {
    // Long enough (at least three seconds, exp being whole seconds) for the socket to be accepted before it
    // expires on a loaded machine: a token already expired at connection is refused with 4403 instead.
    const shortLived = await signToken({ sub: 'brief', scope: 'audit:read' }, { exp: 4 });
    const client = app.wsClient({ authorization: `Bearer ${shortLived}` });
    const sub = collect(client, 'subscription { auditLogAdded { id } }');
    const { error, received } = await sub.done;
    expect(JSON.stringify({ error, received, code: (error as { code?: number } | undefined)?.code })).toMatch(/4401|UNAUTHENTICATED|expired/);
  });
});
