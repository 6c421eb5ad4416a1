import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchBrowser, type Browser } from './helpers/browser.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * examples/refine, a headless Refine app (React, `useCreate`/`useUpdate`, `useLog`/`useLogList`) using
 * `auditql/refine`, built with Vite and served by `vite preview`, which proxies /graphql to a real server.
 */
const missing = !chromiumAvailable();
if (missing && process.env.CI) throw new Error('/usr/bin/chromium is missing: install the Debian package "chromium"');

const EXAMPLE = join(__dirname, '..', 'examples', 'refine', 'vite.config.ts');
const SHOTS = process.env.SCREENSHOTS === 'update' ? join(__dirname, '..', 'docs') : undefined;

describe.skipIf(missing)('the Refine example app', () => {
  let app: TestApp;
  let server: PreviewServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    const outDir = join(app.dir, 'refine-example');
    await build({ configFile: EXAMPLE, logLevel: 'error', build: { outDir } });
    server = await preview({
      configFile: EXAMPLE,
      logLevel: 'error',
      build: { outDir },
      preview: { host: '127.0.0.1', port: 0, strictPort: false, proxy: { '/graphql': new URL(app.url).origin } },
    });
    browser = await launchBrowser();
    page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  const history = () => page.getByRole('region', { name: 'History' }).locator('li');

  it('records Refine mutations through the provider and shows the history with useLogList', async () => {
    await page.goto(server.resolvedUrls!.local[0]!);
    await page.getByLabel('auditql API key').fill(app.adminKey);
    await page.getByRole('button', { name: 'Continue' }).click();

    await page.getByLabel('Title', { exact: true }).fill('Hello Refine');
    await page.getByRole('button', { name: 'Create post' }).click();
    await history().filter({ hasText: 'create by test admin — title: Hello Refine' }).waitFor();

    await page.getByLabel('New title').fill('Hello auditql');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Hello auditql' }).waitFor();
    await history().first().filter({ hasText: 'update by test admin — title: Hello auditql' }).waitFor();
    expect(await history().count()).toBe(2);

    await page.getByLabel('Name the latest entry').fill('Fixed the greeting');
    await page.getByRole('button', { name: 'Rename' }).click();
    await history().first().filter({ hasText: '“Fixed the greeting”' }).waitFor();
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'refine-example.png'), clip: { x: 0, y: 0, width: 640, height: 380 } });
    expect(pageErrors).toEqual([]);
  });

  it('left exactly these entries on the server', async () => {
    const result = await app.gql('{ auditLogs(filter: { resource: ["posts", "audit_log"] }) { edges { node { resource resourceId action name data previousData meta author { name } } } } }');
    const nodes = result.data!.auditLogs.edges.map((e: { node: unknown }) => e.node);
    expect(nodes).toEqual([
      { resource: 'audit_log', resourceId: expect.any(String), action: 'rename', name: null, data: { name: 'Fixed the greeting' }, previousData: { name: null }, meta: null, author: { name: 'test admin' } },
      {
        resource: 'posts',
        resourceId: '1',
        action: 'update',
        name: 'Fixed the greeting',
        data: { title: 'Hello auditql' },
        // Refine 5 does not find the record in its cache (see knownPreviousData in src/refine).
        previousData: null,
        meta: expect.objectContaining({ id: 1 }),
        author: { name: 'test admin' },
      },
      { resource: 'posts', resourceId: '1', action: 'create', name: null, data: { title: 'Hello Refine' }, previousData: null, meta: expect.objectContaining({ id: 1 }), author: { name: 'test admin' } },
    ]);
  });
});
