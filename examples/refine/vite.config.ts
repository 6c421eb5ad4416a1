import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The audit server the app's `/graphql` requests go to (same origin for the browser, through Vite's proxy). */
const target = process.env.AUDITQL_URL ?? 'http://localhost:4000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'react' } },
  resolve: {
    // Inside this repository `auditql/refine` is the source; an app gets it from node_modules.
    alias: { 'auditql/refine': fileURLToPath(new URL('../../src/refine/index.ts', import.meta.url)) },
  },
  server: { proxy: { '/graphql': target } },
  preview: { proxy: { '/graphql': target } },
  build: { outDir: process.env.REFINE_EXAMPLE_OUT ?? fileURLToPath(new URL('./dist', import.meta.url)), emptyOutDir: true },
});
