import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

function isOurs(dir: string): boolean {
  const file = join(dir, 'package.json');
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === 'auditql';
  } catch {
    return false;
  }
}

/**
 * The folder of auditql's own package.json, wherever the code runs from: the sources (tsx, vitest), the
 * compiled CommonJS build in `dist/cjs`, or `node_modules/auditql` in an app. Found by walking up from this
 * module's folder (`__dirname`, defined in CommonJS and under vitest), else from the working directory.
 * `import.meta` is not an option: the CommonJS build cannot compile it.
 */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = typeof __dirname === 'string' ? __dirname : process.cwd();
  for (;;) {
    if (isOurs(dir)) return (cached = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the auditql package folder (no package.json named "auditql" above this module)');
    dir = parent;
  }
}
