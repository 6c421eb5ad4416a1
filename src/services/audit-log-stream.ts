import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { SlowConsumerError, type LiveFeed } from '../pubsub.js';
import type { Caller, ServiceDeps } from './deps.js';
import { matchesAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import { entriesAfter } from './audit-log-query.js';
import { comparePositions, positionOf, type LogPosition } from './cursor.js';
import { atTime } from '../auth/expiry.js';
import { ResponseBudget } from './response-budget.js';

/** Entries read per replay step: at most 500, and no more than fit MAX_RESPONSE_BYTES at the largest entry size. */
function replayPageSize(deps: ServiceDeps): number {
  const { limit, largestEntry } = ResponseBudget.forLimits(deps.limits);
  return Math.max(1, Math.min(500, Math.floor(limit / largestEntry)));
}

/** Yielded once, last, to a subscriber that fell too far behind; the field resolver turns it into an error. */
export class SlowConsumer {
  constructor(readonly limit: number, readonly lastDelivered: LogPosition | undefined) {}
}

/** Yielded once, last, when the subscriber's credentials expire or are revoked. */
export class CredentialsExpired {
  constructor(readonly reason: 'expired' | 'revoked' = 'expired') {}
}

export interface StreamOptions {
  /** When the subscriber's credentials expire (epoch ms); the stream ends then. */
  expiresAt?: number | null;
  /** Aborts when the subscriber's credentials are revoked; the stream ends then. */
  revoked?: AbortSignal;
  /** Called once when the stream ends, however it ends. */
  onEnd?: () => void;
}

/**
 * Every entry that matches `filter` and commits after `after`, then every new one as it commits.
 *
 * The live feed is opened *before* the replay query runs, so an entry committed while the replay is
 * under way is in the feed, the query, or both: never neither. Entries at or before the last replayed
 * position are skipped, so none is delivered twice. Positions grow in commit order, which makes that
 * comparison sufficient.
 */
export function streamAuditLogs(
  deps: ServiceDeps & Caller,
  filter: AuditLogFilter,
  after: LogPosition | undefined,
  options: StreamOptions = {},
): AsyncIterableIterator<AuditLog | SlowConsumer | CredentialsExpired> {
  const feed = deps.pubsub.subscribe({ limit: deps.limits.subscriberQueue, accept: (entry) => matchesAuditLogFilter(entry, filter) });
  let expired: CredentialsExpired | undefined;
  const expire = (reason: CredentialsExpired['reason']) => {
    expired ??= new CredentialsExpired(reason);
    void feed.return();
  };
  const cancelTimer = options.expiresAt != null ? atTime(options.expiresAt, () => expire('expired')) : () => undefined;
  const onRevoked = () => expire('revoked');
  if (options.revoked?.aborted) expire('revoked');
  else options.revoked?.addEventListener('abort', onRevoked, { once: true });
  const cancelExpiry = () => {
    cancelTimer();
    options.revoked?.removeEventListener('abort', onRevoked);
  };
  let ended = false;
  const end = () => {
    cancelExpiry();
    if (ended) return;
    ended = true;
    options.onEnd?.();
  };
  const live = replayThenLive(deps, filter, after, feed);
  async function* withEnd(): AsyncGenerator<AuditLog | SlowConsumer | CredentialsExpired> {
    try {
      for await (const item of live) {
        if (expired) break;
        yield item;
      }
      if (expired) yield expired;
    } finally {
      end();
    }
  }
  const stream = withEnd();
  // An async generator cannot be returned while it awaits (the request queues until its next yield),
  // and a quiet feed may never yield again. Ending the feed first releases it, so an unsubscribe always
  // detaches the subscriber at once instead of leaking it.
  return {
    next: () => stream.next(),
    return: async () => {
      await feed.return();
      const result = await stream.return(undefined);
      end();
      return result;
    },
    throw: async (error: unknown) => {
      await feed.return();
      end();
      return stream.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

async function* replayThenLive(deps: ServiceDeps & Caller, filter: AuditLogFilter, after: LogPosition | undefined, feed: LiveFeed): AsyncGenerator<AuditLog | SlowConsumer> {
  let last = after;
  const pageSize = replayPageSize(deps);
  try {
    if (last) {
      for (;;) {
        const page = await entriesAfter(deps, filter, last, pageSize, deps.reads);
        for (const entry of page) {
          yield entry;
          last = positionOf(entry);
        }
        if (page.length < pageSize) break;
      }
    }
    for (;;) {
      let next: IteratorResult<AuditLog>;
      try {
        next = await feed.next();
      } catch (error) {
        if (error instanceof SlowConsumerError) {
          yield new SlowConsumer(error.limit, last);
          return;
        }
        throw error;
      }
      if (next.done) return;
      const position = positionOf(next.value);
      if (last && comparePositions(position, last) <= 0) continue;
      last = position;
      yield next.value;
    }
  } finally {
    await feed.return();
  }
}
