// Name grants on the sidecar's side: `agentmesh ca grant` writes one (signed with the CA key), the
// sidecar loads those in `identity.grants` (checked against its bundle and identity) and refuses at
// start-up to announce a name its identity does not own (counting the mesh policy's registrations too).
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import { nameOwnership, signGrant, verifyGrant, type Grant, type Registrations } from '../../registry/index.ts';
import { parseWorkloadId } from './spiffe.ts';
import type { Identity } from './tls.ts';

export interface LoadedGrants {
  /** The grant tokens, attached to every record this sidecar writes. */
  tokens: string[];
  registrations: Registrations[];
}

/** `agentmesh ca grant`: signs a grant of agent and MCP server names to `identity` with the CA in `dir`. */
export async function caGrant(options: { dir: string; identity: string; agents: readonly string[]; mcp: readonly string[]; out: string; ttlMs?: number }): Promise<string> {
  if (options.agents.length === 0 && options.mcp.length === 0) throw new MeshError('CONFIG_INVALID', 'ca grant: name at least one --agent or --mcp');
  const caCertPem = await readCa(join(options.dir, 'ca.pem'));
  const caKeyPem = await readCa(join(options.dir, 'ca-key.pem'));
  const trustDomain = /URI:spiffe:\/\/([a-z0-9._-]+)/.exec(new X509Certificate(caCertPem).subjectAltName ?? '')?.[1];
  if (trustDomain) parseWorkloadId(options.identity, trustDomain);
  const token = await signGrant({ caKeyPem, identity: options.identity, agents: options.agents, mcp: options.mcp, ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }) });
  await writeFile(options.out, `${token}\n`, { mode: 0o644 });
  return options.out;
}

/** Reads and checks `identity.grants`: each signed by a CA in the bundle, for this identity, in force. */
export async function loadGrants(files: readonly string[], identity: Identity): Promise<LoadedGrants> {
  const roots = (identity.bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem).publicKey);
  const loaded: LoadedGrants = { tokens: [], registrations: [] };
  for (const [i, file] of files.entries()) {
    const where = `identity.grants[${i}] (${file})`;
    let token: string;
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new MeshError('CONFIG_INVALID', `${where}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    let grant: Grant;
    try {
      grant = verifyGrant(token, roots);
    } catch (err) {
      throw new MeshError('CONFIG_INVALID', `${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (grant.identity !== identity.id) throw new MeshError('CONFIG_INVALID', `${where}: the grant is for ${grant.identity}, not this sidecar's identity ${identity.id}`);
    loaded.tokens.push(token);
    loaded.registrations.push(grant);
  }
  return loaded;
}

/**
 * Throws IDENTITY_INVALID, naming both, when `identity` may not announce the agent name `name` with the
 * grants it holds and the names the mesh policy's `registrations` give it (`policy`).
 */
export function assertOwnsAgentName(name: string, identity: Identity, grants: LoadedGrants, policy: readonly Registrations[] = []): void {
  if (nameOwnership('agent', name, identity.id, identity.trustDomain, [...grants.registrations, ...policy]) !== 'none') return;
  throw new MeshError('IDENTITY_INVALID',
    `agent.name '${name}' is not owned by this sidecar's identity ${identity.id}: it belongs to spiffe://${identity.trustDomain}/agent/${name}, or to an identity granted it (agentmesh ca grant and identity.grants, or the mesh policy's registrations)`);
}

async function readCa(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `cannot read ${path} (run 'agentmesh ca init' first?): ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
