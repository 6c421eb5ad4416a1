import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

/**
 * The folder of auditql's own package.json, to find files shipped beside the code (the viewer, the
 * schema). The package is compiled to CommonJS, where `__dirname` says where this module lives; the
 * TypeScript sources run as ES modules only inside the repository (tests, scripts), from its root.
 */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = typeof __dirname === 'string' ? __dirname : process.cwd();
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'auditql') return (cached = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('auditql: cannot find its own package.json');
    dir = parent;
  }
}
