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
  return new AuditLogStream(deps, filter, after, options);
}

/**
 * One subscriber's stream. A class rather than closures around nested generators: a server holds one of
 * these per open subscription, and each closure and each generator function made per stream carried a
 * context, a function object and (for generators) a prototype with a shape of its own (~2 KB per
 * subscription, measured in heap snapshots); methods are shared by every stream.
 */
class AuditLogStream implements AsyncIterableIterator<StreamItem> {
  // Set by an unsubscribe, the credentials' expiry or revocation, or the server's shutdown: every wait stops.
  private stopped = false;
  // Made only by a replay, the one wait (for a replay slot) that needs a signal: a live stream has no
  // AbortController of its own (an EventTarget and two Maps each).
  private replayStop: AbortController | undefined;
  private reason: 'expired' | 'revoked' | 'shutdown' | undefined;
  private feed: LiveFeed | undefined;
  // A stream without `after` that has delivered nothing yet still ends with a cursor to resume from: the
  // position just before the oldest entry it was still holding, if any (see `resumePoint`).
  private held: AuditLog | undefined;
  private last: LogPosition | undefined;
  private resumeFrom: LogPosition | undefined;
  private ended = false;
  private readonly cancelTimer: (() => void) | undefined;
  private readonly newest: Promise<LogPosition | undefined> | undefined;
  private readonly stream: AsyncGenerator<StreamItem>;

  constructor(
    private readonly deps: ServiceDeps & Caller,
    private readonly filter: AuditLogFilter,
    private readonly after: LogPosition | undefined,
    private readonly options: StreamOptions,
  ) {
    this.last = after;
    this.resumeFrom = after;
    this.cancelTimer = options.expiresAt != null ? atTime(options.expiresAt, () => this.halt('expired')) : undefined;
    // The stream itself listens (`handleEvent`): revocation and shutdown need no closure of their own.
    if (options.revoked?.aborted) this.reason = 'revoked';
    else options.revoked?.addEventListener('abort', this, { once: true });
    if (deps.closing.aborted) this.reason = 'shutdown';
    else deps.closing.addEventListener('abort', this, { once: true });
    // Without `after` the stream is live from the moment it is opened: the feed is registered now, before
    // anything is awaited, so an entry committed right after the subscription started is never missed. The
    // newest position (read beside it) is only the resume point should the stream end before delivering.
    // One indexed row: not counted against the caller's reads, so opening many streams at once stays possible.
    if (!after && !this.reason) {
      this.feed = this.openFeed();
      this.newest = newestPosition(deps, filter.tenantId).catch(() => undefined);
    }
    this.stream = this.generate();
  }

  handleEvent(event: Event): void {
    this.halt(event.target === this.deps.closing ? 'shutdown' : 'revoked');
  }

  private halt(why?: 'expired' | 'revoked' | 'shutdown'): void {
    this.reason ??= why;
    this.stopped = true;
    this.replayStop?.abort();
    this.held ??= this.feed?.peek();
    void this.feed?.return();
  }

  private end(): void {
    this.cancelTimer?.();
    this.options.revoked?.removeEventListener('abort', this);
    this.deps.closing.removeEventListener('abort', this);
    if (this.ended) return;
    this.ended = true;
    this.options.onEnd?.();
  }

  private openFeed(): LiveFeed {
    const { deps, filter } = this;
    return deps.pubsub.subscribe({ limit: deps.limits.subscriberQueue, maxBytes: deps.limits.subscriberQueueBytes, accept: (entry) => matchesAuditLogFilter(entry, filter), tenantId: filter.tenantId });
  }

  private resumePoint(): LogPosition {
    if (this.last) return this.last;
    const held = this.held;
    const before = held && { createdAt: positionOf(held).createdAt, id: positionOf(held).id - 1 };
    if (before && (!this.resumeFrom || comparePositions(before, this.resumeFrom) < 0)) return before;
    return this.resumeFrom ?? { createdAt: 0, id: 0 };
  }

  private async *replay(from: LogPosition): AsyncGenerator<AuditLog> {
    const { deps, filter, options } = this;
    const stop = (this.replayStop = new AbortController());
    if (this.stopped) stop.abort();
    const release = await deps.replays.acquire(options.principalKey ?? filter.tenantId, stop.signal).catch(() => undefined);
    if (!release) return;
    try {
      const feed = (this.feed = this.openFeed());
      // A relayed feed first learns where it starts; the replay then reaches at least that far (no gap).
      await feed.ready;
      const fields = options.fields ?? new Set(LARGE_FIELDS);
      for (let more = true, page = { after: from }; more && !this.stopped; ) {
        const { entries, more: next } = await replayPage(deps, filter, { after: page.after, maxRows: REPLAY_PAGE_ROWS, maxBytes: deps.limits.replayPageBytes, fields }, deps.reads);
        more = next;
        // Handed on one by one and dropped from the page as they go, so a stalled reader holds less and less.
        for (let entry = entries.shift(); entry && !this.stopped; entry = entries.shift()) {
          page.after = positionOf(entry);
          yield entry;
        }
      }
    } finally {
      release();
    }
  }

  private async *deliver(): AsyncGenerator<StreamItem> {
    if (this.reason) return;
    if (this.after) {
      for await (const entry of this.replay(this.after)) {
        // Counted before it is handed on: whatever follows it on this stream (a final error) comes after it.
        this.last = positionOf(entry);
        yield entry;
      }
    } else {
      this.resumeFrom = await this.newest;
    }
    const live = (this.feed ??= this.openFeed());
    await live.ready;
    while (!this.stopped) {
      let next: IteratorResult<AuditLog>;
      try {
        next = await live.next();
      } catch (error) {
        if (error instanceof SlowConsumerError) {
          yield new SlowConsumer(error.limit, this.resumePoint(), error.what);
          return;
        }
        throw error;
      }
      if (next.done || this.stopped) break;
      const position = positionOf(next.value);
      if (this.last && comparePositions(position, this.last) <= 0) continue;
      this.last = position;
      yield next.value;
    }
  }

  private async *generate(): AsyncGenerator<StreamItem> {
    try {
      try {
        yield* this.deliver();
      } finally {
        await this.feed?.return();
      }
      if (this.reason === 'expired' || this.reason === 'revoked') yield new CredentialsExpired(this.reason);
      else if (this.reason === 'shutdown') yield new ShuttingDown(this.resumePoint());
    } finally {
      this.end();
    }
  }

  next(): Promise<IteratorResult<StreamItem>> {
    return this.stream.next();
  }

  // An async generator cannot be returned while it awaits (the request queues until its next yield),
  // and a quiet feed may never yield again. Stopping first releases every wait (feed, replay slot), so an
  // unsubscribe always detaches the subscriber at once instead of leaking it.
  async return(): Promise<IteratorResult<StreamItem>> {
    this.halt();
    // The quota slot is freed with the feed, not after the generator has wound down: whoever sees the
    // subscriber gone may start another at once.
    this.end();
    return this.stream.return(undefined);
  }

  async throw(error: unknown): Promise<IteratorResult<StreamItem>> {
    this.halt();
    this.end();
    return this.stream.throw(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
