import type { AuditLogProvider } from '@refinedev/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditqlError, createAuditLogProvider } from '../src/refine/index.js';
import { createApiKey } from '../src/services/api-keys.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

describe('auditql/refine: createAuditLogProvider against a real server', () => {
  let app: TestApp;
  let writer: string;
  let relay: string;

  beforeAll(async () => {
    app = await startTestApp();
    ({ secret: writer } = await createApiKey(app.dataSource, { name: 'refine app', scopes: ['audit:read', 'audit:write'] }));
    ({ secret: relay } = await createApiKey(app.dataSource, { name: 'backend relay', scopes: ['audit:read', 'audit:write', 'audit:impersonate'] }));
  });
  afterAll(() => app.close());

  it("type-checks as Refine's AuditLogProvider", () => {
    const provider: AuditLogProvider = createAuditLogProvider({ url: app.url, getToken: () => writer });
    expect(Object.keys(provider).sort()).toEqual(['create', 'get', 'update']);
  });

  it('create → logEvent: the record id from meta.id, the author from the credentials, not from Refine', async () => {
    const provider = createAuditLogProvider({ url: app.url, getToken: async () => writer });
    const log = await provider.create({
      resource: 'posts',
      action: 'update',
      data: { title: 'New' },
      previousData: { title: 'Old' },
      meta: { id: 42, dataProviderName: 'default' },
      author: { id: 'u-jane', name: 'Jane' },
    });
    expect(log).toEqual({
      id: expect.stringMatching(/^\d+$/),
      resource: 'posts',
      action: 'update',
      resourceId: '42',
      name: null,
      data: { title: 'New' },
      previousData: { title: 'Old' },
      author: { id: expect.stringMatching(/^apikey:/), name: 'refine app', type: 'service' },
      meta: { id: 42, dataProviderName: 'default' },
      createdAt: expect.stringMatching(/Z$/),
    });
  });

  it('sends previousData Refine could not find (every value undefined) as unknown, not as an empty object', async () => {
    const provider = createAuditLogProvider({ url: app.url, getToken: () => writer });
    const log = await provider.create({ resource: 'posts', action: 'update', data: { title: 'B' }, previousData: { title: undefined }, meta: { id: 9 } });
    expect(log.previousData).toBeNull();
    const kept = await provider.create({ resource: 'posts', action: 'update', data: { title: 'C' }, previousData: { title: 'B', note: undefined }, meta: { id: 9 } });
    expect(kept.previousData).toEqual({ title: 'B' });
  });

  it('sends the author Refine passes only when told to impersonate, which needs audit:impersonate', async () => {
    const relayed = createAuditLogProvider({ url: app.url, headers: { 'x-api-key': relay }, impersonate: true });
    const log = await relayed.create({ resource: 'posts', action: 'create', data: { title: 'A' }, meta: { id: 7 }, author: { id: 'u-jane', name: 'Jane' } });
    expect(log.author).toEqual({ id: 'u-jane', name: 'Jane', type: 'user' });

    const notAllowed = createAuditLogProvider({ url: app.url, headers: () => ({ 'x-api-key': writer }), impersonate: true });
    const refused = await notAllowed.create({ resource: 'posts', action: 'create', meta: { id: 8 }, author: { id: 'u-jane', name: 'Jane' } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AuditqlError);
    expect(refused).toMatchObject({ code: 'FORBIDDEN', statusCode: 403 });
  });

  it('get → auditLogs: one record’s history, newest first, in Refine’s log shape; by action and author too', async () => {
    const provider = createAuditLogProvider({ url: app.url, getToken: () => writer });
    await provider.create({ resource: 'comments', action: 'create', data: { text: 'hi' }, meta: { id: 'c1' } });
    await provider.create({ resource: 'comments', action: 'update', data: { text: 'hello' }, previousData: { text: 'hi' }, meta: { id: 'c1' } });
    await provider.create({ resource: 'comments', action: 'create', data: { text: 'other' }, meta: { id: 'c2' } });

    const history = await provider.get({ resource: 'comments', meta: { id: 'c1' } });
    expect(history.map((l) => [l.action, l.resourceId, l.data])).toEqual([
      ['update', 'c1', { text: 'hello' }],
      ['create', 'c1', { text: 'hi' }],
    ]);
    expect(history[0]!.meta).toEqual({ id: 'c1' });
    expect((await provider.get({ resource: 'comments', action: 'create' })).map((l) => l.resourceId)).toEqual(['c2', 'c1']);
    expect(await provider.get({ resource: 'comments', metaData: { id: 'c2' } })).toHaveLength(1);
    const relayed = createAuditLogProvider({ url: app.url, getToken: () => relay, impersonate: true });
    await relayed.create({ resource: 'comments', action: 'create', meta: { id: 'c3' }, author: { id: 'u-max', name: 'Max' } });
    expect((await provider.get({ resource: 'comments', author: { id: 'u-max' } })).map((l) => l.resourceId)).toEqual(['c3']);
  });

  it('update → renameLog (an admin operation)', async () => {
    const provider = createAuditLogProvider({ url: app.url, getToken: () => app.adminKey });
    const log = await provider.create({ resource: 'tags', action: 'create', meta: { id: 1 } });
    const renamed = await provider.update({ id: log.id, name: 'Imported from the old system' });
    expect(renamed).toMatchObject({ id: log.id, name: 'Imported from the old system', resource: 'tags' });
    expect((await provider.get({ resource: 'tags' }))[0]!.name).toBe('Imported from the old system');
    const asWriter = createAuditLogProvider({ url: app.url, getToken: () => writer });
    await expect(asWriter.update({ id: log.id, name: 'x' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });

  it('fails with UNAUTHENTICATED without credentials, and with the HTTP status when the server is not there', async () => {
    const anonymous = createAuditLogProvider({ url: app.url });
    await expect(anonymous.get({ resource: 'posts' })).rejects.toMatchObject({ name: 'AuditqlError', code: 'UNAUTHENTICATED', statusCode: 401 });
    const wrongPath = createAuditLogProvider({ url: app.url.replace('/graphql', '/nothing'), getToken: () => writer });
    await expect(wrongPath.get({ resource: 'posts' })).rejects.toMatchObject({ statusCode: 404 });
  });
});
