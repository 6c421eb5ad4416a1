import { ErrorCode, StorageError } from '../shared/errors.js';

/**
 * Caps the reads of one principal: `running` at once (the rest wait their turn), `waiting` queued (past
 * that they are refused at once with RATE_LIMITED). Reads without a principal (the server's own) pass.
 * The reader threads of SQLite have this built in (read-pool.ts); other databases' pools use this.
 */
export class PrincipalGate {
  private readonly active = new Map<string, number>();
  private readonly queued = new Map<string, Array<() => void>>();

  constructor(
    private readonly running: number,
    private readonly waiting: number,
  ) {}

  async run<T>(principal: string | undefined, work: () => Promise<T>): Promise<T> {
    if (principal === undefined) return work();
    if ((this.active.get(principal) ?? 0) >= this.running) {
      const queue = this.queued.get(principal) ?? [];
      if (queue.length >= this.waiting) {
        throw new StorageError(`Too many reads at once from one caller (at most ${this.waiting} waiting); retry shortly`, ErrorCode.RateLimited, { retryAfterMs: 100 });
      }
      this.queued.set(principal, queue);
      await new Promise<void>((resolve) => queue.push(resolve));
    } else {
      this.active.set(principal, (this.active.get(principal) ?? 0) + 1);
    }
    try {
      return await work();
    } finally {
      const next = this.queued.get(principal)?.shift();
      if (next) next(); // the slot passes to the next read of the same principal
      else {
        if (this.queued.get(principal)?.length === 0) this.queued.delete(principal);
        const left = (this.active.get(principal) ?? 1) - 1;
        if (left <= 0) this.active.delete(principal);
        else this.active.set(principal, left);
      }
    }
  }
}
