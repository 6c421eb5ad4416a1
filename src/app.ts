import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { defaultLimits, type AuthConfig, type Limits } from './config.js';
import { createAuthenticator } from './auth/authenticate.js';
import { createJwtVerifier } from './auth/jwt.js';
import { createQuotas } from './services/quotas.js';
import { limitBodySize } from './server/http.js';
import { AuditPublishSubscriber, registerPublisher, unregisterPublisher } from './audit/publish.subscriber.js';
import { createAuditPubSub, type AuditPubSub } from './pubsub.js';
import { attachWebSocketServer } from './server/ws.js';
import { createAuditYoga, type AuditYoga } from './server/yoga.js';
import { createGroupCommit } from './audit/group-commit.js';
import { nextTimestamp } from './audit/writer.js';
import { createStore, type AuditStore, type StoreOptions } from './db/store.js';
import { createLogger, silentLogger, type Logger } from './shared/logger.js';
import { randomUUID } from 'node:crypto';
import { createRelayedPubSub } from './pubsub/relay.js';
import { connectRedis } from './pubsub/redis.js';
import { forgetApiKey, onApiKeyRevoked } from './auth/api-keys.js';
import { entriesAfter, tenantHead, toEntries } from './services/audit-log-query.js';

/** Logs a recurring problem at most once a minute (a Redis outage would otherwise log every retry). */
function throttled(logger: Logger, what: string): (error: unknown) => void {
  let last = 0;
  return (error) => {
    if (Date.now() - last < 60_000) return;
    last = Date.now();
    logger.warn({ err: error }, `${what}: ${(error as Error)?.message ?? String(error)}`);
  };
}

export interface AuditServerOptions {
  /** An initialised DataSource that includes the `AuditLog` entity and its migrations. */
  dataSource: DataSource;
  /**
   * Defaults to an in-process pub/sub (relayed in commit order on PostgreSQL, and across instances when
   * `redis` is given); pass your own to take over delivery.
   */
  pubsub?: AuditPubSub;
  /**
   * Redis shared by every instance of the server: live entries reach subscribers on any instance, API-key
   * revocations take effect everywhere at once, and rates are counted together.
   */
  redis?: { url: string; prefix?: string };
  /**
   * How often the live relay (PostgreSQL, or Redis) compares each followed tenant's log with what it
   * delivered, to catch commits nobody announced (an app process writing entries on its own). @default 2000
   */
  liveCheckIntervalMs?: number;
  limits?: Partial<Limits>;
  /** @default true */
  graphiql?: boolean;
  /** Where the server logs (pino). @default JSON lines on stdout at level info; `logging: false` silences it */
  logger?: Logger;
  /** `false`: log nothing. @default true */
  logging?: boolean;
  /** JWT verification. API keys (see `createApiKey`) always work. */
  auth?: Partial<AuthConfig>;
  /** How statements run: reader threads, time budgets, lock waits. */
  store?: Partial<StoreOptions>;
  /** Introspection, field suggestions and GraphiQL off. @default NODE_ENV !== 'development' */
  production?: boolean;
}

export interface AuditServer {
  yoga: AuditYoga;
  /** Where the server's statements run; its `health` says whether writes can succeed. */
  store: AuditStore;
  pubsub: AuditPubSub;
  /**
   * Listens on HTTP (queries, mutations, SSE) and WebSocket (graphql-ws), both at `/graphql`. Pass your
   * own `server` (whose request handler hands audit requests to `yoga`) to serve the audit API next to an app.
   */
  start(options?: { port?: number; host?: string; server?: Server }): Promise<{ url: string; port: number }>;
  /** Ends subscriptions, closes every connection and stops listening. Leaves the DataSource open. A second call does nothing. */
  stop(): Promise<void>;
}

