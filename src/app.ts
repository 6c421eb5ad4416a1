import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { defaultLimits, type AuthConfig, type Limits } from './config.js';
import { createAuthenticator } from './auth/authenticate.js';
import { watchRevocations } from './auth/api-keys.js';
import { createJwtVerifier } from './auth/jwt.js';
import { createQuotas } from './services/quotas.js';
import { createReplaySlots } from './services/replay-slots.js';
import { AuditPublishSubscriber, registerPublisher, unregisterPublisher } from './audit/publish.subscriber.js';
import { createAuditPubSub, type AuditPubSub } from './pubsub.js';
import { attachWebSocketServer } from './server/ws.js';
import { buildContext } from './server/context.js';
import type { ServerDeps } from './schema/context.js';
import { CloseCode, Connections } from './server/connections.js';
import { createAuditYoga } from './server/yoga.js';
import { createGroupCommit, type TenantDraft } from './audit/group-commit.js';
import { nextTimestamp } from './audit/writer.js';
import { chainSettings } from './audit/chain/settings.js';
import { createStore, defaultStoreOptions, type AuditStore, type StoreOptions } from './db/store.js';
import { createLogger, silentLogger, type Logger } from './shared/logger.js';
import { randomUUID } from 'node:crypto';
import { createRelayedPubSub } from './pubsub/relay.js';
import { connectRedis } from './pubsub/redis.js';
import { apiKeyRevoked, onApiKeyRevoked } from './auth/api-keys.js';
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
import type { KeyObject } from 'node:crypto';
import type { CheckpointKey } from './shared/chain/checkpoint.js';
import { configureAuditChain, type AuditChainOptions } from './audit/chain/settings.js';
import { loadCheckpointKey } from './services/checkpoint-key.js';
import { scheduleCheckpoints } from './services/checkpoints.js';
import { createMetaAudit, type MetaAuditOptions } from './services/meta-audit.js';
import { startSearchIndexer, type SearchIndexer } from './db/search-index.js';
import { RETENTION_AUTHOR, scheduleRetention, type PurgeOptions, type PurgeResult, type RetentionSettings } from './services/retention.js';

/** What `createAuditServer` is built from; only `dataSource` is required. */
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
  /** Origins whose browser pages may call the API (`['*']`: any, never with credentials). @default [] (none) */
  corsOrigins?: readonly string[];
  /** The chain, checkpoints and the audit of the audit log (README, "Evidence"). */
  evidence?: EvidenceOptions;
  /** How long entries are kept and where removed ones are archived (README, "Retention"). */
  retention?: RetentionOptions;
}

/** Retention on a server: the global limit, the archive folder and the schedule. */
export interface RetentionOptions extends Partial<RetentionSettings> {
  /** How often expired entries are purged; 0: only through `purgeExpired()` or `auditql retention`. @default 3600000 */
  intervalMs?: number;
}

/** The chain's settings on a server: checkpoint signing and schedule, the audit of the audit log, personal fields. */
export interface EvidenceOptions {
  /** Ed25519 private key (PEM or KeyObject) that signs checkpoints. @default one generated next to the database file */
  checkpointPrivateKey?: string | KeyObject;
  /** Keys that signed checkpoints before `checkpointPrivateKey` (PEM text of one or more, or KeyObjects): their checkpoints stay trusted. */
  checkpointPreviousKeys?: string | KeyObject[];
  /** A checkpoint per tenant whose chain moved, this often; 0: none on a schedule. @default 3600000 */
  checkpointIntervalMs?: number;
  metaAudit?: MetaAuditOptions;
  /** Personal fields inside data, previousData and meta. @default DEFAULT_PERSONAL_FIELDS */
  personalFields?: AuditChainOptions['personalFields'];
}

/** What an app needs of the audit API to serve it itself. */
export interface AuditHttpHandler {
  (req: IncomingMessage, res: ServerResponse): unknown;
  fetch(request: Request): Promise<Response> | Response;
  /** Where the API answers, `/graphql`. */
  readonly graphqlEndpoint: string;
}

