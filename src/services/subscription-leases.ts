import { randomUUID } from 'node:crypto';

/** The commands of an ioredis client the leases use. */
export interface LeaseClient {
  eval(script: string, keys: number, ...args: Array<string | number>): Promise<unknown>;
}

/**
 * A principal's live subscriptions across every instance: a Redis sorted set per principal whose members
 * are this instance's subscriptions and whose scores are the moments their leases end (Redis' own clock,
 * so instances need not agree on the time). Each instance renews its leases while the streams are open; a
 * killed instance's leases lapse, and its slots come back, after `leaseMs`.
 */
export interface SubscriptionLeases {
  /** The lease reserved, or false when the principal holds `limit` already. Rejects when Redis does not answer. */
  acquire(key: string, limit: number): Promise<string | false>;
  release(key: string, member: string): void;
  stop(): void;
}

// Drop lapsed leases, check the count and reserve in one atomic step: two instances racing for the last
// slot cannot both pass.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1`;

// Extends the leases that still exist (XX: a released one is not brought back).
const RENEW = `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', expires, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1`;

const RELEASE = `redis.call('ZREM', KEYS[1], ARGV[1]) return 1`;

export function createSubscriptionLeases(client: LeaseClient, prefix: string, leaseMs: number, onError: (error: unknown) => void): SubscriptionLeases {
  const instance = randomUUID();
  let counter = 0;
  /** key → members held here. */
  const held = new Map<string, Set<string>>();
  const redisKey = (key: string) => `${prefix}:subscriptions:${key}`;
  const renew = setInterval(() => {
    for (const [key, members] of held) {
      client.eval(RENEW, 1, redisKey(key), leaseMs, ...members).catch(onError);
    }
  }, Math.max(50, Math.floor(leaseMs / 3)));
  renew.unref();
  return {
    async acquire(key, limit) {
      const member = `${instance}:${++counter}`;
      const granted = await client.eval(ACQUIRE, 1, redisKey(key), limit, leaseMs, member);
      if (Number(granted) !== 1) return false;
      const members = held.get(key) ?? new Set<string>();
      members.add(member);
      held.set(key, members);
      return member;
    },
    release(key, member) {
      const members = held.get(key);
      if (!members?.delete(member)) return;
      if (members.size === 0) held.delete(key);
      // A release Redis does not hear lapses with its lease.
      client.eval(RELEASE, 1, redisKey(key), member).catch(onError);
    },
    stop() {
      clearInterval(renew);
    },
  };
}
