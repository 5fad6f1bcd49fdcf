// Name grants: a JWT signed with a mesh CA key giving agent and MCP server names to one identity
// (`agentmesh ca grant`). Readers check them against the trust bundle; a sidecar cannot make its own.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
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
 * why: not signed by a CA in the bundle, expired, malformed.
 */
export async function verifyGrant(token: string, roots: readonly KeyObject[]): Promise<Grant> {
  let lastError: unknown;
  for (const root of roots) {
    try {
      const { payload } = await jwtVerify(token, root, { algorithms: ['ES256'], typ: GRANT_TYPE });
      const claims = GrantClaims.safeParse(payload);
      if (!claims.success) throw new MeshError('IDENTITY_INVALID', 'the grant is malformed');
      return { identity: claims.data.sub, agents: claims.data.agents, mcp: claims.data.mcp, ...(payload.exp === undefined ? {} : { expiresAt: payload.exp }) };
    } catch (err) {
      if (err instanceof MeshError) throw err;
      lastError = err;
      if ((err as { code?: string }).code === 'ERR_JWT_EXPIRED') throw new MeshError('IDENTITY_INVALID', 'the grant has expired', { cause: err });
    }
  }
  throw new MeshError('IDENTITY_INVALID', 'the grant is not signed by a CA in the trust bundle', { cause: lastError });
}
