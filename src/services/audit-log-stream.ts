import type { AuditLog } from '../db/entities/audit-log.entity.js';
import { SlowConsumerError, type LiveFeed } from '../pubsub.js';
import type { Caller, ServiceDeps } from './deps.js';
import { matchesAuditLogFilter, type AuditLogFilter } from './audit-log-filter.js';
import { LARGE_FIELDS, newestPosition, replayPage, type LargeField } from './audit-log-replay.js';
import { comparePositions, positionOf, type LogPosition } from './cursor.js';
import { atTime } from '../auth/expiry.js';

/** Most entries one replay page reads; `limits.replayPageBytes` bounds its size. */
const REPLAY_PAGE_ROWS = 500;

/** Yielded once, last, to a subscriber that fell too far behind; the field resolver turns it into an error. */
export class SlowConsumer {
  /** `what`: the bound passed, "1000 entries" or "16777216 bytes". */
  constructor(readonly limit: number, readonly lastDelivered: LogPosition | undefined, readonly what = `${limit} entries`) {}
}

/** Yielded once, last, when the subscriber's credentials expire or are revoked. */
export class CredentialsExpired {
  constructor(readonly reason: 'expired' | 'revoked' = 'expired') {}
}

/** Yielded once, last, when the server shuts down: `resumeAfter` is where a new subscription picks up. */
export class ShuttingDown {
  constructor(readonly resumeAfter: LogPosition) {}
}

export type StreamItem = AuditLog | SlowConsumer | CredentialsExpired | ShuttingDown;

export interface StreamOptions {
  /** When the subscriber's credentials expire (epoch ms); the stream ends then. */
  expiresAt?: number | null;
  /** Aborts when the subscriber's credentials are revoked; the stream ends then. */
  revoked?: AbortSignal;
  /** Called once when the stream ends, however it ends. */
  onEnd?: () => void;
  /** The large fields the subscriber asked for; a replay reads only those. @default all of them */
  fields?: ReadonlySet<LargeField>;
  /** Whose replay slot a replay takes (see `ReplaySlots`). @default the tenant */
  principalKey?: string;
}

/**
 * Every entry that matches `filter` and commits after `after`, then every new one as it commits.
 *
 * The live feed is opened *before* the replay query runs, so an entry committed while the replay is
 * under way is in the feed, the query, or both: never neither. Entries at or before the last replayed
 * position are skipped, so none is delivered twice. Positions grow in commit order, which makes that
 * comparison sufficient.
 *
 * Memory: a replay waits for a replay slot (per principal and per server) before it opens the feed, reads
 * pages bounded by `limits.replayPageBytes`, and asks for the next page only when the transport has taken
 * the last entry of this one (graphql-ws waits for each message to reach the socket; SSE for the response
 * to drain), so a subscriber that does not read holds at most one page.
 *
 * Without `after`, the newest position at the start is read first: it is where the stream resumes (the
 * `after` of SLOW_CONSUMER and SHUTTING_DOWN) if nothing has been delivered yet.
 */
