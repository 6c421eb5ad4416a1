import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataSource } from 'typeorm';
import { Redis } from 'ioredis';
import { openDatabase, postgresDataSourceOptions } from '../src/db/data-source.js';
import { createPostgresDatabase, servicesAvailable, uniqueName } from './helpers/services.js';
import { startOwnRedis, startServerProcess, type ServerProcess } from './helpers/instances.js';
import { collect, deferred, LOG_EVENT, signToken, TEST_JWT_SECRET } from './helpers/test-app.js';

// Redis is restarted here: a redis-server of this test's own, never the machine's shared one.
const available = await servicesAvailable('test/redis-resync.test.ts', 'postgres');
const SUBSCRIBE = 'subscription($after: String) { auditLogAdded(after: $after) { id } }';

describe.skipIf(!available)('a subscriber that misses Redis messages still gets every entry', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let dataSource: DataSource;
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let a: ServerProcess;
  let b: ServerProcess;
  let token: string;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    redis = await startOwnRedis();
    token = await signToken({ sub: 'writer', scope: 'audit:read audit:write' });
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: uniqueName('auditql_test'), JWT_SECRET: TEST_JWT_SECRET, WRITE_RATE_LIMIT: '100000', LIVE_CHECK_INTERVAL_MS: '3600000' };
    // No periodic check: what is recovered here is recovered by the resync after Redis comes back.
    a = await startServerProcess(env, token);
    b = await startServerProcess(env, token);
    dataSource = await openDatabase(new DataSource(postgresDataSourceOptions({ url: database.url })));
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    if (dataSource?.isInitialized) await dataSource.destroy();
    await database?.drop();
  });

  const stored = async () => ((await dataSource.query(`SELECT "id" FROM "audit_log" ORDER BY "created_at", "id"`)) as Array<{ id: number }>).map((r) => String(r.id));

  it("B's Redis connection cut mid-burst, then Redis down for the rest of the burst and back after it: no gap, no duplicate, commit order", async () => {
    const marker = await b.gql(LOG_EVENT, { input: { resource: 'marker', action: 'create' } });
    const before = (await stored()).length;
    const live = collect(b.wsClient(token), SUBSCRIBE, { after: marker.data!.logEvent.cursor });
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await admin.connect();
    const acknowledged: string[] = [];
    const burst = async (from: number, to: number, at?: { count: number; then: () => void }) => {
      let next = from;
      const writer = async () => {
        while (next < to) {
          const i = next++;
          const result = await a.gql(LOG_EVENT, { input: { resource: 'burst', action: 'create', resourceId: String(i) } });
          expect(result.errors).toBeUndefined();
          acknowledged.push(result.data!.logEvent.id);
          if (at && acknowledged.length === at.count) at.then();
        }
      };
      await Promise.all(Array.from({ length: 8 }, writer));
    };
    // A network cut of B's subscribed connection (every subscribed client's: A's too) in the middle of a burst.
    const cut = deferred();
    const first = burst(0, 300, { count: 150, then: () => cut.resolve() });
    await cut.promise;
    expect(Number(await admin.client('KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(1);
    await first;
    admin.disconnect();
    // Then Redis goes away while the burst goes on, and comes back, empty, on the same port, after the last
    // write: nothing announced later can reveal the gap, only the resync after reconnecting can.
    await redis.stop();
    // Not ready without Redis (a load balancer sends traffic elsewhere), yet writes go on.
    const ready = await fetch(a.url.replace('/graphql', '/ready'));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', database: 'up', redis: 'down' });
    await burst(300, 600);
    redis = await startOwnRedis(redis.port);
    expect(acknowledged).toHaveLength(600);
    const all = (await stored()).slice(before);
    expect(all).toHaveLength(600);
    await live.waitFor((messages) => messages.length >= all.length);
    const received = live.received.map((m) => m.data!.auditLogAdded.id as string);
    expect(received).toEqual(all);
    live.unsubscribe();
  });
});
