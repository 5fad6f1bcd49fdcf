// One-time join tokens for the online CA: a JWT (ES256) signed with the CA key naming the SPIFFE ID it
// may get, with a jti the CA remembers once used (used-tokens.ts). Makes and checks tokens; stores nothing.
import { randomBytes } from 'node:crypto';
import { errors, importPKCS8, importX509, jwtVerify, SignJWT } from 'jose';
import { MeshError } from '../../sdk/errors.ts';
import { parseWorkloadId } from './spiffe.ts';

const TYP = 'agentmesh-join+jwt';
const ALG = 'ES256';
/** A jti is 22-64 URL-safe characters: it becomes a file name in the CA directory. */
export const JTI_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;

/** The SPIFFE ID of the online CA's own server certificate, and the audience of its join tokens. */
export function caServerId(trustDomain: string): string {
  return `spiffe://${trustDomain}/agentmesh/ca`;
}

export interface JoinClaims {
  id: string;
  jti: string;
  expiresAt: Date;
}

/** A join token for `id` (a workload ID in `trustDomain`), valid for `ttlMs`. */
export async function createJoinToken(options: { caKeyPem: string; trustDomain: string; id: string; ttlMs: number }): Promise<{ token: string } & JoinClaims> {
  parseWorkloadId(options.id, options.trustDomain);
  const jti = randomBytes(18).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const exp = now + Math.max(1, Math.round(options.ttlMs / 1000));
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: ALG, typ: TYP })
    .setIssuer(caServerId(options.trustDomain)).setAudience(caServerId(options.trustDomain))
    .setSubject(options.id).setJti(jti).setIssuedAt(now).setExpirationTime(exp)
    .sign(await importPKCS8(options.caKeyPem, ALG));
  return { token, id: options.id, jti, expiresAt: new Date(exp * 1000) };
}

/** Checks a join token against the CA certificate: signature, typ, audience, expiry, a workload ID in the trust domain. */
export async function verifyJoinToken(token: string, options: { caCertPem: string; trustDomain: string }): Promise<JoinClaims> {
  const audience = caServerId(options.trustDomain);
  let payload;
  try {
    ({ payload } = await jwtVerify(token, await importX509(options.caCertPem, ALG), {
      algorithms: [ALG], typ: TYP, audience, issuer: audience, requiredClaims: ['sub', 'jti', 'exp'],
    }));
  } catch (err) {
    throw new MeshError('JOIN_TOKEN_INVALID', `join token refused: ${why(err, audience)}`, { cause: err });
  }
  const { sub, jti, exp } = payload;
  if (typeof jti !== 'string' || !JTI_PATTERN.test(jti)) throw new MeshError('JOIN_TOKEN_INVALID', 'join token refused: its jti is not a token id this CA issues');
  let id: string;
  try {
    id = parseWorkloadId(String(sub), options.trustDomain).id;
  } catch (err) {
    throw new MeshError('JOIN_TOKEN_INVALID', `join token refused: ${(err as Error).message}`, { cause: err });
  }
  return { id, jti, expiresAt: new Date((exp ?? 0) * 1000) };
}

/** The SPIFFE ID a token names, read without verifying it (the sidecar's CSR asks for it; the CA verifies). */
export function joinTokenSubject(token: string): string {
  const payload = token.split('.')[1];
  let sub: unknown;
  try {
    sub = (JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { sub?: unknown }).sub;
  } catch { /* reported below */ }
  if (typeof sub !== 'string') throw new MeshError('CONFIG_INVALID', 'identity.token: not a join token from `agentmesh ca token` (no sub claim)');
  return sub;
}

function why(err: unknown, audience: string): string {
  if (err instanceof errors.JWTExpired) return 'it has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `wrong audience (expected ${audience}: a token from another mesh's CA?)`;
    if (err.claim === 'iss') return `wrong issuer (expected ${audience})`;
    if (err.claim === 'typ') return 'not a join token';
    return `claim ${err.claim}: ${err.reason}`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'not signed by this CA';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'expected an ES256 token';
  return 'not a valid join token (JWT)';
}
