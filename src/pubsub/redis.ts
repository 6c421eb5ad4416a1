import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { Redis } from 'ioredis';
import type { RelayMessage, RelayTransport } from './relay.js';

export interface RedisOptions {
  /** `redis://…` or `rediss://…` */
  url: string;
  /** Prefix of every channel and key. @default 'auditql' */
  prefix?: string;
  /** Connection problems (the clients reconnect by themselves). */
  onError?(error: unknown): void;
}

/** What the server shares through Redis. */
export interface RedisLink {
  /** Live entries between instances (see relay.ts). */
  transport: RelayTransport;
  /** The command connection, for rate-limiter-flexible's Redis store. */
  readonly client: Redis;
  readonly prefix: string;
  /** Whether Redis answers within `timeoutMs` (readiness). */
  ping(timeoutMs?: number): Promise<boolean>;
  /** Resolves once the command connection is up (false after `timeoutMs`): publishing does not queue. */
  connected(timeoutMs?: number): Promise<boolean>;
  /** Tells every instance that an API key was revoked (they forget it at once). */
  announceRevocation(keyId: string): void;
  onRevocation(listener: (keyId: string) => void): void;
  close(): Promise<void>;
}

interface Control {
  /** A publisher could not announce some commits: every instance checks its followed tenants. */
  resync?: true;
}

const retryStrategy = (attempt: number) => Math.min(50 * attempt, 2000);

/**
 * Two connections: one subscribed (graphql-yoga's Redis event target over ioredis) and one for commands
 * (publishing, rate limits, pings).
 *
 * Redis pub/sub delivers at most once: a message published while a subscriber is disconnected is gone.
 * So nothing relies on every message arriving: after the subscribed connection comes back (ioredis
 * subscribes again by itself), and after a publish failed, every instance is told to resync, and reads
 * what it missed from the database (relay.ts). Publishing does not queue while Redis is away (no
 * unbounded memory during an outage): it fails at once, and the resync covers it.
 */
export function connectRedis(options: RedisOptions): RedisLink {
  const prefix = options.prefix ?? 'auditql';
  const entriesChannel = `${prefix}:entries`;
  const revokedChannel = `${prefix}:api-key-revoked`;
  const client = new Redis(options.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, connectionName: `${prefix}:commands` });
  const subscriber = new Redis(options.url, { retryStrategy, maxRetriesPerRequest: null, connectionName: `${prefix}:subscriber` });
  const onError = (error: unknown) => options.onError?.(error);
  client.on('error', onError);
  subscriber.on('error', onError);
  const target = createRedisEventTarget({ publishClient: client, subscribeClient: subscriber });

  const messageListeners: Array<(message: RelayMessage) => void> = [];
  const resyncListeners: Array<() => void> = [];
  const revocationListeners: Array<(keyId: string) => void> = [];
  const resync = () => resyncListeners.forEach((listener) => listener());

  target.addEventListener(entriesChannel, (event) => {
    const detail = (event as CustomEvent<RelayMessage & Control>).detail;
    if (detail?.resync) resync();
    else if (detail && Array.isArray(detail.entries)) messageListeners.forEach((listener) => listener(detail));
  });
  target.addEventListener(revokedChannel, (event) => {
    const keyId = (event as CustomEvent<unknown>).detail;
    if (typeof keyId === 'string') revocationListeners.forEach((listener) => listener(keyId));
  });

  // Back after a break: once the channels are subscribed again (a PING answered after ioredis's SUBSCRIBE
  // on the same connection), whatever was published meanwhile is read from the database.
  let connectedBefore = false;
  subscriber.on('ready', () => {
    if (!connectedBefore) {
      connectedBefore = true;
      return;
    }
    subscriber.ping().then(resync, onError);
  });

  // A commit that could not be announced: once Redis takes commands again, everyone resyncs.
  let unannounced = false;
  const publish = (channel: string, detail: unknown) => {
    client.publish(channel, JSON.stringify(detail)).catch((error: unknown) => {
      unannounced = true;
      onError(error);
    });
  };
  client.on('ready', () => {
    if (!unannounced) return;
    unannounced = false;
    publish(entriesChannel, { resync: true } satisfies Control);
  });

  return {
    client,
    prefix,
    transport: {
      send: (message) => publish(entriesChannel, message),
      onMessage: (listener) => messageListeners.push(listener),
      onResync: (listener) => resyncListeners.push(listener),
      close: async () => undefined,
    },
    async ping(timeoutMs = 1000) {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          client.ping().then((answer) => answer === 'PONG'),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), timeoutMs);
          }),
        ]);
      } catch {
        return false;
      } finally {
        clearTimeout(timer);
      }
    },
    connected(timeoutMs = 5000) {
      if (client.status === 'ready') return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          client.off('ready', ready);
          resolve(false);
        }, timeoutMs);
        const ready = () => {
          clearTimeout(timer);
          resolve(true);
        };
        client.once('ready', ready);
      });
    },
    announceRevocation: (keyId) => publish(revokedChannel, keyId),
    onRevocation: (listener) => revocationListeners.push(listener),
    async close() {
      subscriber.disconnect();
      await client.quit().catch(() => client.disconnect());
    },
  };
}
