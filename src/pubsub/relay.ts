import { AuditLog } from '../db/entities/audit-log.entity.js';
import { precedingPosition, setPrecedingPosition, type LogPoint } from '../db/tenant-order.js';
import type { AuditPubSub, LiveFeed } from '../pubsub.js';

/** Committed entries as they travel between instances: each with the position it follows in its tenant's log. */
export interface RelayMessage {
  /** The instance that committed them (it delivered them itself already). */
  from: string;
  entries: Array<{ entry: Record<string, unknown>; after?: [number, number] | null }>;
}

/** How instances tell each other about commits (Redis pub/sub: at most once, see redis.ts). */
export interface RelayTransport {
  send(message: RelayMessage): void;
  /** Messages from other instances. */
  onMessage(listener: (message: RelayMessage) => void): void;
  /** After a break in the transport: messages may have been lost, every tenant followed here must be checked. */
  onResync(listener: () => void): void;
  close(): Promise<void>;
}

export interface RelayOptions {
  /** Delivers to this process's subscribers (bounded queues, the ordered outbox). */
  local: AuditPubSub;
  transport?: RelayTransport;
  /** A tenant's committed entries after `after` (null: from the start), oldest first. */
  readAfter(tenantId: string, after: LogPoint | null, limit: number): Promise<AuditLog[]>;
  /** A tenant's newest committed position, or null for an empty log. */
  head(tenantId: string): Promise<LogPoint | null>;
  /**
   * How often each followed tenant's log is compared with what was delivered, to catch commits nobody
   * announced (an app process writing entries without a relay, a CLI). @default 2000
   */
  checkIntervalMs?: number;
  /** Called when a database read fails (the relay tries again at the next message or check). */
  onError?(error: unknown): void;
  /** This instance's name on the transport. */
  instanceId: string;
}

const PAGE = 500;

function positionOf(entry: AuditLog): LogPoint {
  return { createdAt: entry.createdAt.getTime(), id: entry.id };
}
function compare(a: LogPoint, b: LogPoint): number {
  return a.createdAt - b.createdAt || a.id - b.id;
}
function same(a: LogPoint | null | undefined, b: LogPoint | null): boolean {
  if (a === undefined) return false;
  if (a === null || b === null) return a === b;
  return compare(a, b) === 0;
}

/** Entries arrive as objects in-process and as JSON from other instances. */
function fromWire(wire: Record<string, unknown>, after: [number, number] | null | undefined): AuditLog {
  const entry = Object.assign(new AuditLog(), wire, { createdAt: new Date(wire.createdAt as string) });
  if (after !== undefined) setPrecedingPosition(entry, after === null ? null : { createdAt: after[0], id: after[1] });
  return entry;
}

/**
 * One tenant's log as this instance delivers it: everything after `last`, in commit order, once.
 *
 * Entries come from this instance's own commits and from other instances, in whatever order their
 * messages arrive. Each knows the position it follows (written under the tenant's lock, see
 * db/tenant-order.ts): when that is exactly the last one delivered, it is the next one and goes out at
 * once; otherwise something came between (another instance's commit whose message is still on its way,
 * or was lost), and the tenant's log is read from the database after `last` instead, which returns every
 * committed entry in order. Entries at or before `last` are duplicates and dropped.
 */
class TenantLog {
  last: LogPoint | null | undefined;
  private readonly inbox: AuditLog[] = [];
  private catchUpWanted = false;
  private running: Promise<void> | undefined;
  readonly ready: Promise<void>;
  subscribers = 0;

  constructor(
    private readonly tenantId: string,
    private readonly options: RelayOptions,
  ) {
    // Where this instance starts following: the newest committed entry right now. A subscription waits for
    // it before it replays, so that its replay reaches at least this far (no gap between the two).
    this.ready = this.run();
  }

  receive(entries: AuditLog[]): void {
    this.inbox.push(...entries);
    void this.run();
  }

  catchUp(): void {
    this.catchUpWanted = true;
    void this.run();
  }

  private run(): Promise<void> {
    if (!this.running) {
      this.running = this.drain()
        .catch((error: unknown) => {
          // Try again with the next message or check; nothing is lost (`last` only moves past delivered entries).
          this.catchUpWanted = true;
          this.options.onError?.(error);
        })
        .finally(() => {
          this.running = undefined;
        });
    }
    return this.running;
  }

