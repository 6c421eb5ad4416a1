import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';

const root = join(__dirname, '..', '..');
const sources = [join(root, 'viewer')];
const built = join(root, 'dist', 'viewer', 'index.html');

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/**
 * vitest globalSetup: the viewer tests load the built viewer from dist/viewer, as the server serves it.
 * `npm ci` builds it; during development this rebuilds it when a source is newer than the build.
 */
export default async function buildViewerWhenStale(): Promise<void> {
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(...sources.map(newest))) return;
  await build({ configFile: join(root, 'viewer', 'vite.config.ts'), logLevel: 'warn' });
}
