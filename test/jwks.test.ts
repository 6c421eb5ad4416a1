import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditServer, type AuditServer } from '../src/app.js';
import { createSqliteDataSource, openDatabase } from '../src/db/data-source.js';
import type { DataSource } from 'typeorm';

let jwks: Server;
let ds: DataSource;
let audit: AuditServer;
let url: string;
let rsa: CryptoKey;
let ec: CryptoKey;
let stranger: CryptoKey;

beforeAll(async () => {
  const rsaPair = await generateKeyPair('RS256');
  const ecPair = await generateKeyPair('ES256');
  rsa = rsaPair.privateKey;
  ec = ecPair.privateKey;
  stranger = (await generateKeyPair('RS256')).privateKey;
  const keys = [
    { ...(await exportJWK(rsaPair.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ecPair.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  // A real JWKS endpoint, on this machine.
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  ds = await openDatabase(createSqliteDataSource({ database: ':memory:' }));
  audit = createAuditServer({
    dataSource: ds,
    logging: false,
    auth: { jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`, jwtIssuer: 'https://id.example', jwtAudience: 'auditql', tenantClaim: 'org' },
  });
  url = (await audit.start({ port: 0, host: '127.0.0.1' })).url;
});
afterAll(async () => {
  await audit.stop();
  await ds.destroy();
  jwks.close();
});

function token(key: CryptoKey, alg: string, kid: string, { iss = 'https://id.example', aud = 'auditql' } = {}) {
  return new SignJWT({ scope: 'audit:read audit:write', org: 'acme' })
    .setProtectedHeader({ alg, kid })
    .setSubject('svc-1')
    .setIssuer(iss)
    .setAudience(aud)
    .setExpirationTime('5m')
    .sign(key);
}

async function call(bearer: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ query: 'mutation { logEvent(input: { resource: "r", action: "a" }) { author { id } } }' }),
  });
  return (await response.json()) as { data?: { logEvent: { author: { id: string } } }; errors?: Array<{ extensions: { code: string } }> };
}

describe('JWT through a JWKS URL', () => {
  it.each([
    ['RS256', () => token(rsa, 'RS256', 'rsa-1')],
    ['ES256', () => token(ec, 'ES256', 'ec-1')],
  ])('accepts %s tokens and takes the tenant from the configured claim', async (_alg, make) => {
    const result = await call(await make());
    expect(result.errors).toBeUndefined();
    expect(result.data!.logEvent.author.id).toBe('svc-1');
    const [row] = await ds.query('SELECT tenant_id FROM audit_log ORDER BY id DESC LIMIT 1');
    expect(row.tenant_id).toBe('acme');
  });

  it.each([
    ['a key not in the set', () => token(stranger, 'RS256', 'rsa-1')],
    ['the wrong issuer', () => token(rsa, 'RS256', 'rsa-1', { iss: 'https://evil.example' })],
    ['the wrong audience', () => token(rsa, 'RS256', 'rsa-1', { aud: 'someone-else' })],
  ])('refuses a token signed with %s', async (_label, make) => {
    const result = await call(await make());
    expect(result.errors?.[0]?.extensions.code).toBe('UNAUTHENTICATED');
  });
});