  private async drain(): Promise<void> {
    if (this.last === undefined) this.last = await this.options.head(this.tenantId);
    for (;;) {
      if (this.catchUpWanted) {
        this.catchUpWanted = false;
        await this.readFromDatabase();
        continue;
      }
      const entry = this.inbox.shift();
      if (!entry) return;
      if (this.last !== null && compare(positionOf(entry), this.last) <= 0) continue;
      if (same(precedingPosition(entry), this.last)) {
        this.deliver(entry);
      } else {
        this.inbox.unshift(entry);
        await this.readFromDatabase();
      }
    }
  }

  private async readFromDatabase(): Promise<void> {
    for (;;) {
      // A long gap (Redis away for an hour) is read page by page as the outbox hands entries on, not all
      // at once into memory: subscribers that cannot keep up are closed with SLOW_CONSUMER meanwhile and
      // resume through their own replay.
      while ((this.options.local.backlog ?? 0) > 2 * PAGE) await new Promise((resolve) => setTimeout(resolve, 5));
      const page = await this.options.readAfter(this.tenantId, this.last ?? null, PAGE);
      for (const entry of page) this.deliver(entry);
      if (page.length < PAGE) return;
    }
  }

  private deliver(entry: AuditLog): void {
    this.last = positionOf(entry);
    this.options.local.publish(entry);
  }
}

/**
 * The pub/sub of a server whose commits do not happen one at a time in one process: PostgreSQL (several
 * connections commit concurrently, so commits can be announced out of order), and any database shared by
 * several instances through a transport (Redis). Subscribers see each tenant's entries in commit order,
 * without gap or duplicate, whatever the order or loss of announcements: see `TenantLog`.
 */
export function createRelayedPubSub(options: RelayOptions): AuditPubSub & { close(): Promise<void> } {
  const { local, transport } = options;
  const logs = new Map<string, TenantLog>();
  let outgoing: RelayMessage['entries'] = [];

  const receive = (entries: AuditLog[]) => {
    const byTenant = new Map<string, AuditLog[]>();
    for (const entry of entries) byTenant.set(entry.tenantId, [...(byTenant.get(entry.tenantId) ?? []), entry]);
    for (const [tenantId, list] of byTenant) logs.get(tenantId)?.receive(list);
  };

  transport?.onMessage((message) => {
    if (message.from === options.instanceId) return;
    receive(message.entries.map(({ entry, after }) => fromWire(entry, after)));
  });
  transport?.onResync(() => logs.forEach((log) => log.catchUp()));

  const check = setInterval(() => logs.forEach((log) => log.catchUp()), options.checkIntervalMs ?? 2000);
  check.unref();

  const flush = () => {
    const entries = outgoing;
    outgoing = [];
    if (entries.length > 0) transport?.send({ from: options.instanceId, entries });
  };

  return {
    publish(entry) {
      if (transport) {
        if (outgoing.length === 0) setImmediate(flush);
        const after = precedingPosition(entry);
        outgoing.push({ entry: { ...entry }, after: after === undefined ? undefined : after === null ? null : [after.createdAt, after.id] });
      }
      receive([entry]);
    },
    subscribe(subscription) {
      const tenantId = subscription.tenantId;
      const feed = local.subscribe(subscription);
      if (tenantId === undefined) return feed;
      let log = logs.get(tenantId);
      if (!log) {
        log = new TenantLog(tenantId, options);
        logs.set(tenantId, log);
      }
      log.subscribers++;
      const following = log;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        if (--following.subscribers === 0 && logs.get(tenantId) === following) logs.delete(tenantId);
      };
      const wrapped: LiveFeed = {
        ready: following.ready,
        next: () =>
          feed.next().then(
            (result) => {
              if (result.done) release();
              return result;
            },
            (error: unknown) => {
              release();
              throw error;
            },
          ),
        return: () => {
          release();
          return feed.return();
        },
        peek: () => feed.peek(),
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      return wrapped;
    },
    get subscriberCount() {
      return local.subscriberCount;
    },
    get backlog() {
      return local.backlog;
    },
    watchSubscribers: (listener) => local.watchSubscribers(listener),
    async close() {
      clearInterval(check);
      await transport?.close();
    },
  };
}
