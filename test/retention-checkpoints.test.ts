import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { rawHandle } from '../src/db/store.js';
import { seedBulk } from './helpers/seed.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const DAY = 86_400_000;

/** The app's connection, as an app embedding the server would have set it up. */
function pragma(app: TestApp, source: string): unknown {
  return (rawHandle(app.dataSource) as unknown as { pragma(s: string, o: { simple: boolean }): unknown }).pragma(source, { simple: true });
}

describe("a purge checkpoints the log on a thread of its own and gives the connection its settings back", () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('after a purge that removed entries, the log copied into the file', async () => {
    app = await startTestApp({ retention: { days: 30 } });
    seedBulk(app.file, 2000, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    pragma(app, 'wal_autocheckpoint = 777');
    let autocheckpointDuring: unknown;
    const purged = await app.server.purgeExpired({ onProgress: () => (autocheckpointDuring ??= pragma(app!, 'wal_autocheckpoint')) });
    expect(purged[0]).toMatchObject({ count: 2000 });
    expect(purged[0]!.longestHeldMs).toBeGreaterThan(0);
    // Off during the purge: its commits never carry a checkpoint, the thread does them.
    expect(autocheckpointDuring).toBe(0);
    expect(pragma(app, 'wal_autocheckpoint')).toBe(777);
    // The thread's last checkpoint ran after the last batch: another connection finds nothing left to copy
    // but what was written since (the purge's own entry).
    const other = new Database(app.file);
    const [result] = other.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
    other.close();
    expect(result!.checkpointed).toBe(result!.log);
    const verified = await app.gql('{ verifyAuditChain { valid anchorSequence } }');
    expect(verified.data!.verifyAuditChain).toEqual({ valid: true, anchorSequence: 2000 });
  });

  it('after a purge that failed', async () => {
    // Archives go to a folder that is a file: the purge fails before its first batch.
    const dir = mkdtempSync(join(tmpdir(), 'auditql-not-a-folder-'));
    const notAFolder = join(dir, 'archives');
    writeFileSync(notAFolder, '');
    app = await startTestApp({ retention: { days: 30, archiveDir: notAFolder } });
    seedBulk(app.file, 100, (i) => ({ created_at: Date.now() - 400 * DAY + i * 60_000 }));
    pragma(app, 'wal_autocheckpoint = 555');
    await expect(app.server.purgeExpired()).rejects.toThrow();
    expect(pragma(app, 'wal_autocheckpoint')).toBe(555);
    rmSync(dir, { recursive: true, force: true });
  });
});