/** A built audit server: its request handler, its store and pub/sub, and `start`/`stop` for listening. */
export interface AuditServer {
  /**
   * The audit API as a request handler, to mount in an app's own server: Node's `(req, res)`, or the Fetch
   * API's `fetch(request)`. (It is a graphql-yoga instance; typed narrowly so that the package's types do not
   * depend on yoga's.)
   */
  yoga: AuditHttpHandler;
  /** Where the server's statements run; its `health` says whether writes can succeed. */
  store: AuditStore;
  pubsub: AuditPubSub;
  /** The key that signs checkpoints (configured, or generated next to the database). */
  checkpointKey: CheckpointKey;
  /**
   * Listens on HTTP (queries, mutations, SSE) and WebSocket (graphql-ws), both at `/graphql`. Pass your
   * own `server` (whose request handler hands audit requests to `yoga`) to serve the audit API next to an app.
   */
  start(options?: { port?: number; host?: string; server?: Server }): Promise<{ url: string; port: number }>;
  /**
   * Shuts down, draining: stops accepting (new requests get 503 SHUTTING_DOWN), ends live streams with a
   * SHUTTING_DOWN error that carries the cursor to resume from, lets requests and operations already under way
   * finish (their writes commit, group commit included) for up to `timeoutMs`, closes WebSockets with 1001, then
   * every connection left. Leaves the DataSource open. Calling it again returns the same promise.
   */
  stop(options?: { timeoutMs?: number }): Promise<void>;
  /** Brings the search index up to date with every entry written so far (it otherwise catches up within a fraction of a second). */
  indexSearch(): Promise<void>;
  /** Removes expired entries now (README, "Retention"); after a purge under way, if any. */
  purgeExpired(options?: Omit<PurgeOptions, 'signal'>): Promise<PurgeResult[]>;
}

