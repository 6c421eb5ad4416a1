import { GraphQLError } from 'graphql';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
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

/** Per-principal rates (rate-limiter-flexible, in memory) and caps on live subscriptions. */
export function createQuotas(limits: Pick<Limits, 'writesPerSecond' | 'subscriptionStartsPerMinute' | 'subscriptionsPerPrincipal'>): Quotas {
  const writes = new RateLimiterMemory({ points: limits.writesPerSecond, duration: 1 });
  const starts = new RateLimiterMemory({ points: limits.subscriptionStartsPerMinute, duration: 60 });
  const live = new Map<string, number>();
  const consume = async (limiter: RateLimiterMemory, key: string, what: string) => {
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
