import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  resolve: {
    // The library's sources import `typeorm`; here that must be this project's TypeORM 0.3, not the
    // server's 1.x two folders up.
    // And graphql's CJS build for everyone, as in the server's own config (yoga loads that one).
    alias: [
      { find: /^typeorm(\/.*)?$/, replacement: `${here}node_modules/typeorm$1` },
      { find: /^graphql$/, replacement: 'graphql/index.js' },
    ],
  },
  test: {
    include: ['*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', '../../helpers/summary-reporter.ts'],
  },
});
