import { createPrivateKey, type KeyObject } from 'node:crypto';
import { publicKeysFromPem } from './shared/chain/checkpoint.js';

/**
 * Every environment variable the server reads, parsed and validated in one place.
 * A bad value stops the server at start with a message that names the variable.
 */
export type SqliteSynchronous = 'FULL' | 'NORMAL';

export interface Config {
  /** @default 4000 */
  port: number;
  /** @default '0.0.0.0' */
  host: string;
  /** Path of the SQLite file, or `:memory:`; or the PostgreSQL URL. @default './data/auditql.sqlite' */
  database: string;
  /** Which database `database` names. */
  dialect: 'sqlite' | 'postgres';
  /** PostgreSQL connections for writes (reads use READ_WORKERS more). @default 10 */
  poolSize: number;
  /** Redis, for live entries, API-key revocations and rate limits shared across instances. */
  redis?: RedisConfig;
  /** How often live subscribers' logs are checked for commits nobody announced (PostgreSQL, Redis). @default 2000 */
  liveCheckIntervalMs: number;
  /**
   * SQLite `synchronous` level. `FULL` (the default) means an acknowledged entry survives a power loss;
   * `NORMAL` is about 3x faster per write but may lose the last transactions on power loss (never on a crash).
   */
  sqliteSynchronous: SqliteSynchronous;
  limits: Limits;
  auth: AuthConfig;
  store: StorageSettings;
  /** Introspection, field suggestions and GraphiQL are off unless `NODE_ENV=development`. */
  production: boolean;
  /**
   * Origins (`https://app.example.com`) whose browser pages may call the API; `*` for any origin. Empty (the
   * default): no cross-origin access. Credentials are never allowed cross-origin (the API takes headers, not cookies).
   */
  corsOrigins: string[];
  /** How long a shutdown waits for in-flight requests before closing what is left. @default 10000 */
  shutdownTimeoutMs: number;
  evidence: EvidenceConfig;
  retention: RetentionConfig;
}

/** How long entries are kept (README, "Retention"). */
export interface RetentionConfig {
  /** Entries older than this many days are removed; 0 keeps them forever. Tenants may override it. @default 0 */
  days: number;
  /** With it, removed entries are first written here as gzip-compressed NDJSON with their anchoring checkpoints. */
  archiveDir?: string;
  /** How often the server purges expired entries; 0: only on demand (`auditql retention`). @default 3600000 (1 h) */
  intervalMs: number;
}

function previousCheckpointKeys(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let keys: KeyObject[];
  try {
    keys = publicKeysFromPem(raw);
  } catch (error) {
    throw new ConfigError(`CHECKPOINT_PREVIOUS_KEYS: ${(error as Error).message}`);
  }
  if (keys.length === 0) throw new ConfigError('CHECKPOINT_PREVIOUS_KEYS must hold one or more Ed25519 keys in PEM form (-----BEGIN PUBLIC KEY-----…)');
  return raw.replace(/\\n/g, '\n');
}

export type MetaAuditMode = 'all' | 'changes' | 'off';

/** The chain, checkpoints and the audit log's own audit trail (README, "Evidence"). */
export interface EvidenceConfig {
  /** Ed25519 private key (PEM) that signs checkpoints; generated into the database's folder when absent. */
  checkpointPrivateKey?: string;
  /** PEM text of the keys that signed checkpoints before (after the key was replaced): their checkpoints stay trusted. */
  checkpointPreviousKeys?: string;
  /** How often a checkpoint is written for each tenant whose chain moved; 0: never on a schedule. @default 3600000 (1 h) */
  checkpointIntervalMs: number;
  /** @default 'all' */
  metaAudit: MetaAuditMode;
  /** Identical reads by one principal within this window become one entry. @default 60000 */
  metaAuditWindowMs: number;
  /** Field-name rules for personal values inside data, previousData and meta; undefined: the defaults. */
  personalFields?: Array<string | RegExp>;
}

