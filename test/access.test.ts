import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/services/api-keys.js';
import { collect, deferred, LOG_EVENT, signToken, startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ limits: { writesPerSecond: 3, subscriptionsPerPrincipal: 1 } });
});
afterAll(() => app.close());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const WHO_AM_I = 'mutation { logEvent(input: { resource: "whoami", action: "x" }) { author { id } } }';

describe('token claims', () => {
  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['a number', 7],
    ['an object', { id: 'acme' }],
  ])('refuses a token whose tenant claim is %s (UNAUTHENTICATED), without a DEFAULT_TENANT', async (_label, tenant) => {
    const token = await signToken({ sub: 'someone', scope: 'audit:read audit:write', tenant });
    const result = await app.gql('{ auditLogs { totalCount } }', {}, bearer(token));
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(result.data ?? null).toBeNull();
  });

  it('puts a token without a tenant claim into DEFAULT_TENANT when one is configured', async () => {
    const configured = await startTestApp({ auth: { jwtSecret: TEST_JWT_SECRET, defaultTenant: 'solo' } });
    try {
      const token = await signToken({ sub: 'someone', scope: 'audit:read audit:write', tenant: undefined });
      await configured.gql(WHO_AM_I, {}, bearer(token));
      const stored = await configured.dataSource.query("SELECT tenant_id FROM audit_log WHERE resource = 'whoami'");
      expect(stored).toEqual([{ tenant_id: 'solo' }]);
      const malformed = await signToken({ sub: 'someone', scope: 'audit:read', tenant: 42 });
      expect((await configured.gql('{ auditLogs { totalCount } }', {}, bearer(malformed))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await configured.close();
    }
  });

  it.each([
    ['empty', ''],
    ['blank', '   '],
    ['an object', { id: 1 }],
    ['true', true],
  ])('refuses a token whose sub is %s', async (_label, sub) => {
    const token = await signToken({ sub, scope: 'audit:read' });
    expect((await app.gql('{ auditLogs { totalCount } }', {}, bearer(token))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('records a numeric sub as its JSON text', async () => {
    const token = await signToken({ sub: 12345, scope: 'audit:write' });
    const result = await app.gql(WHO_AM_I, {}, bearer(token));
    expect(result.data!.logEvent.author).toEqual({ id: '12345' });
    const stored = await app.dataSource.query("SELECT author_id, typeof(author_id) AS type FROM audit_log WHERE resource = 'whoami' AND author_id = '12345'");
    expect(stored).toEqual([{ author_id: '12345', type: 'text' }]);
  });

  it('refuses a token valid for longer than MAX_TOKEN_LIFETIME (24 h by default), and one without exp', async () => {
    const twoDays = await signToken({ sub: 'long', scope: 'audit:read' }, { exp: 48 * 3600 });
    expect((await app.gql('{ auditLogs { totalCount } }', {}, bearer(twoDays))).errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' }, message: expect.stringMatching(/MAX_TOKEN_LIFETIME/) });
    // Without iat, the lifetime left counts.
    const noIat = await signToken({ sub: 'long', scope: 'audit:read' }, { exp: 48 * 3600, iat: null });
    expect((await app.gql('{ auditLogs { totalCount } }', {}, bearer(noIat))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const forever = await signToken({ sub: 'forever', scope: 'audit:read' }, { exp: null });
    expect((await app.gql('{ auditLogs { totalCount } }', {}, bearer(forever))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const day = await signToken({ sub: 'day', scope: 'audit:read' }, { exp: 23 * 3600 });
    expect((await app.gql('{ auditLogs { totalCount } }', {}, bearer(day))).errors).toBeUndefined();
  });

  it('accepts tokens without exp only when configured, and then bounds them by iat + MAX_TOKEN_LIFETIME', async () => {
    const lenient = await startTestApp({ auth: { jwtSecret: TEST_JWT_SECRET, requireExp: false, maxTokenLifetimeSeconds: 3600 } });
    try {
      const fresh = await signToken({ sub: 'svc', scope: 'audit:read' }, { exp: null });
      expect((await lenient.gql('{ auditLogs { totalCount } }', {}, bearer(fresh))).errors).toBeUndefined();
      const old = await signToken({ sub: 'svc', scope: 'audit:read' }, { exp: null, iat: -7200 });
      expect((await lenient.gql('{ auditLogs { totalCount } }', {}, bearer(old))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await lenient.close();
    }
  });
});

describe('createApiKey', () => {
  const CREATE = 'mutation($scopes: [String!]!, $expiresAt: DateTime) { createApiKey(name: "k", scopes: $scopes, expiresAt: $expiresAt) { secret apiKey { id scopes expiresAt } } }';

  it('grants only scopes the caller holds: an admin without audit:impersonate cannot mint an impersonating key', async () => {
    const { secret: admin } = await createApiKey(app.dataSource, { name: 'plain admin', scopes: ['audit:admin', 'audit:read'] });
    const refused = await app.gql(CREATE, { scopes: ['audit:write', 'audit:impersonate'] }, bearer(admin));
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(refused.errors?.[0]?.message).toMatch(/audit:impersonate/);
    expect(refused.data).toBeNull();
    const allowed = await app.gql(CREATE, { scopes: ['audit:read'] }, bearer(admin));
    expect(allowed.data!.createApiKey.apiKey.scopes).toEqual(['audit:read']);
    const unknown = await app.gql(CREATE, { scopes: ['audit:everything'] }, bearer(admin));
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'scopes' });
  });

  it('makes keys that expire: refused from expiresAt on', async () => {
    const past = await app.gql(CREATE, { scopes: ['audit:read'], expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect(past.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'expiresAt' });
    const at = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, '.000Z');
    const created = await app.gql(CREATE, { scopes: ['audit:read'], expiresAt: at });
    expect(created.data!.createApiKey.apiKey.expiresAt).toBe(at);
    // Move the expiry into the past in the database: the key (never used, so not remembered) is refused.
    await app.dataSource.query('UPDATE api_key SET expires_at = ? WHERE id = ?', [Date.now() - 1, created.data!.createApiKey.apiKey.id]);
    const used = await app.gql('{ auditLogs { totalCount } }', {}, bearer(created.data!.createApiKey.secret));
    expect(used.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' }, message: expect.stringMatching(/expired/) });
  });

  it('caps key lifetimes with API_KEY_MAX_TTL', async () => {
    const capped = await startTestApp({ limits: { apiKeyMaxTtlSeconds: 3600 } });
    try {
      const defaulted = await capped.gql(CREATE, { scopes: ['audit:read'] });
      const expiresAt = Date.parse(defaulted.data!.createApiKey.apiKey.expiresAt);
      expect(expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
      const tooLong = await capped.gql(CREATE, { scopes: ['audit:read'], expiresAt: new Date(Date.now() + 7_200_000).toISOString() });
      expect(tooLong.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'expiresAt' });
    } finally {
      await capped.close();
    }
  });

  it('ends the streams of a key when it expires', async () => {
    // Long enough for the stream to be accepted first on a loaded machine (a key already expired is refused
    // at the request, which is not what this test is about).
    const { secret } = await createApiKey(app.dataSource, { name: 'brief', scopes: ['audit:read'], expiresAt: new Date(Date.now() + 4000) });
    const sse = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', 'x-api-key': secret },
      body: JSON.stringify({ query: 'subscription { auditLogAdded { id } }' }),
    });
    expect(sse.status).toBe(200);
    expect(await sse.text()).toMatch(/UNAUTHENTICATED.*have expired|have expired.*UNAUTHENTICATED/s);
  });
});

describe('idempotency keys', () => {
  it('replay the first entry only to a principal that may read it; otherwise FORBIDDEN with no data', async () => {
    const relay = async (scopes: string[]) => (await createApiKey(app.dataSource, { name: 'relay', scopes })).secret;
    const [first, second, reader] = [await relay(['audit:write', 'audit:impersonate']), await relay(['audit:write', 'audit:impersonate']), await relay(['audit:write', 'audit:impersonate', 'audit:read'])];
    const input = { resource: 'payments', action: 'refund', author: { id: 'end-user-9' }, idempotencyKey: 'req-1', data: { iban: 'DE00 1234' } };
    const written = await app.gql(LOG_EVENT, { input }, bearer(first));
    expect(written.errors).toBeUndefined();
    // The writer itself may retry.
    expect((await app.gql(LOG_EVENT, { input }, bearer(first))).data!.logEvent.id).toBe(written.data!.logEvent.id);
    const stranger = await app.gql(LOG_EVENT, { input }, bearer(second));
    expect(stranger.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(stranger.data).toBeNull();
    expect(JSON.stringify(stranger)).not.toContain('DE00');
    const allowed = await app.gql(LOG_EVENT, { input }, bearer(reader));
    expect(allowed.data!.logEvent.id).toBe(written.data!.logEvent.id);
    expect(Number((await app.dataSource.query("SELECT COUNT(*) AS n FROM audit_log WHERE resource = 'payments'"))[0].n)).toBe(1);
  });
});

describe('quotas per tenant and principal', () => {
  it('gives two tenants\' users with the same sub separate write rates', async () => {
    const [acme, globex] = [await signToken({ sub: '42', scope: 'audit:write', tenant: 'acme' }), await signToken({ sub: '42', scope: 'audit:write', tenant: 'globex' })];
    const write = (token: string) => app.gql('mutation { logEvent(input: { resource: "rate", action: "x" }) { id } }', {}, bearer(token));
    const results = await Promise.all([write(acme), write(acme), write(acme), write(globex), write(globex), write(globex)]);
    expect(results.map((r) => r.errors?.[0]?.extensions?.code ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    const fourth = await write(acme);
    expect(fourth.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter: expect.any(Number) });
  });

  it('gives two tenants\' users with the same sub separate subscription quotas', async () => {
    const [acme, globex] = [await signToken({ sub: '7', scope: 'audit:read audit:write', tenant: 'acme' }), await signToken({ sub: '7', scope: 'audit:read audit:write', tenant: 'globex' })];
    const query = 'subscription($after: String) { auditLogAdded(filter: { resource: ["quota"] }, after: $after) { resource } }';
    for (const token of [acme, globex]) {
      // Two entries in the tenant; resuming after the first replays the second at once: the subscription is live.
      const write = () => app.gql('mutation { logEvent(input: { resource: "quota", action: "x" }) { cursor } }', {}, bearer(token));
      const first = await write();
      await write();
      const sub = collect(app.wsClient({ authorization: `Bearer ${token}` }), query, { after: first.data!.logEvent.cursor }, 1);
      const delivered = await Promise.race([sub.reached, sub.done.then((d) => Promise.reject(new Error(JSON.stringify(d))))]);
      expect(delivered[0]!.data).toEqual({ auditLogAdded: { resource: 'quota' } });
    }
  });

  it('lets only one of two simultaneous subscribes take the last slot', async () => {
    const token = await signToken({ sub: 'racer', scope: 'audit:read', tenant: 'race' });
    const client = app.wsClient({ authorization: `Bearer ${token}` });
    const query = 'subscription { auditLogAdded(filter: { resource: ["race"] }) { id } }';
    const [a, b] = [collect(client, query), collect(client, query)];
    const refused = deferred<string>();
    void a.done.then((r) => refused.resolve(JSON.stringify(r)));
    void b.done.then((r) => refused.resolve(JSON.stringify(r)));
    expect(await refused.promise).toMatch(/SUBSCRIPTION_LIMIT/);
    a.unsubscribe();
    b.unsubscribe();
  });
});

describe('production mode', () => {
  it('refuses introspection on every transport, graphql-ws included', async () => {
    const prod = await startTestApp({ production: true });
    try {
      const http = await prod.gql('{ __schema { types { name } } }');
      expect(http.errors?.[0]?.message).toMatch(/introspection/i);
      const sub = collect(prod.wsClient(), '{ __schema { types { name } } }');
      const { received, error } = await sub.done;
      expect(JSON.stringify({ received, error })).toMatch(/introspection/i);
      expect(received.some((r) => r.data?.__schema)).toBe(false);
    } finally {
      await prod.close();
    }
  });
});