/** How long `stop()` waits for in-flight requests by default. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

/** How often a running server looks for API keys revoked by another process. */
const REVOCATION_CHECK_MS = 500;

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
  // A revocation another instance announced: applied here (forgotten, its streams ended), not announced again.
  redis?.onRevocation((id) => apiKeyRevoked(dataSource, id));
  const jwt = options.auth ?? {};
  const auth = createAuthenticator(
    dataSource,
    createJwtVerifier({
      secret: jwt.jwtSecret,
      jwksUrl: jwt.jwksUrl,
      issuer: jwt.jwtIssuer,
      audience: jwt.jwtAudience,
      tenantClaim: jwt.tenantClaim ?? 'tenant',
      defaultTenant: jwt.defaultTenant,
      maxLifetimeSeconds: jwt.maxTokenLifetimeSeconds,
      requireExp: jwt.requireExp,
    }),
  );
  const quotas = createQuotas(
    limits,
    redis ? { client: redis.client, prefix: redis.prefix, subscriptionLeaseMs: limits.subscriptionLeaseMs, onError: throttled(logger, 'redis') } : undefined,
  );
  const commitAll = createGroupCommit({
    store,
    clock: () => nextTimestamp(dataSource),
    toEntries: (rows) => toEntries({ dataSource }, rows),
    chain: () => chainSettings(dataSource),
    publish: (entries) => entries.forEach((entry) => pubsub.publish(entry)),
  });
  const commit = async (draft: TenantDraft) => (await commitAll([draft]))[0]!;
  const replays = createReplaySlots(limits);
  const closing = new AbortController();
  // Every live stream listens for the shutdown: one listener each is the design, not a leak.
  setMaxListeners(0, closing.signal);
  const production = options.production ?? process.env.NODE_ENV !== 'development';
  const readiness = redis ? [{ name: 'redis', check: () => redis.ping() }] : [];
  const evidence = options.evidence ?? {};
  if (evidence.personalFields !== undefined) configureAuditChain(dataSource, { personalFields: evidence.personalFields });
  // A generated key is kept next to a SQLite file; elsewhere it lives in memory unless configured (the CLI's
  // server passes one kept in a PostgreSQL database: cli/serve.ts).
  const database = store.dialect === 'sqlite' && typeof dataSource.options.database === 'string' ? dataSource.options.database : undefined;
  const checkpointKey = loadCheckpointKey({ privateKey: evidence.checkpointPrivateKey, previousKeys: evidence.checkpointPreviousKeys, database }, logger);
  const metaAudit = createMetaAudit(commit, logger, evidence.metaAudit);
  const connections = new Connections(limits, logger);
  const retentionSettings: RetentionSettings = { ...options.retention, days: options.retention?.days ?? 0 };
  const retention = scheduleRetention({ dataSource, store, checkpointKey, record: commit }, retentionSettings, logger);
  const serverDeps: ServerDeps = { dataSource, store, commit, commitAll, pubsub, limits, auth, quotas, replays, closing: closing.signal, checkpointKey, metaAudit, retentionDays: retentionSettings.days, retentionArchiveDir: retentionSettings.archiveDir, logger };
  const yoga = createAuditYoga(
    serverDeps,
    {
      graphiql: options.graphiql ?? !production,
      logger,
      production,
      corsOrigins: options.corsOrigins,
      plugins: [connections.plugin()],
      readiness,
      // An export holds a reader while it lasts: one reader always stays free for every other read.
      exportsAtOnce: Math.max(1, (options.store?.readWorkers ?? defaultStoreOptions.readWorkers) - 1),
    },
  );
  let stopCheckpoints: (() => void) | undefined;

  let server: Server | undefined;
  let ws: ReturnType<typeof attachWebSocketServer> | undefined;
  let stopping: Promise<void> | undefined;
  let stopWatching: (() => void) | undefined;
  let indexer: SearchIndexer | undefined;

  const drainAndClose = async (timeoutMs: number) => {
    stopCheckpoints?.();
    stopCheckpoints = undefined;
    // A purge under way stops between two batches, and records what it removed, before the writer closes.
    const retentionStopped = retention.stop();
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    // Stop accepting: no new connections, 503 for new requests on open ones, no new WebSockets.
    connections.beginDrain();
    const closed = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : Promise.resolve();
    server?.closeIdleConnections();
    // Live streams end with SHUTTING_DOWN and their resume cursor; requests under way finish.
    closing.abort();
    const drained = await connections.whenIdle(left());
    if (!drained) logger.warn(`shutdown: requests still running after ${timeoutMs} ms are cut off`);
    await connections.closeSockets(CloseCode.GoingAway, 'Server shutting down', Math.min(left(), 2_000));
    connections.stopWatching();
    await retentionStopped;
    // Reads recorded in open meta-audit windows are written before the writer closes.
    await metaAudit.flush();
    unregisterPublisher(dataSource, pubsub);
    stopWatching?.();
    await indexer?.stop();
    if (ws) await ws.close();
    if (server) {
      server.closeAllConnections();
      await closed;
    }
    stopAnnouncing();
    quotas.close();
    await relayed?.close();
    await redis?.close();
    await store.close();
  };

  return {
    yoga,
    store,
    pubsub,
    checkpointKey,
    async start({ port = 4000, host = '0.0.0.0', server: own } = {}) {
      // Shared rates and live entries need Redis: wait for it a moment before taking requests (without it
      // the instance still serves, counting rates on its own, and /ready says so).
      if (redis && !(await redis.connected(5000))) logger.warn('Redis (REDIS_URL) does not answer yet; serving without it until it does');
      // Request bodies are limited by yoga itself (maxRequestBodySize), chunked ones included.
      server = own ?? createServer(connections.handle(yoga));
      ws = attachWebSocketServer(server, yoga, auth, limits, (info) => buildContext(serverDeps, info), logger);
      connections.watch(ws.wsServer);
      // Revocations made by another process (the CLI, another instance) reach this one's streams within a second.
      stopWatching = watchRevocations(dataSource, REVOCATION_CHECK_MS);
      indexer = startSearchIndexer(dataSource, store, { onError: (err) => logger.error({ err }, 'search indexer') });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, host, () => resolve());
      });
      const interval = evidence.checkpointIntervalMs ?? 3_600_000;
      if (interval > 0 && !stopCheckpoints) {
        // Logged so that an operator (and a log shipper) can see the schedule work and copy checkpoints away.
        stopCheckpoints = scheduleCheckpoints(dataSource, checkpointKey, interval, logger, (checkpoint) =>
          logger.info({ tenant: checkpoint.tenant, sequence: checkpoint.sequence, hash: checkpoint.hash, keyId: checkpoint.keyId }, 'checkpoint written'),
        );
      }
      retention.every(options.retention?.intervalMs ?? 3_600_000);
      const address = server.address() as AddressInfo;
      const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
      return { url: `http://${shownHost}:${address.port}${yoga.graphqlEndpoint}`, port: address.port };
    },
    async indexSearch() {
      await indexer?.flush();
    },
    purgeExpired(purgeOptions = {}) {
      return retention.run({ author: RETENTION_AUTHOR, operation: 'purgeExpired', ...purgeOptions });
    },
    stop({ timeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS } = {}) {
      stopping ??= drainAndClose(timeoutMs);
      return stopping;
    },
  };
}
