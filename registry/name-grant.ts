// Name grants: a JWT signed with a mesh CA key giving agent and MCP server names to one identity
// (`agentmesh ca grant`). Readers check them against the trust bundle; a sidecar cannot make its own.
import { createPrivateKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { MeshError } from '../sdk/errors.ts';
import type { Registrations } from './name-binding.ts';
import { NAME_PATTERN } from './record.ts';

export const GRANT_TYPE = 'agentmesh-grant+jwt';

const GrantClaims = z.object({
  sub: z.string().startsWith('spiffe://').max(2048),
  agents: z.array(z.string().regex(NAME_PATTERN)).max(256).default([]),
  mcp: z.array(z.string().regex(NAME_PATTERN)).max(256).default([]),
});

export interface Grant extends Registrations {
  /** The identity the names are granted to. */
  identity: string;
  /** Seconds since the epoch; absent when the grant does not expire. */
  expiresAt?: number;
}

/** Signs a grant with the CA's private key (PKCS#8 PEM, ECDSA P-256). */
export async function signGrant(options: { caKeyPem: string; identity: string; agents: readonly string[]; mcp: readonly string[]; ttlMs?: number }): Promise<string> {
  let key: KeyObject;
  try {
    key = createPrivateKey(options.caKeyPem);
  } catch (err) {
    throw new MeshError('IDENTITY_INVALID', 'the CA key is not a PEM private key', { cause: err });
  }
  const claims = GrantClaims.safeParse({ sub: options.identity, agents: options.agents, mcp: options.mcp });
  if (!claims.success) throw new MeshError('CONFIG_INVALID', `cannot grant: ${claims.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const jwt = new SignJWT({ agents: claims.data.agents, mcp: claims.data.mcp })
    .setProtectedHeader({ alg: 'ES256', typ: GRANT_TYPE })
    .setSubject(claims.data.sub)
    .setIssuedAt();
  if (options.ttlMs !== undefined) jwt.setExpirationTime(Math.floor((Date.now() + options.ttlMs) / 1000));
  return jwt.sign(key);
}

/**
 * Verifies a grant against the roots of the trust bundle (the CA keys). Throws IDENTITY_INVALID naming
 * why: not signed by a CA in the bundle, expired, malformed. Synchronous (node:crypto, one ECDSA verify per
 * root tried): a reader catching up on a thousand granted records does not queue a thousand WebCrypto jobs.
 */
export function verifyGrant(token: string, roots: readonly KeyObject[]): Grant {
  const parts = token.split('.');
  if (parts.length !== 3 || token.length > 64 * 1024) throw new MeshError('IDENTITY_INVALID', 'the grant is malformed (not a compact JWS)');
  // Buffer.from(…, 'base64url') skips characters it does not know; jose refuses them.
  if (!parts.every((part) => BASE64URL.test(part))) throw new MeshError('IDENTITY_INVALID', 'the grant is malformed (a segment is not base64url)');
  const [encodedHeader = '', encodedPayload = '', signature = ''] = parts;
  const header = decodeSegment(encodedHeader);
  if (header?.alg !== 'ES256' || header.typ !== GRANT_TYPE) throw new MeshError('IDENTITY_INVALID', `the grant is malformed (not an ES256 ${GRANT_TYPE})`);
  // jose refuses extensions it does not implement, and an unencoded payload (b64: false) in a JWT; signGrant sets none.
  if (header.crit !== undefined) throw new MeshError('IDENTITY_INVALID', 'the grant is malformed (a crit header)');
  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`);
  const sig = Buffer.from(signature, 'base64url');
  // ES256 is ECDSA on P-256: node:crypto would verify any key type it is given (an RSA or P-384 root) with SHA-256.
  const signedByRoot = roots.some((root) => {
    if (root.asymmetricKeyType !== 'ec' || root.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return false;
    try {
      return verifySignature('sha256', signed, { key: root, dsaEncoding: 'ieee-p1363' }, sig);
    } catch {
      return false;
    }
  });
  if (!signedByRoot) throw new MeshError('IDENTITY_INVALID', 'the grant is not signed by a CA in the trust bundle');
  const payload = decodeSegment(encodedPayload);
  const claims = GrantClaims.safeParse(payload);
  if (payload === undefined || !claims.success) throw new MeshError('IDENTITY_INVALID', 'the grant is malformed');
  const now = Math.floor(Date.now() / 1000);
  const { exp, nbf, iat } = payload;
  if ((exp !== undefined && typeof exp !== 'number') || (nbf !== undefined && typeof nbf !== 'number') || (iat !== undefined && typeof iat !== 'number')) throw new MeshError('IDENTITY_INVALID', 'the grant is malformed (exp, nbf or iat is not a number)');
  if (typeof exp === 'number' && exp <= now) throw new MeshError('IDENTITY_INVALID', 'the grant has expired');
  if (typeof nbf === 'number' && nbf > now) throw new MeshError('IDENTITY_INVALID', 'the grant is not valid yet');
  return { identity: claims.data.sub, agents: claims.data.agents, mcp: claims.data.mcp, ...(exp === undefined ? {} : { expiresAt: exp }) };
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** A base64url JSON object segment of a JWS, or undefined when it is not one. */
function decodeSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}
