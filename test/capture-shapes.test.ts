import 'reflect-metadata';
import { describe, it } from 'vitest';
import { describeCaptureSuite } from './capture/suite.js';
import { serverDatabases, sqliteDatabases } from './capture/databases.js';

describeCaptureSuite(sqliteDatabases('better-sqlite3', 'TypeORM 1.x + better-sqlite3'));

// The same suite on the server databases, when they are there (in CI they must be).
for (const kind of ['postgres', 'mariadb'] as const) {
  const databases = await serverDatabases(kind);
  if (databases) describeCaptureSuite(databases);
  else if (process.env.CI) throw new Error(`${kind} is not reachable, and CI needs it`);
  else describe(kind, () => it.skip(`${kind} is not reachable on 127.0.0.1: capture suite skipped`, () => {}));
}