export function streamAuditLogs(deps: ServiceDeps & Caller, filter: AuditLogFilter, after: LogPosition | undefined, options: StreamOptions = {}): AsyncIterableIterator<StreamItem> {
  const reads = deps.reads;
  // Aborted by an unsubscribe, the credentials' expiry or revocation, or the server's shutdown: every wait below stops.
  const stop = new AbortController();
  let reason: 'expired' | 'revoked' | 'shutdown' | undefined;
  let feed: LiveFeed | undefined;
  // A stream without `after` that has delivered nothing yet still ends with a cursor to resume from: the
  // position just before the oldest entry it was still holding, if any (see `resumePoint`).
  let held: AuditLog | undefined;
  const halt = (why?: 'expired' | 'revoked' | 'shutdown') => {
    reason ??= why;
    stop.abort();
    held ??= feed?.peek();
    void feed?.return();
  };
  const cancelTimer = options.expiresAt != null ? atTime(options.expiresAt, () => halt('expired')) : () => undefined;
  const onRevoked = () => halt('revoked');
  if (options.revoked?.aborted) reason = 'revoked';
  else options.revoked?.addEventListener('abort', onRevoked, { once: true });
  const cancelExpiry = () => {
    cancelTimer();
    options.revoked?.removeEventListener('abort', onRevoked);
  };
  const onShutdown = () => halt('shutdown');
  if (deps.closing.aborted) reason = 'shutdown';
  else deps.closing.addEventListener('abort', onShutdown, { once: true });
  let ended = false;
  const end = () => {
    cancelExpiry();
    deps.closing.removeEventListener('abort', onShutdown);
    if (ended) return;
    ended = true;
    options.onEnd?.();
  };
  const fields = options.fields ?? new Set(LARGE_FIELDS);

  let last = after;
  let resumeFrom = after;
  const openFeed = () =>
    deps.pubsub.subscribe({ limit: deps.limits.subscriberQueue, maxBytes: deps.limits.subscriberQueueBytes, accept: (entry) => matchesAuditLogFilter(entry, filter), tenantId: filter.tenantId });
  // Without `after` the stream is live from the moment it is opened: the feed is registered now, before
  // anything is awaited, so an entry committed right after the subscription started is never missed. The
  // newest position (read beside it) is only the resume point should the stream end before delivering.
  // One indexed row: not counted against the caller's reads, so opening many streams at once stays possible.
  const newest = after || reason ? undefined : ((feed = openFeed()), newestPosition(deps, filter.tenantId).catch(() => undefined));
  const resumePoint = (): LogPosition => {
    if (last) return last;
    const before = held && { createdAt: positionOf(held).createdAt, id: positionOf(held).id - 1 };
    if (before && (!resumeFrom || comparePositions(before, resumeFrom) < 0)) return before;
    return resumeFrom ?? { createdAt: 0, id: 0 };
  };

  async function* replay(from: LogPosition): AsyncGenerator<AuditLog> {
    const release = await deps.replays.acquire(options.principalKey ?? filter.tenantId, stop.signal).catch(() => undefined);
    if (!release) return;
    try {
      feed = openFeed();
      // A relayed feed first learns where it starts; the replay then reaches at least that far (no gap).
      await feed.ready;
      for (let more = true, page = { after: from }; more && !stop.signal.aborted; ) {
        const { entries, more: next } = await replayPage(deps, filter, { after: page.after, maxRows: REPLAY_PAGE_ROWS, maxBytes: deps.limits.replayPageBytes, fields }, reads);
        more = next;
        // Handed on one by one and dropped from the page as they go, so a stalled reader holds less and less.
        for (let entry = entries.shift(); entry && !stop.signal.aborted; entry = entries.shift()) {
          page.after = positionOf(entry);
          yield entry;
        }
      }
    } finally {
      release();
    }
  }

  async function* deliver(): AsyncGenerator<StreamItem> {
    if (reason) return;
    if (after) {
      for await (const entry of replay(after)) {
        // Counted before it is handed on: whatever follows it on this stream (a final error) comes after it.
        last = positionOf(entry);
        yield entry;
      }
    } else {
      resumeFrom = await newest;
    }
    const live = (feed ??= openFeed());
    await live.ready;
    while (!stop.signal.aborted) {
      let next: IteratorResult<AuditLog>;
      try {
        next = await live.next();
      } catch (error) {
        if (error instanceof SlowConsumerError) {
          yield new SlowConsumer(error.limit, resumePoint(), error.what);
          return;
        }
        throw error;
      }
      if (next.done || stop.signal.aborted) break;
      const position = positionOf(next.value);
      if (last && comparePositions(position, last) <= 0) continue;
      last = position;
      yield next.value;
    }
  }

  async function* run(): AsyncGenerator<StreamItem> {
    try {
      yield* deliver();
    } finally {
      await feed?.return();
    }
    if (reason === 'expired' || reason === 'revoked') yield new CredentialsExpired(reason);
    else if (reason === 'shutdown') yield new ShuttingDown(resumePoint());
  }

  async function* withEnd(): AsyncGenerator<StreamItem> {
    try {
      yield* run();
    } finally {
      end();
    }
  }
  const stream = withEnd();
  // An async generator cannot be returned while it awaits (the request queues until its next yield),
  // and a quiet feed may never yield again. Stopping first releases every wait (feed, replay slot), so an
  // unsubscribe always detaches the subscriber at once instead of leaking it.
  return {
    next: () => stream.next(),
    return: async () => {
      halt();
      // The quota slot is freed with the feed, not after the generator has wound down: whoever sees the
      // subscriber gone may start another at once.
      end();
      return stream.return(undefined);
    },
    throw: async (error: unknown) => {
      halt();
      end();
      return stream.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