export interface RedisConfig {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` */
  url: string;
  /** Prefix of every channel and key, so that several deployments can share one Redis. @default 'auditql' */
  prefix: string;
}

/** JWT verification; with neither a secret nor a JWKS URL the server accepts API keys only. */
export interface AuthConfig {
  jwtSecret?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  /** @default 'tenant' */
  tenantClaim: string;
  /**
   * The tenant of tokens whose tenant claim is missing, empty or not a string. Unset (the default), such a
   * token is refused: a token that names no tenant must not fall into someone else's.
   */
  defaultTenant?: string;
  /** Longest a JWT may be valid, `exp - iat` (or `exp - now` without `iat`), in seconds. @default 86400 */
  maxTokenLifetimeSeconds?: number;
  /**
   * `false` accepts tokens without `exp`; they then expire MAX_TOKEN_LIFETIME after their `iat` (and never
   * without one). @default true
   */
  requireExp?: boolean;
}

export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;

export interface Limits {
  /** Largest serialised `data`, `previousData` or `meta` of one entry, in bytes. @default 65536 */
  maxJsonBytes: number;
  /** Deepest nesting accepted inside those JSON values. @default 32 */
  maxJsonDepth: number;
  /** Entries that may wait for one live subscriber before it is closed as too slow. @default 1000 */
  subscriberQueue: number;
  /** Bytes of entries (their JSON values, plus 1 KB each) that may wait for one live subscriber. @default 16777216 */
  subscriberQueueBytes: number;
  /** Most buckets one activity chart may return. @default 1000 */
  maxChartBuckets: number;
  /** Largest request body accepted over HTTP. @default 1048576 */
  maxBodyBytes: number;
  /** Most keys in one JSON value (data, previousData, meta), counted at every level. @default 2000 */
  maxJsonKeys: number;
  /** Live subscriptions one WebSocket connection may hold. @default 20 */
  subscriptionsPerConnection: number;
  /** Live subscriptions one principal may hold across all connections (and, with Redis, all instances). @default 100 */
  subscriptionsPerPrincipal: number;
  /**
   * With Redis: how long the subscriptions of an instance that stopped (killed, cut off) keep counting
   * against their principals. Open streams renew theirs every third of it. @default 30000
   */
  subscriptionLeaseMs: number;
  /** Writes (logEvent) one principal may make per second. @default 500 */
  writesPerSecond: number;
  /** Subscriptions one principal may start per minute. @default 120 */
  subscriptionStartsPerMinute: number;
  /** Most cost points one operation may use (see the cost model in src/schema/cost.ts). @default 1000 */
  maxQueryCost: number;
  /** Most bytes of entries one response may carry; a longer list is cut with RESPONSE_TOO_LARGE. @default 16 MiB */
  maxResponseBytes: number;
  /** Bytes one tenant may write through logEvent per hour; `0`: no limit. @default 1 GiB */
  tenantWriteBytesPerHour: number;
  /** Longest lifetime of a new API key, in seconds; keys created without `expiresAt` get it. `0`: keys may live forever. @default 0 */
  apiKeyMaxTtlSeconds: number;
  /**
   * Bytes of unsent data a live stream (WebSocket or SSE) may have queued on the server; past it the
   * connection is closed as a slow consumer. @default 4194304
   */
  maxBufferedBytes: number;
  /** Longest a live stream's oldest unsent message may wait; past it the connection is closed. @default 30000 */
  sendTimeoutMs: number;
  /** Stored bytes (data, previousData, meta and the rest) one replay page may read; a page holds at least one entry. @default 1048576 */
  replayPageBytes: number;
  /** Resumed subscriptions (`after:`) one principal may replay at once; more wait their turn. @default 2 */
  replaysPerPrincipal: number;
  /** Replays the whole server runs at once; more wait their turn. @default 16 */
  maxConcurrentReplays: number;
}

/** How the server runs statements (see src/db/store.ts). */
export interface StorageSettings {
  /** Reader threads, each with a read-only connection. @default 2 */
  readWorkers: number;
  /** Longest one read may take, queueing included, before it is cancelled (QUERY_TIMEOUT). @default 5000 */
  readTimeoutMs: number;
  /**
   * Reads of one principal running at once; its other reads wait (up to 16, then RATE_LIMITED). Below
   * `readWorkers`, so that one credential never holds every reader. @default readWorkers - 1 (at least 1)
   */
  readsPerPrincipal: number;
  /** Longest a write waits for a lock another connection or process holds (then STORAGE_UNAVAILABLE). @default 10000 */
  lockWaitMs: number;
}

export const defaultStorage: StorageSettings = { readWorkers: 2, readTimeoutMs: 5000, readsPerPrincipal: 1, lockWaitMs: 10_000 };

export const defaultLimits: Limits = {
  maxJsonBytes: 64 * 1024,
  maxJsonDepth: 32,
  subscriberQueue: 1000,
  subscriberQueueBytes: 16 * 1024 * 1024,
  maxChartBuckets: 1000,
  maxBodyBytes: 1024 * 1024,
  maxJsonKeys: 2000,
  subscriptionsPerConnection: 20,
  subscriptionsPerPrincipal: 100,
  subscriptionLeaseMs: 30_000,
  writesPerSecond: 500,
  subscriptionStartsPerMinute: 120,
  maxQueryCost: 1000,
  maxResponseBytes: 16 * 1024 * 1024,
  tenantWriteBytesPerHour: 1024 * 1024 * 1024,
  apiKeyMaxTtlSeconds: 0,
  maxBufferedBytes: 4 * 1024 * 1024,
  sendTimeoutMs: 30_000,
  replayPageBytes: 1024 * 1024,
  replaysPerPrincipal: 2,
  maxConcurrentReplays: 16,
};

export class ConfigError extends Error {}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `1h`, `500ms`, `1d`, or a plain number of seconds. */
export function parseDuration(env: NodeJS.ProcessEnv, name: string, fallbackMs: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallbackMs;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(raw);
  const value = match ? Number(match[1]) * UNITS[match[2] ?? 's']! : NaN;
  if (!Number.isFinite(value) || value > 365 * UNITS.d!) throw new ConfigError(`${name} must be a duration such as 30s, 15m or 1h (a plain number is seconds), got "${raw}"`);
  return Math.round(value);
}

/** `email, phone, /^addr/i`: names (matched by name part) and /RegExps/; `none` for no rules beyond the fixed ones. */
export function parsePersonalFields(raw: string | undefined): Array<string | RegExp> | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  if (raw.trim().toLowerCase() === 'none') return [];
  return raw
    .split(',')
    .map((rule) => rule.trim())
    .filter(Boolean)
    .map((rule) => {
      const regexp = /^\/(.+)\/([a-z]*)$/.exec(rule);
      if (!regexp) return rule;
      try {
        return new RegExp(regexp[1]!, regexp[2]);
      } catch {
        throw new ConfigError(`PERSONAL_FIELDS: ${rule} is not a valid regular expression`);
      }
    });
}

function checkpointKey(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const pem = raw.includes('-----BEGIN') ? raw.replace(/\\n/g, '\n') : undefined;
  if (!pem) throw new ConfigError('CHECKPOINT_PRIVATE_KEY must be an Ed25519 private key in PEM form (-----BEGIN PRIVATE KEY-----…)');
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    throw new ConfigError('CHECKPOINT_PRIVATE_KEY is not a readable PEM private key');
  }
  if (type !== 'ed25519') throw new ConfigError(`CHECKPOINT_PRIVATE_KEY must be an Ed25519 key, got ${type}`);
  return pem;
}

function tenant(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  if (raw.length > 128) throw new ConfigError(`${name} takes at most 128 characters`);
  return raw;
}

/** `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:`, a plain file path, or `postgres://…` / `postgresql://…`. */
export function parseDatabaseUrl(url: string): { database: string; dialect: 'sqlite' | 'postgres' } {
  if (url === 'sqlite::memory:' || url === ':memory:') return { database: ':memory:', dialect: 'sqlite' };
  const match = /^sqlite:(?:\/\/)?(.+)$/.exec(url);
  if (match?.[1]) return { database: match[1], dialect: 'sqlite' };
  if (/^postgres(ql)?:\/\//i.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new ConfigError('DATABASE_URL: not a valid postgres:// URL');
    }
    return { database: url, dialect: 'postgres' };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ConfigError(`DATABASE_URL: SQLite (sqlite:PATH, sqlite::memory:) or PostgreSQL (postgres://…) are supported, got "${url.split(':')[0]}:"`);
  }
  return { database: url, dialect: 'sqlite' };
}

