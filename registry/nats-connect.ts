// The NATS connection options for a registry client: servers, mTLS with the workload certificate and
// a credentials file, read and checked before connecting so a bad file names its config key.
// Loaded only with the NATS client (nats-backend.ts, key-value-store.ts).
import { readFile } from 'node:fs/promises';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { credsAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator, type Authenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { MeshError } from '../sdk/errors.ts';
import { natsServers, type NatsAccess, type NatsTls } from './nats-access.ts';

const CredentialsSchema = z.union([
  z.strictObject({ user: z.string().min(1), password: z.string().min(1) }),
  z.strictObject({ token: z.string().min(1) }),
], { error: 'expected a NATS .creds file, or a YAML/JSON file with { user, password } or { token }' });

export type NatsAccessOptions = Pick<ConnectionOptions, 'servers' | 'tls' | 'authenticator'>;

/** Servers, TLS and authenticator for connect(); throws CONFIG_INVALID naming registry.nats / registry.credentials. */
export async function natsAccessOptions(servers: string | readonly string[], access: NatsAccess = {}): Promise<NatsAccessOptions> {
  const list = natsServers(servers);
  if (list.length === 0) throw new MeshError('CONFIG_INVALID', 'registry.nats: expected one or more NATS URLs');
  return {
    servers: list,
    ...(access.tls ? { tls: tlsOptions(access.tls) } : {}),
    ...(access.credentials !== undefined ? { authenticator: await readCredentials(access.credentials) } : {}),
  };
}

/** Reads a credentials file: a NATS .creds file, or { user, password } / { token } as YAML or JSON. */
export async function readCredentials(path: string): Promise<Authenticator> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `registry.credentials: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (text.includes('-----BEGIN NATS USER JWT-----')) {
    if (!text.includes('-----BEGIN USER NKEY SEED-----')) throw new MeshError('CONFIG_INVALID', `registry.credentials: ${path} holds a user JWT but no nkey seed`);
    return credsAuthenticator(new TextEncoder().encode(text));
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    parsed = undefined;
  }
  const result = CredentialsSchema.safeParse(parsed);
  // The file's content is secret: the error names the file and the expected shape, never what was found.
  if (!result.success) throw new MeshError('CONFIG_INVALID', `registry.credentials: ${path}: ${result.error.issues[0]?.message ?? 'invalid'}`);
  const creds = result.data;
  return 'token' in creds ? tokenAuthenticator(creds.token) : usernamePasswordAuthenticator(creds.user, creds.password);
}

/**
 * The client side of mTLS to NATS: our workload certificate, the bundle as CA, and the server check.
 * The Node transport copies these fields into tls.connect options at every (re)connect (its TlsOptions
 * type lists only cert/key/ca, but it passes everything through), so getters hand it the current PEMs.
 */
function tlsOptions(tls: NatsTls): NonNullable<ConnectionOptions['tls']> {
  const { serverId } = tls;
  const options = {
    get cert(): string { return tls.current().certPem; },
    get key(): string { return tls.current().keyPem; },
    get ca(): string { return tls.current().bundlePem; },
    checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
      const byName = checkServerIdentity(host, cert);
      if (!byName || serverId === undefined) return byName;
      const uris = (cert.subjectaltname ?? '').split(/,\s*/).filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
      return uris.length === 1 && uris[0] === serverId ? undefined : byName;
    },
  };
  return options;
}
