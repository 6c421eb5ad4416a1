import { GraphQLError } from 'graphql';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Limits } from '../config.js';
import type { Principal } from '../auth/principal.js';
import { ErrorCode } from '../shared/errors.js';
import { createSubscriptionLeases, type LeaseClient } from './subscription-leases.js';

/** Whom a quota counts: a principal is only unique within its tenant (two tenants may both have a user "42"). */
export type QuotaSubject = Pick<Principal, 'tenantId' | 'id'>;

export interface Quotas {
  /**
   * Counts one write of `bytes` against the principal's rate and its tenant's hourly byte quota; throws
   * RATE_LIMITED past either.
   */
  /** `entries` writes (one per entry; default 1) of `bytes` in all. */
  consumeWrite(principal: QuotaSubject, bytes: number, entries?: number): Promise<void>;
  /** Reserves a live subscription for the principal; the returned release is safe to call twice. */
  acquireSubscription(principal: QuotaSubject): Promise<() => void>;
  liveSubscriptions(principal: QuotaSubject): number;
  /** Stops renewing shared subscription leases (they lapse on their own). */
  close(): void;
}

function rateLimited(what: string, result: RateLimiterRes): GraphQLError {
  const retryAfter = Math.ceil(result.msBeforeNext / 1000);
  return new GraphQLError(`Too many ${what}; retry in ${retryAfter} s`, {
    extensions: { code: ErrorCode.RateLimited, retryAfter, retryAfterMs: result.msBeforeNext },
  });
}

/** Where rates are counted when several instances share them (rate-limiter-flexible's Redis store). */
export interface SharedRateStore {
  /** An ioredis client (best with `enableOfflineQueue: false`). */
  client: LeaseClient;
  prefix: string;
  /** How long a subscription's reservation outlives an instance that stopped renewing it. @default 30000 */
  subscriptionLeaseMs?: number;
  onError?: (error: unknown) => void;
}

const keyOf = (subject: QuotaSubject) => JSON.stringify([subject.tenantId, subject.id]);

/**
 * Per-principal rates and per-tenant write volume (rate-limiter-flexible: in memory, or in Redis shared by
 * every instance, falling back to memory while Redis is away), and caps on live subscriptions (across
 * instances through leases in Redis when it is given, falling back to this instance's count while it is away).
 */
export function createQuotas(
  limits: Pick<Limits, 'writesPerSecond' | 'subscriptionStartsPerMinute' | 'subscriptionsPerPrincipal'> & Partial<Pick<Limits, 'tenantWriteBytesPerHour'>>,
  shared?: SharedRateStore,
): Quotas {
  const limiter = (points: number, duration: number, name: string): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ points, duration });
    if (!shared) return memory;
    return new RateLimiterRedis({ storeClient: shared.client, keyPrefix: `${shared.prefix}:rate:${name}`, points, duration, insuranceLimiter: memory });
  };
  const writes = limiter(limits.writesPerSecond, 1, 'writes');
  const starts = limiter(limits.subscriptionStartsPerMinute, 60, 'subscriptions');
  const bytesPerHour = limits.tenantWriteBytesPerHour ?? 0;
  const writtenBytes = bytesPerHour > 0 ? limiter(bytesPerHour, 3600, 'tenant-bytes') : null;
  const live = new Map<string, number>();
  const leases = shared ? createSubscriptionLeases(shared.client, shared.prefix, shared.subscriptionLeaseMs ?? 30_000, shared.onError ?? (() => undefined)) : null;
  const overLimit = () =>
    new GraphQLError(`At most ${limits.subscriptionsPerPrincipal} live subscriptions per principal`, { extensions: { code: ErrorCode.SubscriptionLimit } });
  /** A lease in Redis; null when Redis did not answer and this instance's own count decides. */
  const lease = async (key: string): Promise<string | null> => {
    if (!leases) return null;
    let member: string | false;
    try {
      member = await leases.acquire(key, limits.subscriptionsPerPrincipal);
    } catch {
      return null;
    }
    if (member === false) throw overLimit();
    return member;
  };
  const consume = async (limiter: RateLimiterAbstract, key: string, what: string, points = 1) => {
    try {
      await limiter.consume(key, points);
    } catch (error) {
      if (error instanceof RateLimiterRes) throw rateLimited(what, error);
      throw error;
    }
  };
  return {
    async consumeWrite(principal, bytes, entries = 1) {
      await consume(writes, keyOf(principal), 'writes', Math.max(1, entries));
      if (writtenBytes) await consume(writtenBytes, principal.tenantId, 'bytes written by this tenant this hour', Math.max(1, Math.ceil(bytes)));
    },
    async acquireSubscription(principal) {
      const key = keyOf(principal);
      // Check and reserve in one synchronous step: two subscribes racing for the last slot cannot both pass.
      const current = live.get(key) ?? 0;
      if (current >= limits.subscriptionsPerPrincipal) throw overLimit();
      live.set(key, current + 1);
      let released = false;
      let member: string | null = null;
      const release = () => {
        if (released) return;
        released = true;
        if (member !== null) leases?.release(key, member);
        const left = (live.get(key) ?? 1) - 1;
        if (left <= 0) live.delete(key);
        else live.set(key, left);
      };
      try {
        // Across instances: one atomic check-and-reserve in Redis.
        member = await lease(key);
      } catch (error) {
        release();
        throw error;
      }

      try {
        await consume(starts, key, 'subscriptions started');
      } catch (error) {
        release();
        throw error;
      }
      return release;
    },
    liveSubscriptions: (principal) => live.get(keyOf(principal)) ?? 0,
    close: () => leases?.stop(),
  };
}