function parseRedis(env: NodeJS.ProcessEnv): RedisConfig | undefined {
  const url = env.REDIS_URL;
  if (!url) return undefined;
  if (!/^rediss?:\/\//i.test(url)) throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  const prefix = env.REDIS_PREFIX || 'auditql';
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(prefix)) throw new ConfigError('REDIS_PREFIX takes 1 to 64 letters, digits, ":", "_", "." or "-"');
  return { url, prefix };
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/**
 * `CORS_ORIGINS`: comma-separated origins, each scheme://host[:port] exactly as browsers send it, or `*`.
 * `null` is refused: sandboxed frames and local files all send it, so allowing it would allow everyone.
 */
export function parseCorsOrigins(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const origins = raw.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '');
  for (const origin of origins) {
    if (origin === '*') continue;
    if (origin === 'null') throw new ConfigError('CORS_ORIGINS must not contain "null": it would open the API to every sandboxed page and local file');
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError(`CORS_ORIGINS: "${origin}" is not an origin such as https://app.example.com (scheme, host and port only, no trailing slash)`);
    }
  }
  if (origins.includes('*') && origins.length > 1) throw new ConfigError('CORS_ORIGINS: "*" stands alone');
  return origins;
}

function metaAuditMode(raw: string | undefined): MetaAuditMode {
  const mode = (raw ?? 'all').trim().toLowerCase() || 'all';
  if (mode !== 'all' && mode !== 'changes' && mode !== 'off') throw new ConfigError(`META_AUDIT must be all, changes or off, got "${raw}"`);
  return mode;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  if (env.JWT_SECRET && env.JWT_SECRET.length < 32) throw new ConfigError('JWT_SECRET must be at least 32 characters');
  if (env.JWKS_URL && !/^https?:\/\//.test(env.JWKS_URL)) throw new ConfigError('JWKS_URL must be an http(s) URL');
  const synchronous = (env.SQLITE_SYNCHRONOUS ?? 'FULL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') {
    throw new ConfigError(`SQLITE_SYNCHRONOUS must be FULL or NORMAL, got "${env.SQLITE_SYNCHRONOUS}"`);
  }
  const readWorkers = integer(env, 'READ_WORKERS', defaultStorage.readWorkers, 1, 64);
  return {
    port: integer(env, 'PORT', 4000, 0, 65535),
    host: env.HOST || '0.0.0.0',
    ...parseDatabaseUrl(env.DATABASE_URL || 'sqlite:./data/auditql.sqlite'),
    poolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    redis: parseRedis(env),
    liveCheckIntervalMs: integer(env, 'LIVE_CHECK_INTERVAL_MS', 2000, 100, 3_600_000),
    sqliteSynchronous: synchronous,
    limits: {
      maxJsonBytes: integer(env, 'MAX_JSON_BYTES', defaultLimits.maxJsonBytes, 1024, 16 * 1024 * 1024),
      maxJsonDepth: integer(env, 'MAX_JSON_DEPTH', defaultLimits.maxJsonDepth, 1, 256),
      subscriberQueue: integer(env, 'SUBSCRIBER_QUEUE_LIMIT', defaultLimits.subscriberQueue, 1, 1_000_000),
      subscriberQueueBytes: integer(env, 'SUBSCRIBER_QUEUE_BYTES', defaultLimits.subscriberQueueBytes, 64 * 1024, 1024 * 1024 * 1024),
      maxChartBuckets: integer(env, 'MAX_CHART_BUCKETS', defaultLimits.maxChartBuckets, 1, 100_000),
      maxBodyBytes: integer(env, 'MAX_BODY_BYTES', defaultLimits.maxBodyBytes, 1024, 64 * 1024 * 1024),
      maxJsonKeys: integer(env, 'MAX_JSON_KEYS', defaultLimits.maxJsonKeys, 1, 1_000_000),
      subscriptionsPerConnection: integer(env, 'SUBSCRIPTIONS_PER_CONNECTION', defaultLimits.subscriptionsPerConnection, 1, 10_000),
      subscriptionsPerPrincipal: integer(env, 'SUBSCRIPTIONS_PER_PRINCIPAL', defaultLimits.subscriptionsPerPrincipal, 1, 1_000_000),
      subscriptionLeaseMs: Math.max(1000, parseDuration(env, 'SUBSCRIPTION_LEASE', defaultLimits.subscriptionLeaseMs)),
      writesPerSecond: integer(env, 'WRITE_RATE_LIMIT', defaultLimits.writesPerSecond, 1, 1_000_000),
      subscriptionStartsPerMinute: integer(env, 'SUBSCRIBE_RATE_LIMIT', defaultLimits.subscriptionStartsPerMinute, 1, 1_000_000),
      maxQueryCost: integer(env, 'MAX_QUERY_COST', defaultLimits.maxQueryCost, 1, 1_000_000_000),
      maxResponseBytes: integer(env, 'MAX_RESPONSE_BYTES', defaultLimits.maxResponseBytes, 64 * 1024, 1024 * 1024 * 1024),
      tenantWriteBytesPerHour: integer(env, 'TENANT_WRITE_BYTES_PER_HOUR', defaultLimits.tenantWriteBytesPerHour, 0, Number.MAX_SAFE_INTEGER),
      apiKeyMaxTtlSeconds: integer(env, 'API_KEY_MAX_TTL', defaultLimits.apiKeyMaxTtlSeconds, 0, 100 * 366 * 24 * 3600),
      maxBufferedBytes: integer(env, 'WS_MAX_BUFFERED_BYTES', defaultLimits.maxBufferedBytes, 64 * 1024, 1024 * 1024 * 1024),
      sendTimeoutMs: integer(env, 'STREAM_SEND_TIMEOUT_MS', defaultLimits.sendTimeoutMs, 1000, 3_600_000),
      replayPageBytes: integer(env, 'REPLAY_PAGE_BYTES', defaultLimits.replayPageBytes, 16 * 1024, 256 * 1024 * 1024),
      replaysPerPrincipal: integer(env, 'REPLAYS_PER_PRINCIPAL', defaultLimits.replaysPerPrincipal, 1, 10_000),
      maxConcurrentReplays: integer(env, 'MAX_CONCURRENT_REPLAYS', defaultLimits.maxConcurrentReplays, 1, 100_000),
    },
    store: {
      readWorkers,
      readTimeoutMs: integer(env, 'READ_TIMEOUT_MS', defaultStorage.readTimeoutMs, 10, 600_000),
      readsPerPrincipal: integer(env, 'READS_PER_PRINCIPAL', Math.max(1, readWorkers - 1), 1, 1000),
      lockWaitMs: integer(env, 'WRITE_LOCK_TIMEOUT_MS', defaultStorage.lockWaitMs, 0, 600_000),
    },
    auth: {
      jwtSecret: env.JWT_SECRET || undefined,
      jwksUrl: env.JWKS_URL || undefined,
      jwtIssuer: env.JWT_ISSUER || undefined,
      jwtAudience: env.JWT_AUDIENCE || undefined,
      tenantClaim: env.JWT_TENANT_CLAIM || 'tenant',
      defaultTenant: tenant(env, 'DEFAULT_TENANT'),
      maxTokenLifetimeSeconds: integer(env, 'MAX_TOKEN_LIFETIME', DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, 60, 366 * 24 * 3600),
      requireExp: boolean(env, 'JWT_REQUIRE_EXP', true),
    },
    production: env.NODE_ENV !== 'development',
    corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    evidence: {
      checkpointPrivateKey: checkpointKey(env.CHECKPOINT_PRIVATE_KEY),
      checkpointPreviousKeys: previousCheckpointKeys(env.CHECKPOINT_PREVIOUS_KEYS),
      checkpointIntervalMs: parseDuration(env, 'CHECKPOINT_INTERVAL', 3_600_000),
      metaAudit: metaAuditMode(env.META_AUDIT),
      metaAuditWindowMs: parseDuration(env, 'META_AUDIT_WINDOW', 60_000),
      personalFields: parsePersonalFields(env.PERSONAL_FIELDS),
    },
    retention: {
      days: integer(env, 'RETENTION_DAYS', 0, 0, 100 * 366),
      archiveDir: env.RETENTION_ARCHIVE_DIR?.trim() || undefined,
      intervalMs: parseDuration(env, 'RETENTION_INTERVAL', 3_600_000),
    },
  };
}
