import { defineConfig } from 'vitest/config';

/** `npm run test:package`: packs auditql and uses the tarball from fresh apps, as users do (slow: installs from the registry). */
export default defineConfig({
  test: {
    include: ['test/package/**/*.test.ts'],
    testTimeout: 15 * 60_000,
    hookTimeout: 15 * 60_000,
    pool: 'forks',
  },
});
