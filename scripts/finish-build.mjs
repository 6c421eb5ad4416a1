/**
 * After `tsc -p tsconfig.build.json` has compiled src/ to CommonJS in dist/cjs: marks that folder as
 * CommonJS and writes one thin ESM wrapper (and its types) per public entry point into dist/esm.
 *
 * Why one implementation: an app that reaches auditql through both `require` and `import` (directly, or
 * through a framework) must still share one copy of its state — the AsyncLocalStorage that carries the
 * actor, the per-transaction bookkeeping — or changes made under `withAuditContext` from one copy would be
 * invisible to the subscriber from the other.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

/** Public entry point → its compiled module under dist/cjs. */
const ENTRIES = { index: 'index', typeorm: 'typeorm', server: 'server', refine: 'refine/index' };

writeFileSync('dist/cjs/package.json', `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);
mkdirSync('dist/esm', { recursive: true });
for (const [entry, module] of Object.entries(ENTRIES)) {
  const line = `export * from '../cjs/${module}.js';\n`;
  writeFileSync(`dist/esm/${entry}.mjs`, line);
  writeFileSync(`dist/esm/${entry}.d.mts`, line);
}
