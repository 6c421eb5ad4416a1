import { Semaphore } from 'async-mutex';
import type { Limits } from '../config.js';

export interface ReplaySlots {
  /**
   * Waits (first come, first served) until the principal and the server each have a replay slot free; the
   * returned function gives both back and is safe to call twice. An aborted `signal` stops the wait.
   */
  acquire(principalKey: string, signal: AbortSignal): Promise<() => void>;
  /** Replays running now. */
  readonly running: number;
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Waits for one unit of `semaphore`, unless `signal` aborts first; a unit granted after that is handed back at once. */
async function take(semaphore: Semaphore, signal: AbortSignal): Promise<() => void> {
  const granted = semaphore.acquire();
  try {
    const [, release] = await Promise.race([granted, aborted(signal)]);
    return release;
  } catch (error) {
    void granted.then(([, release]) => release());
    throw error;
  }
}

/**
 * Caps concurrent replays (the catch-up part of `auditLogAdded(after:)`), per principal and per server: a
 * replay reads pages of stored entries and holds one while its subscriber's socket drains, so the number
 * running at once bounds the memory replays can take. The principal's slot is taken first, so one
 * principal's queue never holds server slots it cannot use.
 */
export function createReplaySlots(limits: Pick<Limits, 'replaysPerPrincipal' | 'maxConcurrentReplays'>): ReplaySlots {
  const server = new Semaphore(limits.maxConcurrentReplays);
  const principals = new Map<string, { semaphore: Semaphore; users: number }>();
  let running = 0;
  return {
    async acquire(principalKey, signal) {
      let entry = principals.get(principalKey);
      if (!entry) {
        entry = { semaphore: new Semaphore(limits.replaysPerPrincipal), users: 0 };
        principals.set(principalKey, entry);
      }
      entry.users++;
      const forget = () => {
        if (--entry.users === 0) principals.delete(principalKey);
      };
      let releaseOwn: () => void;
      try {
        releaseOwn = await take(entry.semaphore, signal);
      } catch (error) {
        forget();
        throw error;
      }
      let releaseServer: () => void;
      try {
        releaseServer = await take(server, signal);
      } catch (error) {
        releaseOwn();
        forget();
        throw error;
      }
      running++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        running--;
        releaseServer();
        releaseOwn();
        forget();
      };
    },
    get running() {
      return running;
    },
  };
}
