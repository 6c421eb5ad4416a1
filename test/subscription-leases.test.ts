import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createPostgresDatabase, servicesAvailable, uniqueName } from './helpers/services.js';
import { startOwnRedis, startServerProcess, type ServerProcess } from './helpers/instances.js';
import { collect, deferred, LOG_EVENT, signToken, TEST_JWT_SECRET } from './helpers/test-app.js';

// The cap on live subscriptions per principal holds across instances: leases in Redis (a redis-server of
// this test's own, so that it may turn on keyspace notifications).
const available = await servicesAvailable('test/subscription-leases.test.ts', 'postgres', 'redis');
const WATCH = 'subscription($after: String) { auditLogAdded(after: $after, filter: { resource: ["lease"] }) { id resource } }';

describe.skipIf(!available)('live subscriptions per principal, across instances', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let redis: Awaited<ReturnType<typeof startOwnRedis>>;
  let events: Redis;
  let a: ServerProcess;
  let b: ServerProcess;
  let writer: string;
  let watcher: string;
  const prefix = uniqueName('auditql_leases');

  beforeAll(async () => {
    [database, redis] = await Promise.all([createPostgresDatabase(), startOwnRedis()]);
    events = new Redis(redis.url);
    await events.config('SET', 'notify-keyspace-events', 'Kz');
    writer = await signToken({ sub: 'writer', scope: 'audit:read audit:write' });
    watcher = await signToken({ sub: 'watcher', scope: 'audit:read' });
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: prefix,
      JWT_SECRET: TEST_JWT_SECRET,
      SUBSCRIPTIONS_PER_PRINCIPAL: '2',
      SUBSCRIPTION_LEASE: '2s',
    };
    a = await startServerProcess(env, writer);
    b = await startServerProcess(env, writer);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    events?.disconnect();
    await redis?.stop();
    await database?.drop();
  });

  /**
   * Subscribes on `server` and resolves once the subscription is live: an entry written after it arrives
   * (it resumes after a marker, so the entry arrives however long subscribing takes).
   */
  async function live(server: ServerProcess) {
    const marker = await a.gql(LOG_EVENT, { input: { resource: 'marker', action: 'create' } });
    const stream = collect(server.wsClient(watcher), WATCH, { after: marker.data!.logEvent.cursor });
    const refused = refusal(stream);
    const written = await a.gql(LOG_EVENT, { input: { resource: 'lease', action: 'create' } });
    expect(written.errors).toBeUndefined();
    const id = written.data!.logEvent.id;
    const arrived = stream.waitFor((messages) => messages.some((m) => m.data?.auditLogAdded?.id === id)).then(() => 'live');
    const outcome = await Promise.race([arrived, refused]);
    if (outcome !== 'live') throw new Error(`refused: ${outcome}`);
    return stream;
  }

  /** What the server answered a subscription it refused (an error result, or the stream ending). */
  function refusal(stream: ReturnType<typeof collect>) {
    const errored = stream.waitFor((messages) => messages.some((m) => m.errors)).then(() => JSON.stringify(stream.received));
    return Promise.race([errored, stream.done.then((result) => JSON.stringify(result))]);
  }

  /** Listens for Redis running `command` on this test's lease sets; `done` resolves after `times` of them. */
  async function leaseChange(command: string, times = 1) {
    const subscriber = events.duplicate();
    const changed = deferred<void>();
    let seen = 0;
    subscriber.on('pmessage', (_pattern, _channel, message) => {
      if (message !== command || ++seen < times) return;
      changed.resolve();
      subscriber.disconnect();
    });
    await subscriber.psubscribe(`__keyspace@0__:${prefix}:subscriptions:*`);
    return { done: changed.promise };
  }

  it('refuses a third subscription on B when the principal holds one on A and one on B', async () => {
    const onA = await live(a);
    const onB = await live(b);
    expect(await refusal(collect(b.wsClient(watcher), WATCH))).toMatch(/SUBSCRIPTION_LIMIT/);

    // Ending the one on B frees its slot for the principal everywhere, here on A.
    const released = await leaseChange('zrem');
    onB.unsubscribe();
    await released.done;
    const again = await live(a);
    expect(await refusal(collect(a.wsClient(watcher), WATCH))).toMatch(/SUBSCRIPTION_LIMIT/);
    const gone = await leaseChange('zrem', 2);
    onA.unsubscribe();
    again.unsubscribe();
    await gone.done;
  });

  it('gives back the slots of an instance killed outright once their lease lapses', async () => {
    // Nothing is held from the test before: both slots go to streams on B, which is then killed.
    await live(b);
    await live(b);
    expect(await refusal(collect(a.wsClient(watcher), WATCH))).toMatch(/SUBSCRIPTION_LIMIT/);
    b.child.kill('SIGKILL');
    await b.exited;
    // The lease is two seconds: time has to pass by definition here.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const x = await live(a);
    const y = await live(a);
    expect(await refusal(collect(a.wsClient(watcher), WATCH))).toMatch(/SUBSCRIPTION_LIMIT/);
    x.unsubscribe();
    y.unsubscribe();
  });
});
