import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { DataSource } from 'typeorm';

/**
 * The real services tests use, at their standard local ports. A test that needs one it cannot reach is
 * skipped with a message when run outside CI; in CI (`CI` set) it runs, and fails.
 */
export const POSTGRES = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', database: 'test' };
export const REDIS_URL = 'redis://127.0.0.1:6379';

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const ports = { postgres: 5432, mariadb: 3306, redis: 6379 } as const;
export type Service = keyof typeof ports;

/** Whether the tests needing `services` run; says why not when they are skipped. */
export async function servicesAvailable(file: string, ...services: Service[]): Promise<boolean> {
  const missing: Service[] = [];
  for (const service of services) if (!(await reachable(ports[service]))) missing.push(service);
  if (missing.length === 0 || process.env.CI) return true;
  console.warn(`SKIPPED ${file}: ${missing.join(', ')} not reachable on 127.0.0.1 (these tests run whenever CI is set)`);
  return false;
}

export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

/** A fresh PostgreSQL database of its own; `drop()` removes it (and ends its connections). */
export async function createPostgresDatabase(prefix = 'auditql_test'): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = uniqueName(prefix);
  const admin = await new DataSource({ type: 'postgres', ...POSTGRES, username: POSTGRES.user }).initialize();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.destroy();
  }
  return {
    name,
    url: `postgres://${POSTGRES.user}@${POSTGRES.host}:${POSTGRES.port}/${name}`,
    async drop() {
      const again = await new DataSource({ type: 'postgres', ...POSTGRES, username: POSTGRES.user }).initialize();
      try {
        await again.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await again.destroy();
      }
    },
  };
}

/** A fresh MariaDB/MySQL database of its own; `drop()` removes it. */
export async function createMariaDatabase(prefix = 'auditql_test'): Promise<{ name: string; drop(): Promise<void> }> {
  const name = uniqueName(prefix);
  const admin = await new DataSource({ type: 'mysql', ...MARIADB, username: MARIADB.user }).initialize();
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.destroy();
  }
  return {
    name,
    async drop() {
      const again = await new DataSource({ type: 'mysql', ...MARIADB, username: MARIADB.user }).initialize();
      try {
        await again.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await again.destroy();
      }
    },
  };
}
