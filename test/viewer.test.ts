import { mkdirSync, readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { join } from 'node:path';
import type { Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditServer, type AuditServer } from '../src/app.js';
import { writeAuditEntries } from '../src/audit/writer.js';
import { writeTransaction } from '../src/db/transaction.js';
import { VIEWER_CSP } from '../src/server/viewer.js';
import { axeViolations, chromiumAvailable, launchBrowser, type Browser } from './helpers/browser.js';
import { history, insertHistory } from './helpers/viewer-seed.js';
import { LOG_EVENT, startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/test-app.js';

/**
 * The viewer end to end: the real server serves the built viewer, headless Chromium uses it like a
 * person would, and every assertion is about what the page shows.
 *
 * Screenshots go to a temporary folder; `npm run screenshots` writes them to docs/ for the README.
 */
const missing = !chromiumAvailable();
if (missing && process.env.CI) throw new Error('/usr/bin/chromium is missing: install the Debian package "chromium"');

const HISTORY = history(113);
const SHOTS = process.env.SCREENSHOTS === 'update' ? join(__dirname, '..', 'docs') : undefined;

describe.skipIf(missing)('viewer at /audit-log', () => {
  let app: TestApp;
  let base: string;
  let port: number;
  let browser: Browser;
  let page: Page;
  let restarted: AuditServer | undefined;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  const rows = () => page.locator('.entries tbody tr');
  const countText = () => page.getByTestId('count').innerText();
  const liveStatus = () => page.getByTestId('live-status');
  const waitForCount = (text: string) => page.getByTestId('count').filter({ hasText: text }).waitFor();
  const shot = async (name: string) => {
    const path = join(SHOTS ?? app.dir, `viewer-${name}.png`);
    const png = await page.screenshot({ path, fullPage: false });
    // A PNG signature and more than a blank page's worth of pixels.
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(10_000);
  };
  const expectAccessible = async () => {
    const violations = await axeViolations(page);
    expect(violations, JSON.stringify(violations, null, 2)).toEqual([]);
  };

  beforeAll(async () => {
    app = await startTestApp();
    port = Number(new URL(app.url).port);
    base = `http://127.0.0.1:${port}`;
    await insertHistory(app.dataSource, HISTORY);
    // One transaction with three entries, and an update of a redacted field, written as the capture library writes them.
    await writeTransaction(app.dataSource, (manager) =>
      writeAuditEntries(manager, [
        { resource: 'orders', action: 'create', resourceId: '9001', name: 'Order 9001 placed', author: { id: 'u-dana', name: 'Dana Lee', type: 'user' }, data: { total: '59.90', status: 'new' } },
        { resource: 'order_items', action: 'create', resourceId: '9001-1', name: 'Item 1 of order 9001', author: { id: 'u-dana', name: 'Dana Lee', type: 'user' }, data: { sku: 'MUG', qty: 2 } },
        { resource: 'order_items', action: 'create', resourceId: '9001-2', name: 'Item 2 of order 9001', author: { id: 'u-dana', name: 'Dana Lee', type: 'user' }, data: { sku: 'TEE', qty: 1 } },
      ]),
    );
    await writeTransaction(app.dataSource, (manager) =>
      writeAuditEntries(manager, [
        {
          resource: 'customers',
          action: 'update',
          resourceId: '77',
          name: 'Changed email of customer 77',
          author: { id: 'u-erin', name: 'Erin Park', type: 'user' },
          previousData: { email: 'old@example.com', password: '[REDACTED]', nickname: 'kim', plan: 'free' },
          data: { email: 'new@example.com', password: '[REDACTED]', plan: 'pro', phone: '+49 30 1234' },
          redactedChanges: ['password'],
          ip: '198.51.100.23',
          userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Backoffice',
        },
      ]),
    );
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
    browser = await launchBrowser({ timezoneId: 'Europe/Berlin' });
    page = await browser.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await restarted?.stop();
    await app?.close();
  });

  it('serves the page with a strict CSP, nosniff and the right caching', async () => {
    const response = (await page.goto(`${base}/audit-log`)) as Response;
    expect(response.status()).toBe(200);
    const headers = response.headers();
    expect(headers['content-security-policy']).toBe(VIEWER_CSP);
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['cache-control']).toBe('no-store');
    const script = await page.locator('script[type="module"]').getAttribute('src');
    expect(script).toMatch(/^\/audit-log\/assets\/index-[\w-]+\.js$/);
    const asset = await fetch(`${base}${script}`);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect((await fetch(`${base}/audit-log/assets/..%2F..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${base}/audit-log/assets/nothing-here.js`)).status).toBe(404);
  });

  it('refuses wrong credentials and signs in with an API key kept in sessionStorage, not in the URL', async () => {
    await page.getByLabel('API key or token').fill('aql_nope_nope');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'These credentials are not valid.' }).waitFor();

    await page.getByLabel('API key or token').fill(app.adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await waitForCount('Showing 50 of 117');
    expect(await rows().count()).toBe(50);
    expect(page.url()).not.toContain(app.adminKey);
    expect(await page.evaluate(() => sessionStorage.getItem('auditql.credentials'))).toBe(app.adminKey);
    // Newest first: the redacted update was written last.
    await expect(rows().first().innerText()).resolves.toContain('Changed email of customer 77');
    await liveStatus().filter({ hasText: 'Live' }).waitFor();
    await expect(page.locator('#chart-title').locator('..').innerText()).resolves.toContain('Europe/Berlin');
    await shot('list');
    await expectAccessible();
    // The server has /export (HEAD answers 401 without credentials, not 404): the buttons are there.
    await page.getByRole('button', { name: 'Export NDJSON' }).waitFor();
  });

  it('downloads the current view as NDJSON and CSV from /export, with the key in a header', async () => {
    const requests: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/export') requests.push(request.url());
    });
    const [ndjson] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export NDJSON' }).click()]);
    expect(ndjson.suggestedFilename()).toMatch(/^auditql-default-.*\.ndjson$/);
    const lines = readFileSync((await ndjson.path())!, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.length).toBe(117);
    expect(lines.map((line) => line.sequence)).toEqual(lines.map((_, i) => i + 1));
    expect(lines.at(-1)).toMatchObject({ resource: 'customers', action: 'update', resourceId: '77' });

    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    expect(csv.suggestedFilename()).toMatch(/\.csv$/);
    const rows = parse(readFileSync((await csv.path())!, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(rows.map((row) => row.id)).toEqual(lines.map((line) => line.id));
    expect(requests.length).toBe(2);
    for (const url of requests) expect(url).not.toContain(app.adminKey);
    expect(pageErrors).toEqual([]);
  });

  it('pages by scrolling to the end and with "Load more" until every entry is shown', async () => {
    // Infinite scroll: the button loads the next page when it scrolls into view.
    await page.getByRole('button', { name: 'Load more' }).scrollIntoViewIfNeeded();
    await waitForCount('Showing 100 of 117');
    // The button itself (clicked without scrolling to it, which would load by scrolling first).
    await page.getByRole('button', { name: 'Load more' }).evaluate((button: HTMLButtonElement) => button.click());
    await waitForCount('Showing 117 of 117');
    expect(await rows().count()).toBe(117);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    const ids = await rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
    expect(new Set(ids).size).toBe(117);
  });

  it('filters, keeps the filter in the URL, and restores it on reload', async () => {
    await page.getByLabel('Resource').fill('orders');
    await page.getByLabel('Action', { exact: true }).fill('update');
    await page.getByRole('button', { name: 'Apply' }).click();
    const expected = HISTORY.filter((r) => r.resource === 'orders' && r.action === 'update');
    await waitForCount(`Showing ${expected.length} of ${expected.length}`);
    expect(new URL(page.url()).searchParams.get('resource')).toBe('orders');
    expect(new URL(page.url()).searchParams.get('action')).toBe('update');
    const cells = await rows().evaluateAll((trs) => trs.map((tr) => [tr.children[1]!.textContent, tr.children[2]!.textContent]));
    expect(cells).toEqual(expected.map(() => ['update', 'orders']));

    await page.reload();
    await waitForCount(`Showing ${expected.length} of ${expected.length}`);
    await expect(page.getByLabel('Resource').inputValue()).resolves.toBe('orders');

    // Search, then back to everything.
    await page.getByRole('button', { name: 'Reset' }).click();
    await page.getByLabel('Search').fill('EMAIL of customer');
    await page.getByRole('button', { name: 'Apply' }).click();
    await waitForCount('Showing 1 of 1');
  });

  it('opens an entry: author, ip, user agent, and a diff with added, removed, changed and redacted fields', async () => {
    await rows().first().getByRole('link').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Changed email of customer 77' }).waitFor();
    expect(new URL(page.url()).searchParams.get('entry')).toMatch(/^\d+$/);
    const facts = await dialog.locator('.facts').innerText();
    expect(facts).toContain('Erin Park (user, id u-erin)');
    expect(facts).toContain('198.51.100.23');
    expect(facts).toContain('Mozilla/5.0 (X11; Linux x86_64) Backoffice');
    // Its place in the tamper-evident chain, as the API reports it.
    const id = new URL(page.url()).searchParams.get('entry')!;
    const chained = (await app.gql(`{ auditLog(id: "${id}") { sequence hash previousHash } }`)).data!.auditLog;
    expect(facts).toMatch(new RegExp(`Sequence\\s+${chained.sequence}\\b`));
    expect(facts).toContain(chained.hash);
    expect(facts).toContain(chained.previousHash);
    const diff = await dialog.locator('table.diff tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    expect(diff).toEqual([
      ['email', 'changed', 'old@example.com', 'new@example.com'],
      ['nickname', 'removed', 'kim', '—'],
      ['password', 'changed', 'value redacted'],
      ['phone', 'added', '—', '+49 30 1234'],
      ['plan', 'changed', 'free', 'pro'],
    ]);
    await shot('diff');
    await expectAccessible();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(new URL(page.url()).searchParams.get('entry')).toBeNull();
  });

  it('links an entry to the other entries of its transaction', async () => {
    await page.getByLabel('Search').fill('Order 9001 placed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await waitForCount('Showing 1 of 1');
    await rows().first().getByRole('link').click();
    await page.getByRole('button', { name: /All entries of transaction/ }).click();
    await waitForCount('Showing 3 of 3');
    const names = await rows().evaluateAll((trs) => trs.map((tr) => tr.children[5]!.textContent));
    expect(names.sort()).toEqual(['Item 1 of order 9001', 'Item 2 of order 9001', 'Order 9001 placed']);
    expect(new URL(page.url()).searchParams.get('tx')).toBeTruthy();
  });

  it('splits the chart by action, and narrows the time range when a bar is chosen', async () => {
    await page.getByRole('button', { name: 'Reset' }).click();
    await waitForCount('Showing 50 of 117');
    await page.getByLabel('Split by').selectOption('ACTION');
    await page.getByRole('list', { name: 'Legend' }).waitFor();
    expect((await page.getByRole('list', { name: 'Legend' }).innerText()).split('\n').sort()).toEqual(['create', 'delete', 'update']);
    expect(new URL(page.url()).searchParams.get('groupBy')).toBe('ACTION');
    const bars = page.locator('.bars button');
    const labels = await bars.evaluateAll((buttons) => buttons.map((b) => b.getAttribute('aria-label') ?? ''));
    // The newest busy bar: the oldest one is cut by the range's start, a chosen bar is not.
    const index = labels.findLastIndex((label) => !label.endsWith(': 0 entries'));
    const inBar = Number(/: (\d+) entr/.exec(labels[index]!)![1]);
    await bars.nth(index).click();
    await page.getByTestId('count').filter({ hasText: new RegExp(`of ${inBar}$`) }).waitFor();
    expect(new URL(page.url()).searchParams.get('range')).toBe('custom');
    await page.getByRole('button', { name: 'Reset' }).click();
    await waitForCount('Showing 50 of 117');
  });

  it('shows an entry written through the API at the top as soon as it is committed', async () => {
    await liveStatus().filter({ hasText: 'Live' }).waitFor();
    const written = await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'publish', resourceId: '501', name: 'Published post 501' } });
    expect(written.errors).toBeUndefined();
    await rows().first().filter({ hasText: 'Published post 501' }).waitFor();
    await waitForCount('Showing 51 of 118');
    expect(await rows().first().getAttribute('class')).toBe('fresh');
  });

  it('pauses and resumes without missing what arrived meanwhile', async () => {
    await page.getByRole('button', { name: 'Pause' }).click();
    await liveStatus().filter({ hasText: 'Paused' }).waitFor();
    await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'publish', resourceId: '502', name: 'Published post 502' } });
    await page.getByRole('button', { name: 'Resume' }).click();
    await rows().first().filter({ hasText: 'Published post 502' }).waitFor();
    await waitForCount('Showing 52 of 119');
  });

  it('reconnects after a server restart and resumes after the last entry it had, losing none', async () => {
    await liveStatus().filter({ hasText: 'Live' }).waitFor();
    await app.server.stop();
    await liveStatus().filter({ hasText: 'Reconnecting' }).waitFor();
    // Written while no server runs: the app's own writes through the capture library go on.
    await writeTransaction(app.dataSource, (manager) =>
      writeAuditEntries(manager, [{ resource: 'posts', action: 'update', resourceId: '503', name: 'Edited post 503 while the server was down', author: { id: 'u-alice', name: 'Alice Martin' } }]),
    );
    restarted = createAuditServer({ dataSource: app.dataSource, logging: false, auth: { jwtSecret: TEST_JWT_SECRET } });
    await restarted.start({ port, host: '127.0.0.1' });
    await rows().first().filter({ hasText: 'Edited post 503 while the server was down' }).waitFor();
    await liveStatus().filter({ hasText: 'Live' }).waitFor();
    await app.gql(LOG_EVENT, { input: { resource: 'posts', action: 'publish', resourceId: '504', name: 'Published post 504' } });
    await rows().first().filter({ hasText: 'Published post 504' }).waitFor();
    const names = await rows().evaluateAll((trs) => trs.map((tr) => tr.children[5]!.textContent));
    expect(names.slice(0, 4)).toEqual(['Published post 504', 'Edited post 503 while the server was down', 'Published post 502', 'Published post 501']);
    expect(new Set(await rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')))).size).toBe(await rows().count());
    await waitForCount('Showing 54 of 121');
  });

  it('is usable and accessible at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: 'Load more' }).waitFor();
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 391).slice(0, 8).map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`),
    );
    expect(wide).toEqual([]);
    // Nothing wider than the screen: no sideways scrolling.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await expectAccessible();
    await shot('phone');
    await rows().first().getByRole('link').click();
    await page.getByRole('dialog').getByRole('heading', { name: 'Published post 504' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.getByRole('button', { name: 'Close' }).click();
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it('mints a viewer token for the current filter, which an app embedding the viewer hands over by message', async () => {
    await page.getByLabel('Resource').fill('posts');
    await page.getByRole('button', { name: 'Apply' }).click();
    const posts = HISTORY.filter((r) => r.resource === 'posts').length + 4;
    await waitForCount(`of ${posts}`);
    await page.getByRole('button', { name: 'Share view' }).click();
    await page.getByRole('button', { name: 'Create viewer token' }).click();
    const token = page.getByLabel(/^Viewer token/);
    await token.waitFor();
    const viewerToken = await token.inputValue();
    expect(viewerToken).toMatch(/^aqv_/);
    await page.getByRole('button', { name: 'Share view' }).click();

    // The app's page, on the viewer's origin (frame-ancestors 'self'), gives the token to the frame by message.
    const embedded = await browser.newPage();
    embedded.on('pageerror', (error) => pageErrors.push(error.message));
    await embedded.route(`${base}/app-page`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><html lang="en"><title>Customer portal</title><iframe title="Audit log" src="/audit-log" width="1200" height="800"></iframe>
          <script>addEventListener('message', (e) => { if (e.origin === location.origin && e.data && e.data.type === 'auditql:ready') e.source.postMessage({ type: 'auditql:token', token: ${JSON.stringify(viewerToken)} }, location.origin); });</script></html>`,
      }),
    );
    await embedded.goto(`${base}/app-page`);
    const frame = embedded.frameLocator('iframe');
    await frame.getByTestId('count').filter({ hasText: `of ${posts}` }).waitFor();
    const resources = await frame.locator('.entries tbody tr td:nth-child(3)').allInnerTexts();
    expect(new Set(resources)).toEqual(new Set(['posts']));
    // Asking for more than the token allows is refused, and the page says so.
    await frame.getByLabel('Resource').fill('orders');
    await frame.getByRole('button', { name: 'Apply' }).click();
    await frame.getByRole('alert').filter({ hasText: 'does not show resource "orders"' }).first().waitFor();
    await embedded.close();
    await page.getByRole('button', { name: 'Reset' }).click();
  });

  it('ran without a CSP violation or an uncaught error', () => {
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('sends the user back to sign-in when the credentials stop working', async () => {
    await page.evaluate(() => sessionStorage.setItem('auditql.credentials', 'aql_revoked_key'));
    await page.reload();
    await page.getByRole('alert').filter({ hasText: 'Sign in again' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('auditql.credentials'))).toBeNull();
  });
});
