import type { BaseRecord, DataProvider } from '@refinedev/core';

/**
 * The app's own data, kept in memory so the example needs no backend of its own. Any Refine data provider
 * works the same: Refine calls the audit-log provider after each successful mutation.
 */
export function memoryDataProvider(): DataProvider {
  const tables = new Map<string, Map<string, BaseRecord>>();
  let nextId = 1;
  const table = (resource: string) => {
    let rows = tables.get(resource);
    if (!rows) tables.set(resource, (rows = new Map()));
    return rows;
  };
  const find = (resource: string, id: string | number | undefined) => {
    const row = table(resource).get(String(id));
    if (!row) throw Object.assign(new Error(`No ${resource} ${id}`), { statusCode: 404 });
    return row;
  };
  return {
    getApiUrl: () => 'memory:',
    getList: async ({ resource }) => {
      const data = [...table(resource).values()].reverse();
      return { data: data as never[], total: data.length };
    },
    getOne: async ({ resource, id }) => ({ data: { ...find(resource, id) } as never }),
    create: async ({ resource, variables }) => {
      const row = { ...(variables as object), id: nextId++ };
      table(resource).set(String(row.id), row);
      return { data: { ...row } as never };
    },
    update: async ({ resource, id, variables }) => {
      const row = { ...find(resource, id), ...(variables as object) };
      table(resource).set(String(id), row);
      return { data: { ...row } as never };
    },
    deleteOne: async ({ resource, id }) => {
      const row = find(resource, id);
      table(resource).delete(String(id));
      return { data: row as never };
    },
  };
}
