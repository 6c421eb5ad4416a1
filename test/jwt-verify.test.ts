import { createHmac } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createJwtVerifier, type JwtConfig } from '../src/auth/jwt.js';

const SECRET = 'a-shared-secret-that-is-long-enough-for-hs256';
const config: JwtConfig = { secret: SECRET, tenantClaim: 'tenant', issuer: 'https://id.example', audience: 'auditql' };
const now = () => Math.floor(Date.now() / 1000);

function sign(claims: Record<string, unknown>, options: { alg?: 'HS256' | 'HS512'; secret?: string } = {}) {
  return new SignJWT({ tenant: 'default', scope: 'audit:read', iss: 'https://id.example', aud: 'auditql', iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'HS256' })
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

/** A token with the given header and payload, signed HS256 with the right secret (what a forger with the secret could not do is not tested here). */
function raw(header: unknown, payload: unknown): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part(header)}.${part(payload)}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

describe('HS256 bearer tokens', () => {
  const verify = createJwtVerifier(config)!;

  it('accepts a valid token and maps its claims', async () => {
    const principal = await verify(await sign({ sub: 'alice', name: 'Alice', scope: 'audit:read audit:write' }));
    expect(principal).toMatchObject({ id: 'alice', name: 'Alice', tenantId: 'default', via: 'jwt', scopes: new Set(['audit:read', 'audit:write']) });
  });

  it.each([
    ['another secret', () => sign({ sub: 'mallory' }, { secret: 'another-secret-that-is-long-enough-too!!' }), 'The token is not valid'],
    ['HS512 with the same secret', () => sign({ sub: 'alice' }, { alg: 'HS512' }), 'The token is not valid'],
    ['alg none', () => Promise.resolve(new UnsecuredJWT({ sub: 'alice', tenant: 'default', iss: 'https://id.example', aud: 'auditql', exp: now() + 600 }).encode()), 'The token is not valid'],
    ['another issuer', () => sign({ sub: 'alice', iss: 'https://evil.example' }), 'The token is not valid'],
    ['another audience', () => sign({ sub: 'alice', aud: 'someone-else' }), 'The token is not valid'],
    ['no sub', () => sign({}), 'The token is not valid'],
    ['not valid before a later time', () => sign({ sub: 'alice', nbf: now() + 600 }), 'The token is not valid'],
    ['expired', () => sign({ sub: 'alice', iat: now() - 120, exp: now() - 60 }), 'The token has expired'],
    ['exp as text', () => Promise.resolve(raw({ alg: 'HS256', typ: 'JWT' }, { sub: 'alice', tenant: 'default', iss: 'https://id.example', aud: 'auditql', exp: String(now() + 600) })), 'The token is not valid'],
    ['a payload that is no object', () => Promise.resolve(raw({ alg: 'HS256', typ: 'JWT' }, ['alice'])), 'The token is not valid'],
    ['an edited payload', async () => {
      const [header, , signature] = (await sign({ sub: 'reader' })).split('.');
      const payload = Buffer.from(JSON.stringify({ sub: 'root', tenant: 'default', scope: 'audit:admin', iss: 'https://id.example', aud: 'auditql', exp: now() + 600 })).toString('base64url');
      return `${header}.${payload}.${signature}`;
    }, 'The token is not valid'],
    ['not a token', () => Promise.resolve('not.a.token'), 'The token is not valid'],
  ])('refuses %s', async (_, token, message) => {
    await expect(verify(await token())).rejects.toThrow(message);
  });
});
