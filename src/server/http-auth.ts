import type { FetchAPI } from 'graphql-yoga';
import type { Principal } from '../auth/principal.js';
import type { ServerDeps } from '../schema/context.js';
import { ErrorCode } from '../shared/errors.js';

/** A JSON answer in the shape of a GraphQL error response (`errors[].extensions.code`). */
export function jsonResponse(fetchAPI: FetchAPI, status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new fetchAPI.Response(JSON.stringify(body, null, 2), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export function errorResponse(fetchAPI: FetchAPI, status: number, code: string, message: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return jsonResponse(fetchAPI, status, { errors: [{ message, extensions: { code, ...extensions } }] }, headers);
}

/**
 * The caller of a plain HTTP route (not /graphql), authenticated like a GraphQL request: credentials in
 * `Authorization: Bearer …` or `x-api-key`. Answers 401 without valid credentials and 403 when `allowed`
 * refuses the principal; otherwise gives the principal.
 */
export async function authorizeHttp(
  deps: Pick<ServerDeps, 'auth'>,
  request: Request,
  fetchAPI: FetchAPI,
  allowed: { test(principal: Principal): boolean; refusal: string },
): Promise<{ principal: Principal } | { response: Response }> {
  const principal = await deps.auth.authenticate({ authorization: request.headers.get('authorization'), apiKey: request.headers.get('x-api-key') }).catch(() => null);
  if (!principal) {
    return { response: errorResponse(fetchAPI, 401, ErrorCode.Unauthenticated, 'Send credentials: "Authorization: Bearer <token>" or "x-api-key: <key>"', {}, { 'www-authenticate': 'Bearer' }) };
  }
  if (!allowed.test(principal)) return { response: errorResponse(fetchAPI, 403, ErrorCode.Forbidden, allowed.refusal) };
  return { principal };
}
