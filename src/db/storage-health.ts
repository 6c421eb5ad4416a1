/**
 * Whether writes can succeed right now, as the writer last found out. Readiness (`/ready`) reports it:
 * after a storage failure (disk full, I/O error, corruption, a lock held too long) the server is not
 * ready until a write succeeds again — a client's, or the writer's own periodic probe.
 */
export class StorageHealth {
  private failure: { code: string; since: number } | undefined;
  private waiting: Array<() => void> = [];

  get ready(): boolean {
    return this.failure === undefined;
  }

  /** The failing code and since when (epoch ms), while not ready. */
  get problem(): { code: string; since: number } | undefined {
    return this.failure;
  }

  failed(code: string): void {
    if (!this.failure) this.failure = { code, since: Date.now() };
    else this.failure.code = code;
  }

  succeeded(): void {
    this.failure = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves once writes succeed again (at once when they do now): for whatever waits on recovery. */
  untilReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}
