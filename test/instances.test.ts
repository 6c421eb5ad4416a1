import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { openDatabase, postgresDataSourceOptions } from '../src/db/data-source.js';
import { createApiKey } from '../src/services/api-keys.js';
import { createPostgresDatabase, REDIS_URL, servicesAvailable, uniqueName } from './helpers/services.js';
import { startServerProcess, type ServerProcess } from './helpers/instances.js';
import { collect, deferred, LOG_EVENT, signToken, TEST_JWT_SECRET } from './helpers/test-app.js';

const available = await servicesAvailable('test/instances.test.ts', 'postgres', 'redis');
const SUBSCRIBE = 'subscription($after: String) { auditLogAdded(after: $after) { id cursor resource resourceId } }';

describe.skipIf(!available)('several server processes on one PostgreSQL and one Redis', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let dataSource: DataSource;
  let a: ServerProcess;
  let b: ServerProcess;
  let token: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    token = await signToken({ sub: 'writer', scope: 'audit:read audit:write audit:admin' });
    env = { DATABASE_URL: database.url, REDIS_URL, REDIS_PREFIX: uniqueName('auditql_test'), JWT_SECRET: TEST_JWT_SECRET, WRITE_RATE_LIMIT: '100000' };
    // Started together: they take turns migrating.
    [a, b] = await Promise.all([startServerProcess(env, token), startServerProcess(env, token)]);
    dataSource = await openDatabase(new DataSource(postgresDataSourceOptions({ url: database.url })));
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    if (dataSource?.isInitialized) await dataSource.destroy();
    await database?.drop();
  });

  const stored = async () => ((await dataSource.query(`SELECT "id" FROM "audit_log" WHERE "tenant_id" = 'default' ORDER BY "created_at", "id"`)) as Array<{ id: number }>).map((r) => String(r.id));

  /**
   * A subscriber on `server` from a marker entry on: it replays whatever was committed after the marker
   * before it went live, so it misses nothing however long subscribing takes. `before`: the stored entries
   * up to the marker.
   */
  async function follow(server: ServerProcess) {
    const marker = await server.gql(LOG_EVENT, { input: { resource: 'marker', action: 'create' } });
    const before = (await stored()).length;
    return { live: collect(server.wsClient(token), SUBSCRIBE, { after: marker.data!.logEvent.cursor }), before };
  }

  it('are ready: database, migrations, Redis', async () => {
    for (const server of [a, b]) {
      const response = await fetch(server.url.replace('/graphql', '/ready'));
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: 'ready', database: 'up', migrations: 'applied', redis: 'up' });
    }
  });

  it('delivers entries written on A and on B to a subscriber on B, all of them, in commit order, once', async () => {
    const { live, before } = await follow(b);
    const writes = await Promise.all(
      Array.from({ length: 120 }, (_, i) => (i % 3 === 0 ? b : a).gql(LOG_EVENT, { input: { resource: 'burst', action: 'create', resourceId: String(i) } })),
    );
    expect(writes.every((w) => !w.errors)).toBe(true);
    const all = (await stored()).slice(before);
    await live.waitFor((messages) => messages.length >= all.length);
    const received = live.received.map((m) => m.data!.auditLogAdded.id as string);
    expect(received).toEqual(all);
    live.unsubscribe();
  });

  it('starting together on a fresh database, they migrate once and mint one admin key between them', async () => {
    const fresh = await createPostgresDatabase();
    try {
      const env = { DATABASE_URL: fresh.url, REDIS_URL, REDIS_PREFIX: uniqueName('auditql_test') };
      const servers = await Promise.all([startServerProcess(env), startServerProcess(env), startServerProcess(env)]);
      try {
        const keys = servers.map((server) => /^\s+(aql_\S+)$/m.exec(server.output())?.[1]).filter(Boolean);
        expect(keys).toHaveLength(1);
        for (const server of servers) expect((await server.gql('{ auditLogs { totalCount } }', {}, keys[0])).data).toEqual({ auditLogs: { totalCount: 0 } });
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    } finally {
      await fresh.drop();
    }
  });

  it('shares rate limits: a principal over its rate across both instances is limited', async () => {
    const limited = [await startServerProcess({ ...env, WRITE_RATE_LIMIT: '6' }, token), await startServerProcess({ ...env, WRITE_RATE_LIMIT: '6' }, token)];
    try {
      const other = await signToken({ sub: 'rate-limited-writer', scope: 'audit:write' });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => limited[i % 2]!.gql(LOG_EVENT, { input: { resource: 'rate', action: 'create' } }, other)));
      const refused = results.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
      // Each instance alone would have let its 5 through.
      expect(refused.length).toBeGreaterThanOrEqual(4);
      expect(results.length - refused.length).toBeLessThanOrEqual(6);
    } finally {
      await Promise.all(limited.map((server) => server.stop()));
    }
  });

  it('revoking an API key on A takes effect on B at once (B had it cached)', async () => {
    const { secret, apiKey } = await createApiKey(dataSource, { name: 'revoked on A', scopes: ['audit:read', 'audit:write'] });
    expect((await b.gql('{ auditLogs(first: 1) { totalCount } }', {}, secret)).errors).toBeUndefined();
    const { live } = await follow(b);
    expect((await a.gql('mutation($id: ID!) { revokeApiKey(id: $id) { id } }', { id: apiKey.id })).errors).toBeUndefined();
    // Redis delivers one connection's messages in order: once an entry written on A after the revocation
    // reached B, so had the revocation.
    const marker = await a.gql(LOG_EVENT, { input: { resource: 'marker', action: 'create' } });
    await live.waitFor((messages) => messages.some((m) => m.data?.auditLogAdded.id === marker.data!.logEvent.id));
    const refused = await b.gql('{ auditLogs(first: 1) { totalCount } }', {}, secret);
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    live.unsubscribe();
  });

  it('SIGKILL of A mid-burst: every acknowledged entry is stored, B keeps serving and its subscriber gets everything', async () => {
    const victim = await startServerProcess(env, token);
    const { live, before } = await follow(b);
    const acknowledged: string[] = [];
    const killed = deferred();
    let sent = 0;
    const writer = async () => {
      while (sent < 2000) {
        sent++;
        const result = await victim.gql(LOG_EVENT, { input: { resource: 'killed', action: 'create', resourceId: String(sent) } }).catch(() => undefined);
        if (!result) return; // the process is gone
        if (result.data?.logEvent) acknowledged.push(result.data.logEvent.id);
        if (acknowledged.length === 150) killed.resolve();
      }
    };
    const writers = Array.from({ length: 16 }, writer);
    await killed.promise;
    victim.child.kill('SIGKILL');
    await Promise.all(writers);
    expect(await victim.exited).toBe(null);
    const ids = new Set(await stored());
    expect(acknowledged.length).toBeGreaterThanOrEqual(150);
    for (const id of acknowledged) expect(ids.has(id)).toBe(true);
    // B still serves, and its subscriber receives every committed entry (those A never announced included).
    const after = await b.gql(LOG_EVENT, { input: { resource: 'after-kill', action: 'create' } });
    expect(after.errors).toBeUndefined();
    const all = (await stored()).slice(before);
    await live.waitFor((messages) => messages.length >= all.length);
    expect(live.received.map((m) => m.data!.auditLogAdded.id)).toEqual(all);
    live.unsubscribe();
  });

  it("after all those concurrent writers, the tenant's chain is gapless and in commit order, and verifies", async () => {
    const rows = (await dataSource.query(`SELECT "sequence" FROM "audit_log" WHERE "tenant_id" = 'default' ORDER BY "created_at", "id"`)) as Array<{ sequence: string }>;
    expect(rows.length).toBeGreaterThan(250);
    // The order cursors follow is the chain's order: 1, 2, 3, … with nothing missing or repeated.
    expect(rows.map((r) => Number(r.sequence))).toEqual(rows.map((_, i) => i + 1));
    const verified = await b.gql('{ verifyAuditChain { valid checked firstInvalidSequence reason } }');
    expect(verified.errors).toBeUndefined();
    expect(verified.data!.verifyAuditChain).toMatchObject({ valid: true, checked: rows.length, firstInvalidSequence: null });
  });
});