/** The audit-log GraphQL server over a DataSource; building it and listening are separate steps. */
export function createAuditServer(options: AuditServerOptions): AuditServer {
  const { dataSource } = options;
  if (!dataSource.isInitialized) throw new Error('createAuditServer needs an initialised DataSource');
  if (!dataSource.subscribers.some((s) => s instanceof AuditPublishSubscriber)) {
    (dataSource.subscribers as AuditPublishSubscriber[]).push(new AuditPublishSubscriber());
  }
  const limits = { ...defaultLimits, ...options.limits };
  const logger = options.logging === false ? silentLogger() : (options.logger ?? createLogger());
  const store = createStore(dataSource, options.store);
  const redis = options.redis ? connectRedis({ ...options.redis, onError: throttled(logger, 'redis') }) : undefined;
  const relayed =
    options.pubsub === undefined && (redis !== undefined || store.dialect !== 'sqlite')
      ? createRelayedPubSub({
          local: createAuditPubSub(),
          transport: redis?.transport,
          instanceId: randomUUID(),
          readAfter: (tenantId, after, limit) => entriesAfter({ dataSource, store }, { tenantId }, after ?? { createdAt: -1, id: -1 }, limit),
          head: (tenantId) => tenantHead({ dataSource, store }, tenantId),
          onError: throttled(logger, 'live relay'),
          checkIntervalMs: options.liveCheckIntervalMs,
        })
      : undefined;
  const pubsub = options.pubsub ?? relayed ?? createAuditPubSub();
  registerPublisher(dataSource, pubsub);
  const stopAnnouncing = redis ? onApiKeyRevoked(dataSource, (id) => redis.announceRevocation(id)) : () => undefined;
  redis?.onRevocation((id) => forgetApiKey(dataSource, id));
  const jwt = options.auth ?? {};
  const auth = createAuthenticator(
    dataSource,
    createJwtVerifier({ secret: jwt.jwtSecret, jwksUrl: jwt.jwksUrl, issuer: jwt.jwtIssuer, audience: jwt.jwtAudience, tenantClaim: jwt.tenantClaim ?? 'tenant' }),
  );
  const quotas = createQuotas(limits, redis ? { client: redis.client, prefix: redis.prefix } : undefined);
  const commit = createGroupCommit({
    store,
    clock: () => nextTimestamp(dataSource),
    toEntries: (rows) => toEntries({ dataSource }, rows),
    publish: (entries) => entries.forEach((entry) => pubsub.publish(entry)),
  });
  const production = options.production ?? process.env.NODE_ENV !== 'development';
  const readiness = redis ? [{ name: 'redis', check: () => redis.ping() }] : [];
  const yoga = createAuditYoga({ dataSource, store, commit, pubsub, limits, auth, quotas }, { graphiql: options.graphiql ?? !production, logger, production, readiness });

  let server: Server | undefined;
  let ws: ReturnType<typeof attachWebSocketServer> | undefined;

  return {
    yoga,
    store,
    pubsub,
    async start({ port = 4000, host = '0.0.0.0', server: own } = {}) {
      // Shared rates and live entries need Redis: wait for it a moment before taking requests (without it
      // the instance still serves, counting rates on its own, and /ready says so).
      if (redis && !(await redis.connected(5000))) logger.warn('Redis (REDIS_URL) does not answer yet; serving without it until it does');
      server = own ?? createServer(limitBodySize(yoga, limits.maxBodyBytes));
      ws = attachWebSocketServer(server, yoga, auth, limits);
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
      return { url: `http://${shownHost}:${address.port}${yoga.graphqlEndpoint}`, port: address.port };
    },
    async stop() {
      unregisterPublisher(dataSource, pubsub);
      // Taken before the first await, so a second stop() finds nothing left to close.
      const [openWs, openServer] = [ws, server];
      ws = undefined;
      server = undefined;
      if (openWs) {
        for (const client of openWs.wsServer.clients) client.terminate();
        await openWs.close();
      }
      if (openServer) {
        const closed = new Promise<void>((resolve) => openServer.close(() => resolve()));
        openServer.closeAllConnections();
        await closed;
      }
      stopAnnouncing();
      await relayed?.close();
      await redis?.close();
      await store.close();
    },
  };
}
