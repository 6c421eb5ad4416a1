import type { AuditLogProvider, BaseKey, LogParams } from '@refinedev/core';

/**
 * A Refine `auditLogProvider` backed by an auditql server:
 *
 * ```ts
 * import { createAuditLogProvider } from 'auditql/refine';
 * <Refine auditLogProvider={createAuditLogProvider({ url: '/graphql', getToken: () => session.token })} … />
 * ```
 *
 * It runs in the browser (or any runtime with `fetch`) and imports nothing from the server.
 */
export interface AuditLogProviderOptions {
  /** The auditql GraphQL endpoint, e.g. `https://audit.example.com/graphql`. */
  url: string;
  /** Sent with every request; a function is called per request (e.g. to read a fresh session). */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** A bearer token (JWT, API key or viewer token), sent as `Authorization: Bearer <token>`. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /**
   * Send the author Refine passes (the `authProvider.getIdentity()` result) as the entry's author. Only for
   * credentials with the `audit:impersonate` scope (a backend relaying its users); without it the server
   * refuses the entry. Off by default: the server records the caller its credentials name as the author,
   * which is what a browser app signed in as its user wants.
   * @default false
   */
  impersonate?: boolean;
  /** Entries `get` returns, newest first. @default 100 (the server allows at most 500) */
  pageSize?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** One entry in the shape Refine's `useLogList` expects (`ILog`). */
export interface RefineLog {
  id: string;
  resource: string;
  action: string;
  /** Refine's record id: auditql's `resourceId`. */
  resourceId: string | null;
  name: string | null;
  data: unknown;
  previousData: unknown;
  author: { id: string; name: string | null; type: string | null } | null;
  meta: Record<string, unknown>;
  createdAt: string;
}

export interface AuditLogGetParams {
  resource: string;
  action?: string;
  /** `meta.id` narrows to one record (Refine passes the record id there). */
  meta?: Record<number | string, unknown>;
  /** `author.id` narrows to one author. */
  author?: Record<number | string, unknown>;
  /** Refine 3's name for `meta`. */
  metaData?: Record<number | string, unknown>;
}

export interface AuditqlAuditLogProvider extends AuditLogProvider {
  create(params: LogParams): Promise<RefineLog>;
  get(params: AuditLogGetParams): Promise<RefineLog[]>;
  update(params: { id: BaseKey; name: string; [key: string]: unknown }): Promise<RefineLog>;
}

/** A failed request; `statusCode` follows Refine's HttpError. */
export class AuditqlError extends Error {
  readonly statusCode: number;
  constructor(
    message: string,
    /** The GraphQL error's `extensions.code`, e.g. FORBIDDEN. */
    readonly code: string | undefined,
    statusCode?: number,
  ) {
    super(message);
    this.name = 'AuditqlError';
    this.statusCode = statusCode ?? STATUS[code ?? ''] ?? 500;
  }
}

const STATUS: Record<string, number> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404, BAD_USER_INPUT: 400, RATE_LIMITED: 429 };

const ENTRY = 'id resource resourceId action name data previousData meta createdAt author { id name type }';

const LOG_EVENT = `mutation RefineLogEvent($input: LogEventInput!) { logEvent(input: $input) { ${ENTRY} } }`;
const LIST = `query RefineAuditLogs($filter: AuditLogFilter, $first: Int!) { auditLogs(filter: $filter, first: $first) { edges { node { ${ENTRY} } } } }`;
const RENAME = `mutation RefineRenameLog($id: ID!, $name: String!) { renameLog(id: $id, name: $name) { ${ENTRY} } }`;

interface EntryNode {
  id: string;
  resource: string;
  resourceId: string | null;
  action: string;
  name: string | null;
  data: unknown;
  previousData: unknown;
  meta: unknown;
  createdAt: string;
  author: { id: string; name: string | null; type: string | null } | null;
}

function toLog(node: EntryNode): RefineLog {
  const meta = node.meta !== null && typeof node.meta === 'object' && !Array.isArray(node.meta) ? (node.meta as Record<string, unknown>) : {};
  return {
    id: node.id,
    resource: node.resource,
    action: node.action,
    resourceId: node.resourceId,
    name: node.name,
    data: node.data,
    previousData: node.previousData,
    author: node.author,
    // Refine reads the record id from meta.id.
    meta: node.resourceId !== null && meta.id === undefined ? { ...meta, id: node.resourceId } : meta,
    createdAt: node.createdAt,
  };
}

const isKey = (value: unknown): value is string | number => (typeof value === 'string' && value !== '') || (typeof value === 'number' && Number.isFinite(value));

/** JSON-safe copy: Refine's meta may carry values JSON cannot hold (functions, undefined). */
function json(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value) ?? 'null');
}

/**
 * Refine builds `previousData` for updates from its query cache, one key per changed field. When the cache
 * has no record (Refine 5 looks under a key its own `useOne` does not use), every value is `undefined`:
 * that is "not known", sent as null rather than as an empty object that would claim the fields were absent.
 */
function knownPreviousData(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const values = Object.values(value);
    if (values.length > 0 && values.every((v) => v === undefined)) return null;
  }
  return json(value) ?? null;
}

/**
 * Refine's `auditLogProvider` over an auditql server: `create` → `logEvent`, `get` → `auditLogs`,
 * `update` → `renameLog`. Credentials come from `headers` or `getToken`.
 */
export function createAuditLogProvider(options: AuditLogProviderOptions): AuditqlAuditLogProvider {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const pageSize = options.pageSize ?? 100;

  async function request<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
    Object.assign(headers, typeof options.headers === 'function' ? await options.headers() : options.headers);
    const token = await options.getToken?.();
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await doFetch(options.url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    const body = (await response.json().catch(() => null)) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> } | null;
    if (body?.errors?.length) {
      const [error] = body.errors;
      throw new AuditqlError(error!.message, error!.extensions?.code, response.ok ? undefined : response.status);
    }
    if (!response.ok || !body?.data) throw new AuditqlError(`The audit server answered ${response.status}`, undefined, response.status);
    return body.data;
  }

  return {
    async create(params) {
      const meta = (json(params.meta) ?? null) as Record<string, unknown> | null;
      const recordId = meta?.id;
      const author = params.author;
      const input: Record<string, unknown> = {
        resource: params.resource,
        action: params.action,
        resourceId: isKey(recordId) ? String(recordId) : null,
        data: json(params.data) ?? null,
        previousData: knownPreviousData(params.previousData),
        meta,
      };
      if (options.impersonate && author && isKey(author.id)) {
        input.author = { id: String(author.id), name: typeof author.name === 'string' ? author.name : null, type: 'user' };
      }
      const data = await request<{ logEvent: EntryNode }>(LOG_EVENT, { input });
      return toLog(data.logEvent);
    },

    async get({ resource, action, meta, metaData, author }) {
      const recordId = (meta ?? metaData)?.id;
      const filter: Record<string, unknown> = { resource: [resource] };
      if (action) filter.action = [action];
      if (isKey(recordId)) filter.resourceId = String(recordId);
      if (author && isKey(author.id)) filter.authorId = [String(author.id)];
      const data = await request<{ auditLogs: { edges: Array<{ node: EntryNode }> } }>(LIST, { filter, first: pageSize });
      return data.auditLogs.edges.map((edge) => toLog(edge.node));
    },

    async update({ id, name }) {
      const data = await request<{ renameLog: EntryNode }>(RENAME, { id: String(id), name });
      return toLog(data.renameLog);
    },
  };
}
