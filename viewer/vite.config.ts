import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The viewer is built once, at package build time, into dist/viewer and served by the server at
 * /audit-log (src/server/viewer.ts). Everything it needs is in that folder: no CDN, no web fonts.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/audit-log/',
  publicDir: 'public',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/viewer', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // The served CSP allows no inline code and no data: scripts.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
    sourcemap: false,
  },
});
