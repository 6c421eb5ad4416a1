import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { DataSource, type Logger } from 'typeorm';
import WebSocket from 'ws';
import { createAuditServer, type AuditServer, type EvidenceOptions, type RetentionOptions } from '../../src/app.js';
import type { AuditPubSub } from '../../src/pubsub.js';
import type { AuthConfig, Limits } from '../../src/config.js';
import type { StoreOptions } from '../../src/db/store.js';
import { createSqliteDataSource, openDatabase, postgresDataSourceOptions } from '../../src/db/data-source.js';
import { createApiKey } from '../../src/services/api-keys.js';
import { ALL_SCOPES } from '../../src/auth/principal.js';
import type { Logger as ServerLogger } from '../../src/shared/logger.js';
import { SignJWT } from 'jose';

/** The HS256 secret every test app accepts JWTs signed with. */
export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256!';

/**
 * A real signed token. `exp` in seconds from now (negative: already expired; `null`: no exp claim).
 * The tenant claim is `default` unless the claims name one (or set it to `undefined` to leave it out).
 */
export function signToken(
  claims: { sub: unknown; name?: string; scope?: string; tenant?: unknown; [claim: string]: unknown },
  options: { exp?: number | null; iat?: number | null; secret?: string } = {},
) {
  const payload: Record<string, unknown> = { tenant: 'default', ...claims };
  for (const [key, value] of Object.entries(payload)) if (value === undefined) delete payload[key];
  const now = Math.floor(Date.now() / 1000);
  if (options.iat !== null) payload.iat = now + (options.iat ?? 0);
  if (options.exp !== null) payload.exp = now + (options.exp ?? 3600);
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(options.secret ?? TEST_JWT_SECRET));
}

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: { code?: string; [key: string]: unknown } }>;
}

/** Counts the SQL statements the app runs, to prove that resolvers do not issue one query per entry. */
export class StatementCounter implements Logger {
  statements: string[] = [];
  /** The parameters of each statement, by index. */
  parameters: unknown[][] = [];
  logQuery(query: string, parameters?: unknown[]) {
    this.statements.push(query);
    this.parameters.push(parameters ?? []);
  }
  logQueryError() {}
  logQuerySlow() {}
  logSchemaBuild() {}
  logMigration() {}
  log() {}
  reset() {
    this.statements = [];
    this.parameters = [];
  }
  selects() {
    return this.statements.filter((q) => /^\s*(WITH|SELECT)/i.test(q));
  }
}

export interface TestApp {
  url: string;
  wsUrl: string;
  dir: string;
  file: string;
  dataSource: DataSource;
  server: AuditServer;
  sql: StatementCounter;
  /** An API key with every scope, used by `gql` and `wsClient` unless told otherwise. */
  adminKey: string;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<T>>;
  /** A graphql-ws client; `connectionParams` default to the admin key. */
  wsClient(connectionParams?: Record<string, unknown>): Client;
  close(): Promise<void>;
}

