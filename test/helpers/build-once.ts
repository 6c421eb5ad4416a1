import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time under `dir`, in ms. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/**
 * Vitest global setup: the tests that run the server as users do (`npm start`, the CLI, the packed
 * package) need the compiled package; `npm ci` builds it (`prepare`), and this rebuilds it when the
 * sources are newer, so a test never runs yesterday's build.
 */
export default function setup(): void {
  const built = 'dist/cjs/cli.js';
  if (existsSync(built) && statSync(built).mtimeMs >= newest('src')) return;
  const result = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('npm run build failed');
}
