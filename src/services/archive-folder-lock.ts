/**
 * Rewrites of one archive folder, one at a time across processes: the server, `auditql erase` and
 * `auditql retention` may all rewrite the same file (README, "Retention", archives and erasure). Two
 * rewrites at once would each rename their own copy over the file, and the later would bring back what the
 * earlier erased.
 *
 * The lock is an exclusive transaction on a small SQLite file in the folder (ARCHIVE_LOCK_FILE). SQLite takes
 * it with the operating system's file locks, which end with the process that holds them: a process killed
 * while rewriting leaves no stale lock behind. Any other tool (a backup copying the folder) can take the same
 * lock the same way. Within one process a mutex orders the rewrites first, so that only one of them waits on
 * the file.
 */
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Mutex } from 'async-mutex';
import Database from 'better-sqlite3';

/** The lock's file name in an archive folder. Not an archive: readers of the folder skip it. */
export const ARCHIVE_LOCK_FILE = '.auditql-archive.lock';

const inProcess = new Map<string, Mutex>();

/**
 * Runs `work` holding the folder's lock; `onWait` is called once when another process holds it. Waiting is
 * unbounded, as the lock ends with its holder; the retries back off up to a quarter of a second.
 */
export function withArchiveFolderLock<T>(dir: string, work: () => Promise<T>, onWait?: () => void): Promise<T> {
  let mutex = inProcess.get(dir);
  if (!mutex) inProcess.set(dir, (mutex = new Mutex()));
  return mutex.runExclusive(async () => {
    // No busy timeout: better-sqlite3 would wait for it on the event loop. Retried here instead.
    const lock = new Database(join(dir, ARCHIVE_LOCK_FILE), { timeout: 0 });
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          lock.exec('BEGIN EXCLUSIVE');
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
          if (attempt === 0) onWait?.();
          await delay(Math.min(250, 5 * 2 ** attempt));
        }
      }
      try {
        return await work();
      } finally {
        lock.exec('ROLLBACK');
      }
    } finally {
      lock.close();
    }
  });
}
