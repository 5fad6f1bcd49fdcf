// Test-only: an OpenID-style identity provider — an ES256 key with a kid, its JWKS written to a file and
// served over HTTPS (a self-signed certificate for 127.0.0.1, counted fetches), and tokens signed with it
// or in the shapes a verifier must refuse (alg none, HS256 keyed with the public key, unknown kid).
import { webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);

export interface TestIdp extends AsyncDisposable {
  readonly issuer: string;
  /** https://127.0.0.1:port/jwks.json */
  readonly jwksUrl: string;
  readonly jwksFile: string;
  /** The PEM of the JWKS server's self-signed certificate (for auth.jwt.jwksCa). */
  readonly caFile: string;
  /** How many times the JWKS was fetched. */
  fetches(): number;
  /** A token signed with the IdP key; `exp` defaults to 5 minutes from now (null: no exp). */
  token(claims: JWTPayload, options?: { exp?: number | null; kid?: string; audience?: string }): Promise<string>;
  /** An unsecured token (`alg: none`). */
  none(claims: JWTPayload): string;
  /** HS256 keyed with the IdP's public key (the classic algorithm-confusion forgery). */
  hs256WithPublicKey(claims: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

export async function startTestIdp(dir: string, audience: string): Promise<TestIdp> {
  const issuer = 'https://idp.test';
  const kid = 'key-1';
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...await exportJWK(publicKey), kid, alg: 'ES256', use: 'sig' };
  const jwks = JSON.stringify({ keys: [jwk] });
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, jwks);
  const publicPem = await exportSPKI(publicKey);
  const tls = await selfSigned();
  const caFile = join(dir, 'idp-ca.pem');
  writeFileSync(caFile, tls.certPem);
  let fetches = 0;
  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    if (req.url !== '/jwks.json') return void res.writeHead(404).end();
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  const base = (claims: JWTPayload, aud = audience) => ({ iss: issuer, aud, iat: Math.floor(Date.now() / 1000), ...claims });
  const close = () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  return {
    issuer, jwksUrl, jwksFile, caFile,
    fetches: () => fetches,
    async token(claims, options = {}) {
      const exp = options.exp === undefined ? Math.floor(Date.now() / 1000) + 300 : options.exp;
      return new SignJWT({ ...base(claims, options.audience), ...(exp === null ? {} : { exp }) })
        .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? kid, typ: 'JWT' }).sign(privateKey);
    },
    none(claims) {
      const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${part({ alg: 'none', typ: 'JWT' })}.${part({ ...base(claims), exp: Math.floor(Date.now() / 1000) + 300 })}.`;
    },
    async hs256WithPublicKey(claims) {
      return new SignJWT({ ...base(claims), exp: Math.floor(Date.now() / 1000) + 300 })
        .setProtectedHeader({ alg: 'HS256', kid, typ: 'JWT' }).sign(new TextEncoder().encode(publicPem));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function selfSigned(): Promise<{ certPem: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=idp.test', keys, signingAlgorithm: alg,
    notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}
