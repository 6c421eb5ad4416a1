import { setMaxListeners } from 'node:events';
import { AuditLog } from './db/entities/audit-log.entity.js';

/**
 * The one pub/sub of the server, with one topic. It sits on an `EventTarget` so that a Redis-backed
 * target can fan entries out across instances without changing publisher or subscribers.
 *
 * It does not use graphql-yoga's `createPubSub`: that one queues without bound and throws an uncaught
 * error (killing the process) once 1,024 events wait for one subscriber. Here every subscriber has a
 * bounded queue; one that overflows is ended with `SlowConsumerError` after what it already has, and
 * nobody else is affected.
 */
export const AUDIT_LOG_ADDED = 'auditLogAdded';

export class SlowConsumerError extends Error {
  /** `what` says which bound was passed: "1000 entries" or "16777216 bytes". */
  constructor(readonly limit: number, readonly what = `${limit} entries`) {
    super(`subscriber fell more than ${what} behind`);
  }
}

const sizes = new WeakMap<AuditLog, number>();

/**
 * About how many bytes an entry holds: its JSON values' serialised length plus a fixed allowance for the small
 * columns. Computed once per entry (the same object reaches every in-process subscriber).
 */
export function entrySize(entry: AuditLog): number {
  let size = sizes.get(entry);
  if (size === undefined) {
    size = 1024;
    for (const value of [entry.data, entry.previousData, entry.meta]) if (value != null) size += JSON.stringify(value).length;
    sizes.set(entry, size);
  }
  return size;
}

/** Publishes committed entries and hands them to live subscribers. */
export interface AuditPubSub {
  publish(entry: AuditLog): void;
  /**
   * `limit` entries and `maxBytes` (by `entrySize`) may wait for the subscriber; past either it is ended.
   * `tenantId`: the one tenant whose entries `accept` can take; a relayed pub/sub follows only tenants
   * someone subscribed to.
   */
  subscribe(options: { limit: number; maxBytes?: number; accept?: (entry: AuditLog) => boolean; tenantId?: string }): LiveFeed;
  /** Live subscriptions right now. */
  readonly subscriberCount: number;
  /** Entries published but not yet handed to subscribers (the ordered outbox). */
  readonly backlog?: number;
  /** Calls `listener` with the new count whenever a subscriber comes or goes; returns the unsubscribe. */
  watchSubscribers(listener: (count: number) => void): () => void;
}

/** An async iterator over newly committed entries. `return()` detaches it. */
export interface LiveFeed extends AsyncIterableIterator<AuditLog> {
  return(): Promise<IteratorResult<AuditLog>>;
  /** The oldest entry waiting for this subscriber, if any. */
  peek(): AuditLog | undefined;
  /**
   * Resolves once the feed knows where it starts (a relayed feed reads its tenant's newest position):
   * a replay that runs after it reaches at least that far, so replay and feed leave no gap.
   */
  readonly ready?: Promise<void>;
}

/** Entries arrive as objects in-process and as JSON through a remote event target. */
function toEntry(detail: unknown): AuditLog {
  if (detail instanceof AuditLog) return detail;
  const wire = detail as AuditLog & { createdAt: string | number | Date };
  return Object.assign(new AuditLog(), wire, { createdAt: new Date(wire.createdAt) });
}

class BoundedFeed implements LiveFeed {
  private readonly buffer: AuditLog[] = [];
  private bytes = 0;
  private overflow: SlowConsumerError | undefined;
  private waiting: ((result: IteratorResult<AuditLog>) => void) | undefined;
  private failWaiting: ((error: Error) => void) | undefined;
  private overflowed = false;
  private done = false;

  /** Entries waiting for this subscriber. */
  get backlog(): number {
    return this.buffer.length;
  }

  peek(): AuditLog | undefined {
    return this.buffer[0];
  }

  constructor(
    private readonly target: EventTarget,
    private readonly limit: number,
    private readonly maxBytes: number,
    private readonly accept: (entry: AuditLog) => boolean,
    private readonly onDetach: () => void,
  ) {
    target.addEventListener(AUDIT_LOG_ADDED, this.onEvent);
  }

