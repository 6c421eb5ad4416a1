import { createClient, type Client } from 'graphql-ws';

/** The API lives next to the viewer, on the same origin (the CSP allows no other). */
export const GRAPHQL_PATH = '/graphql';

const STORAGE_KEY = 'auditql.credentials';

/** Credentials are kept for this tab only, and sent as a header: never in a URL, never in localStorage. */
export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(STORAGE_KEY, token);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage disabled: the session lasts as long as the page.
  }
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

interface GraphQLBody<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

export function firstError(errors: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }>): ApiError {
  const error = errors[0]!;
  const code = typeof error.extensions?.code === 'string' ? error.extensions.code : undefined;
  return new ApiError(error.message, code, error.extensions ?? {});
}

export function authorization(token: string): string {
  return `Bearer ${token.trim()}`;
}

export async function request<T>(token: string, query: string, variables?: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', authorization: authorization(token) },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError('The server cannot be reached', 'NETWORK');
  }
  const body = (await response.json().catch(() => null)) as GraphQLBody<T> | null;
  if (!body) throw new ApiError(`The server answered ${response.status}`, 'NETWORK');
  if (body.errors?.length) throw firstError(body.errors);
  return body.data as T;
}

function wsUrl(): string {
  const url = new URL(GRAPHQL_PATH, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/**
 * One socket for the live stream. It does not retry on its own: after a drop the viewer subscribes again
 * itself, with `after` set to the newest entry it holds, so the server replays exactly what was missed
 * (graphql-ws' own retry would resend the first subscription's variables).
 */
export function createLiveClient(token: string, on: { connected(): void; closed(): void }): Client {
  return createClient({
    url: wsUrl(),
    connectionParams: { authorization: authorization(token) },
    lazy: true,
    retryAttempts: 0,
    keepAlive: 15_000,
    on: { connected: on.connected, closed: on.closed },
  });
}

/** What this server offers beyond the base schema, announced in index.html by the server. */
export function serverFeatures(): Set<string> {
  const content = document.querySelector('meta[name="auditql-features"]')?.getAttribute('content') ?? '';
  return new Set(content.split(/\s+/).filter(Boolean));
}

/**
 * Export is a separate endpoint that older servers lack. Asked without credentials, a server that has it
 * refuses (401/403/405) and one that lacks it answers 404; nothing is exported either way.
 */
export async function probeExport(): Promise<boolean> {
  try {
    const response = await fetch('/export?format=ndjson', { method: 'HEAD' });
    return response.status !== 404;
  } catch {
    return false;
  }
}
