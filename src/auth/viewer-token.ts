import { randomBytes, randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { DataSource } from 'typeorm';
import { read, writeTransaction } from '../db/transaction.js';
import { InvalidCredentials } from './jwt.js';
import { Scope, type Principal, type ViewerRestriction } from './principal.js';

/**
 * Viewer tokens: short-lived, read-only credentials limited to a filter, minted by an admin
 * (`createViewerToken`) so that an app can show its own customers their part of the log.
 *
 * A viewer token is `aqv_` + a JWT signed HS256 with a secret the server makes on first use and keeps in
 * its database (`audit_server_secret`). So it works on a server with API keys only (no JWT_SECRET), every
 * process on the same database accepts it, and it cannot be confused with the deployment's own JWTs: other
 * key, own prefix, own audience. Verifying needs no database read once the key is loaded.
 */
export const VIEWER_TOKEN_PREFIX = 'aqv_';
/** Longest a viewer token may live (24 h): it is handed to browsers, so it should expire soon. */
export const MAX_VIEWER_TOKEN_SECONDS = 86_400;

const AUDIENCE = 'auditql:viewer';
const SECRET_NAME = 'viewer-token-hs256';
const TABLE = 'audit_server_secret';

const keys = new WeakMap<DataSource, Promise<Uint8Array>>();

async function loadOrCreateKey(dataSource: DataSource): Promise<Uint8Array> {
  const select = () =>
    read(dataSource, (manager) =>
      manager.createQueryBuilder().select('s.value', 'value').from(TABLE, 's').where('s.name = :name', { name: SECRET_NAME }).getRawOne<{ value: string }>(),
    );
  let row = await select();
  if (!row) {
    try {
      await writeTransaction(dataSource, (manager) =>
        manager
          .createQueryBuilder()
          .insert()
          .into(TABLE, ['name', 'value', 'created_at'])
          .values({ name: SECRET_NAME, value: randomBytes(32).toString('base64url'), created_at: Date.now() })
          .execute(),
      );
    } catch {
      // Another process made it first (primary key); read theirs.
    }
    row = await select();
    if (!row) throw new Error('The viewer-token signing key could not be stored');
  }
  return Buffer.from(row.value, 'base64url');
}

/** The signing key, read (or made) once per DataSource. */
function keyFor(dataSource: DataSource): Promise<Uint8Array> {
  let key = keys.get(dataSource);
  if (!key) {
    key = loadOrCreateKey(dataSource);
    // A failure (database briefly unavailable) is not remembered.
    key.catch(() => keys.delete(dataSource));
    keys.set(dataSource, key);
  }
  return key;
}

export function looksLikeViewerToken(token: string): boolean {
  return token.startsWith(VIEWER_TOKEN_PREFIX);
}

export interface SignedViewerToken {
  token: string;
  id: string;
  expiresAt: Date;
}

/** Signs a token for `tenantId` limited to `restriction`. Validation of the inputs is the caller's. */
export async function signViewerToken(
  dataSource: DataSource,
  claims: { tenantId: string; restriction: ViewerRestriction; createdBy: string; expiresIn: number },
): Promise<SignedViewerToken> {
  const id = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  const exp = now + claims.expiresIn;
  const jwt = await new SignJWT({ tenant: claims.tenantId, flt: claims.restriction })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.createdBy)
    .setAudience(AUDIENCE)
    .setJti(id)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(await keyFor(dataSource));
  return { token: `${VIEWER_TOKEN_PREFIX}${jwt}`, id, expiresAt: new Date(exp * 1000) };
}

const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string');

function restrictionOf(value: unknown): ViewerRestriction {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidCredentials('The viewer token is not valid');
  const input = value as Record<string, unknown>;
  const restriction: ViewerRestriction = {};
  for (const key of ['resource', 'action', 'authorId'] as const) {
    if (input[key] === undefined) continue;
    if (!isStringList(input[key])) throw new InvalidCredentials('The viewer token is not valid');
    restriction[key] = input[key];
  }
  for (const key of ['resourceId', 'transactionId'] as const) {
    if (input[key] === undefined) continue;
    if (typeof input[key] !== 'string') throw new InvalidCredentials('The viewer token is not valid');
    restriction[key] = input[key];
  }
  for (const key of ['from', 'to'] as const) {
    if (input[key] === undefined) continue;
    if (typeof input[key] !== 'number' || !Number.isFinite(input[key])) throw new InvalidCredentials('The viewer token is not valid');
    restriction[key] = input[key];
  }
  return restriction;
}

/** The read-only principal a viewer token stands for; InvalidCredentials when it is forged, altered or expired. */
export async function verifyViewerToken(dataSource: DataSource, token: string): Promise<Principal> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token.slice(VIEWER_TOKEN_PREFIX.length), await keyFor(dataSource), {
      algorithms: ['HS256'],
      audience: AUDIENCE,
      requiredClaims: ['exp', 'jti', 'sub'],
    }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new InvalidCredentials('The viewer token has expired');
    if (error instanceof errors.JOSEError) throw new InvalidCredentials('The viewer token is not valid');
    throw error;
  }
  if (typeof payload.tenant !== 'string' || payload.tenant === '') throw new InvalidCredentials('The viewer token is not valid');
  return {
    id: `viewer:${payload.jti}`,
    name: 'viewer token',
    type: 'user',
    scopes: new Set([Scope.Read]),
    tenantId: payload.tenant,
    expiresAt: payload.exp! * 1000,
    via: 'viewer-token',
    restriction: restrictionOf(payload.flt),
  };
}