/** One place that builds an app on a fresh SQLite file, listening on an ephemeral port, and disposes it. */
export async function startTestApp(
  options: {
    limits?: Partial<Limits>;
    database?: string;
    /** Runs on this PostgreSQL database instead of a SQLite file. */
    postgresUrl?: string;
    production?: boolean;
    store?: Partial<StoreOptions>;
    auth?: Partial<AuthConfig>;
    pubsub?: AuditPubSub;
    evidence?: EvidenceOptions;
    /** Retention on this server; its schedule is off unless a test asks for it. */
    retention?: RetentionOptions;
    /** The server's log; none unless a test asks for it. */
    logger?: ServerLogger;
  } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'auditql-test-'));
  const file = options.database ?? join(dir, 'audit.sqlite');
  const sql = new StatementCounter();
  const dataSource = await openDatabase(
    options.postgresUrl ? new DataSource(postgresDataSourceOptions({ url: options.postgresUrl, logger: sql })) : createSqliteDataSource({ database: file, logger: sql }),
  );
  const { secret: adminKey } = await createApiKey(dataSource, { name: 'test admin', scopes: [...ALL_SCOPES] });
  // The audit of the audit log is off unless a test asks for it: its entries would change the counts
  // other tests check. Scheduled checkpoints likewise.
  const evidence: EvidenceOptions = { checkpointIntervalMs: 0, ...options.evidence, metaAudit: { mode: 'off', ...options.evidence?.metaAudit } };
  const server = createAuditServer({
    dataSource,
    pubsub: options.pubsub,
    limits: options.limits,
    ...(options.logger ? { logger: options.logger } : { logging: false as const }),
    auth: options.auth ?? { jwtSecret: TEST_JWT_SECRET },
    production: options.production ?? false,
    evidence,
    retention: { intervalMs: 0, ...options.retention },
    // Reads run on reader threads, out of TypeORM's sight: count them where they are handed over.
    store: { ownsConnection: true, ...options.store, onRead: (statement) => sql.logQuery(statement.sql, [...statement.params]) },
  });
  const { port } = await server.start({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${port}/graphql`;
  const wsUrl = `ws://127.0.0.1:${port}/graphql`;
  const clients: Client[] = [];
  return {
    url,
    wsUrl,
    dir,
    file,
    dataSource,
    server,
    sql,
    adminKey,
    async gql(query, variables, headers = {}) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${adminKey}`, ...headers },
        body: JSON.stringify({ query, variables }),
      });
      return (await response.json()) as GraphQLResponse<any>;
    },
    wsClient(connectionParams = { authorization: `Bearer ${adminKey}` }) {
      const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams });
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.dispose()));
      await server.stop();
      if (dataSource.isInitialized) await dataSource.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const LOG_EVENT = /* GraphQL */ `
  mutation Log($input: LogEventInput!) {
    logEvent(input: $input) { id cursor resource resourceId action name createdAt transactionId author { id name type } data previousData meta changes { field kind from to } }
  }
`;

export async function logEvents(app: TestApp, inputs: Array<Record<string, unknown>>) {
  const out = [];
  for (const input of inputs) {
    const result = await app.gql(LOG_EVENT, { input });
    if (result.errors) throw new Error(JSON.stringify(result.errors));
    out.push(result.data!.logEvent);
  }
  return out;
}

/** A promise to resolve from outside, so tests wait for events instead of sleeping. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Subscribes over graphql-ws and collects every message until `count` arrive or the stream ends. */
export function collect(client: Client, query: string, variables: Record<string, unknown> = {}, count = Infinity) {
  const received: GraphQLResponse[] = [];
  const done = deferred<{ received: GraphQLResponse[]; error?: unknown }>();
  const reachedCount = deferred<GraphQLResponse[]>();
  const waiters: Array<{ until: (messages: GraphQLResponse[]) => boolean; resolve: () => void }> = [];
  const unsubscribe = client.subscribe(
    { query, variables },
    {
      next: (value) => {
        received.push(value as GraphQLResponse);
        if (received.length >= count) reachedCount.resolve(received);
        for (const waiter of [...waiters]) {
          if (!waiter.until(received)) continue;
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      },
      error: (error) => done.resolve({ received, error }),
      complete: () => done.resolve({ received }),
    },
  );
  /** Resolves once the messages received so far satisfy `until`. */
  const waitFor = (until: (messages: GraphQLResponse[]) => boolean) =>
    new Promise<void>((resolve) => (until(received) ? resolve() : waiters.push({ until, resolve })));
  return { received, done: done.promise, reached: reachedCount.promise, unsubscribe, waitFor };
}

/** Resolves once exactly `n` live subscribers are registered on the server: an event, not a guessed sleep. */
export function untilSubscribed(pubsub: AuditPubSub, n: number): Promise<void> {
  return new Promise((resolve) => {
    if (pubsub.subscriberCount === n) return resolve();
    const stop = pubsub.watchSubscribers((count) => {
      if (count !== n) return;
      stop();
      resolve();
    });
  });
}
