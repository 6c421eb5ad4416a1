import { GraphQLError } from 'graphql';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Limits } from '../config.js';
import { ErrorCode } from '../shared/errors.js';

export interface Quotas {
  /** Counts one write against the principal's rate; throws RATE_LIMITED past it. */
  consumeWrite(principalId: string): Promise<void>;
  /** Reserves a live subscription for the principal; the returned release is safe to call twice. */
  acquireSubscription(principalId: string): Promise<() => void>;
  liveSubscriptions(principalId: string): number;
}

function rateLimited(what: string, result: RateLimiterRes): GraphQLError {
  return new GraphQLError(`Too many ${what}; retry in ${Math.ceil(result.msBeforeNext / 1000)} s`, {
    extensions: { code: ErrorCode.RateLimited, retryAfterMs: result.msBeforeNext },
  });
}

/** Where rates are counted when several instances share them (rate-limiter-flexible's Redis store). */
export interface SharedRateStore {
  /** An ioredis client (best with `enableOfflineQueue: false`). */
  client: unknown;
  prefix: string;
}

/**
 * Per-principal rates (rate-limiter-flexible: in memory, or in Redis shared by every instance, falling back
 * to memory while Redis is away) and caps on live subscriptions (per instance).
 */
export function createQuotas(limits: Pick<Limits, 'writesPerSecond' | 'subscriptionStartsPerMinute' | 'subscriptionsPerPrincipal'>, shared?: SharedRateStore): Quotas {
  const limiter = (points: number, duration: number, name: string): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ points, duration });
    if (!shared) return memory;
    return new RateLimiterRedis({ storeClient: shared.client, keyPrefix: `${shared.prefix}:rate:${name}`, points, duration, insuranceLimiter: memory });
  };
  const writes = limiter(limits.writesPerSecond, 1, 'writes');
  const starts = limiter(limits.subscriptionStartsPerMinute, 60, 'subscriptions');
  const live = new Map<string, number>();
  const consume = async (limiter: RateLimiterAbstract, key: string, what: string) => {
    try {
      await limiter.consume(key);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw rateLimited(what, error);
      throw error;
    }
  };
  return {
    consumeWrite: (principalId) => consume(writes, principalId, 'writes'),
    async acquireSubscription(principalId) {
      const current = live.get(principalId) ?? 0;
      if (current >= limits.subscriptionsPerPrincipal) {
        throw new GraphQLError(`At most ${limits.subscriptionsPerPrincipal} live subscriptions per principal`, { extensions: { code: ErrorCode.SubscriptionLimit } });
      }
      await consume(starts, principalId, 'subscriptions started');
      live.set(principalId, (live.get(principalId) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (live.get(principalId) ?? 1) - 1;
        if (left <= 0) live.delete(principalId);
        else live.set(principalId, left);
      };
    },
    liveSubscriptions: (principalId) => live.get(principalId) ?? 0,
  };
}