  private readonly onEvent = (event: Event): void => {
    if (this.done || this.overflowed) return;
    const entry = toEntry((event as CustomEvent).detail);
    if (!this.accept(entry)) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failWaiting = undefined;
      resolve({ value: entry, done: false });
    } else if (this.buffer.length >= this.limit || (this.buffer.length > 0 && this.bytes + entrySize(entry) > this.maxBytes)) {
      // Entries are shared between subscribers, but one that stops reading keeps its own window of them alive.
      this.overflow = this.buffer.length >= this.limit ? new SlowConsumerError(this.limit) : new SlowConsumerError(this.limit, `${this.maxBytes} bytes`);
      this.overflowed = true;
      this.detach();
    } else {
      this.buffer.push(entry);
      this.bytes += entrySize(entry);
    }
  };

  private detach(): void {
    this.target.removeEventListener(AUDIT_LOG_ADDED, this.onEvent);
    this.onDetach();
  }

  next(): Promise<IteratorResult<AuditLog>> {
    const entry = this.buffer.shift();
    if (entry) {
      this.bytes -= entrySize(entry);
      return Promise.resolve({ value: entry, done: false });
    }
    if (this.overflowed && !this.done) {
      this.done = true;
      return Promise.reject(this.overflow ?? new SlowConsumerError(this.limit));
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<AuditLog>> {
    if (!this.done) {
      this.done = true;
      this.buffer.length = 0;
      this.bytes = 0;
      if (!this.overflowed) this.detach();
      this.waiting?.({ value: undefined, done: true });
      this.waiting = this.failWaiting = undefined;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Entries dispatched per turn of the event loop; between turns, subscribers' sockets drain. */
const DISPATCH_CHUNK = 32;
/** Longest the outbox waits for most subscribers to catch up before handing on the next chunk anyway. */
const MAX_DISPATCH_WAIT_MS = 50;

/**
 * The live-entry pub/sub: one ordered outbox, a bounded queue per subscriber. Pass a shared EventTarget
 * (e.g. graphql-yoga's Redis event target) to fan entries out across instances.
 */
export function createAuditPubSub(target: EventTarget = new EventTarget()): AuditPubSub {
  // One listener per live subscriber is the design, not a leak: lift Node's warning threshold of 10.
  setMaxListeners(0, target);
  const feeds = new Set<BoundedFeed>();
  const watchers = new Set<(count: number) => void>();
  const changed = () => watchers.forEach((watcher) => watcher(feeds.size));
  // One ordered outbox holds a burst once, centrally. It hands entries on in chunks, and only while most
  // subscribers have caught up: when the server itself is the bottleneck, everyone waits here together;
  // a subscriber's own queue grows only when *it* is slower than the rest, and only then is it closed.
  const outbox: AuditLog[] = [];
  let draining = false;
  let waitingSince = 0;
  const mostAreBehind = () => {
    if (feeds.size === 0) return false;
    const backlogs = [...feeds].map((feed) => feed.backlog).sort((a, b) => a - b);
    return backlogs[(backlogs.length - 1) >> 1]! >= DISPATCH_CHUNK;
  };
  const drain = () => {
    // Waiting is bounded, so that subscribers who are all slow still end up closed instead of stalling the outbox.
    if (mostAreBehind() && (waitingSince === 0 || Date.now() - waitingSince < MAX_DISPATCH_WAIT_MS)) {
      if (waitingSince === 0) waitingSince = Date.now();
      setTimeout(drain, 1);
      return;
    }
    waitingSince = 0;
    for (const entry of outbox.splice(0, DISPATCH_CHUNK)) target.dispatchEvent(new CustomEvent(AUDIT_LOG_ADDED, { detail: entry }));
    if (outbox.length > 0) setImmediate(drain);
    else draining = false;
  };
  return {
    publish(entry) {
      outbox.push(entry);
      if (!draining) {
        draining = true;
        setImmediate(drain);
      }
    },
    subscribe({ limit, maxBytes = Infinity, accept = () => true }) {
      const feed: BoundedFeed = new BoundedFeed(target, limit, maxBytes, accept, () => {
        if (feeds.delete(feed)) changed();
      });
      feeds.add(feed);
      changed();
      return feed;
    },
    get subscriberCount() {
      return feeds.size;
    },
    get backlog() {
      return outbox.length;
    },
    watchSubscribers(listener) {
      watchers.add(listener);
      return () => watchers.delete(listener);
    },
  };
}
