import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS and ESM builds without an exports map: Vite would pick the ESM one for our code
    // while yoga (loaded by Node) gets the CJS one, and `instanceof GraphQLError` would fail between them.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/compat/**', 'test/package/**', 'node_modules/**'],
    // The compiled package (dist/cjs) and the viewer (dist/viewer), each rebuilt when missing or older than its sources.
    globalSetup: ['./test/helpers/build-once.ts', './test/helpers/viewer-build.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
