/**
 * `npm run build`: compiles src/ to CommonJS in dist/cjs (JavaScript, declarations, source maps) with the
 * repository's own TypeScript, then writes the ESM wrappers (scripts/finish-build.mjs).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

rmSync('dist/cjs', { recursive: true, force: true });
rmSync('dist/esm', { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);
await import('./finish-build.mjs');
