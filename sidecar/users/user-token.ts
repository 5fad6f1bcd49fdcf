// auth.jwt: verifies the end user's bearer JWT that the local agent hands its sidecar (issuer, audience,
// algorithm allowlist, leeway, exp required) against a JWKS file or an https JWKS URL (jose's cache and
// cooldown: a flood of unknown kids refetches at most once per cooldown). Never logs or echoes a token.
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Agent } from 'undici';
import { MeshError } from '../../sdk/errors.ts';
import type { JwtAuthConfig } from '../config.ts';
import { userClaims, type MeshUser } from './delegation-claims.ts';
import { joseReason } from './workload-signer.ts';

/** Longest bearer token read (bytes); longer ones are refused before any parsing. */
const MAX_TOKEN = 8192;

export interface UserVerifier {
  /** The user behind an `Authorization: Bearer …` value; UNAUTHENTICATED naming why not. */
  verify(authorization: string): Promise<MeshUser>;
  close(): void;
}

export async function createUserVerifier(config: JwtAuthConfig): Promise<UserVerifier> {
  let keys: JWTVerifyGetKey;
  let agent: Agent | undefined;
  if (config.jwksFile !== undefined) {
    keys = createLocalJWKSet(await readJwks(config.jwksFile));
  } else {
    const ca = config.jwksCa === undefined ? undefined : await readFile(config.jwksCa, 'utf8').catch((err: unknown) => {
      throw new MeshError('CONFIG_INVALID', `auth.jwt.jwksCa: cannot read ${config.jwksCa}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    });
    // undici's index (fetch, Agent) is loaded only for a private JWKS CA: not at every sidecar's start.
    const undici = ca === undefined ? undefined : await import('undici');
    if (undici && ca !== undefined) agent = new undici.Agent({ connect: { ca: [...rootCertificates, ca] } });
    const dispatcher = agent;
    const undiciFetch = undici?.fetch;
    keys = createRemoteJWKSet(new URL(config.jwksUrl ?? ''), {
      cooldownDuration: config.jwksCooldown, cacheMaxAge: 10 * 60_000, timeoutDuration: 5000,
      ...(dispatcher && undiciFetch ? { [customFetch]: ((url: string, init: RequestInit) => undiciFetch(url, { ...init, dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch } : {}),
    });
  }
  const options = {
    issuer: config.issuer, audience: config.audiences, algorithms: [...config.algorithms],
    clockTolerance: Math.floor(config.leeway / 1000), requiredClaims: ['exp', 'sub'],
  };
  return {
    async verify(authorization) {
      const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)$/i.exec(authorization.trim());
      if (!match?.[1]) throw new MeshError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <JWT>"');
      if (match[1].length > MAX_TOKEN) throw new MeshError('UNAUTHENTICATED', `the bearer token is longer than ${MAX_TOKEN} bytes`);
      try {
        const { payload } = await jwtVerify(match[1], keys, options);
        const subject = payload.sub ?? '';
        if (subject === '' || subject.length > 256) throw new MeshError('UNAUTHENTICATED', 'the bearer token\'s sub must be 1-256 characters');
        return { subject, claims: userClaims(payload, config.claims) };
      } catch (err) {
        if (err instanceof MeshError) throw err;
        const code = (err as { code?: unknown }).code;
        if (code === 'ERR_JWKS_TIMEOUT' || (config.jwksUrl !== undefined && code === undefined)) {
          throw new MeshError('UPSTREAM_UNAVAILABLE', `cannot fetch the JWKS from auth.jwt.jwksUrl to verify the bearer token`, { cause: err });
        }
        throw new MeshError('UNAUTHENTICATED', `bearer token refused: ${joseReason(err)}`, { cause: err });
      }
    },
    close() {
      void agent?.close();
    },
  };
}

async function readJwks(path: string): Promise<JSONWebKeySet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `auth.jwt.jwksFile: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `auth.jwt.jwksFile: ${path} is not JSON`, { cause: err });
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new MeshError('CONFIG_INVALID', `auth.jwt.jwksFile: ${path} must be a JWKS ({"keys": [...]}) with at least one key`);
  if (keys.some((k) => typeof k === 'object' && k !== null && ('d' in k || (k as { kty?: unknown }).kty === 'oct'))) {
    throw new MeshError('CONFIG_INVALID', `auth.jwt.jwksFile: ${path} holds a private or symmetric key; it must hold public keys only`);
  }
  return value as JSONWebKeySet;
}
