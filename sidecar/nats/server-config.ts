// `agentmesh nats config`: a nats-server (2.9+) configuration for a mesh. TLS verify_and_map names
// each client by its certificate's SPIFFE ID; each identity may publish only its own registry keys
// and the JetStream API calls a KV reader needs; nobody but the admin may create, purge or delete.
import { MeshError } from '../../sdk/errors.ts';
import { NAME_PATTERN } from '../../registry/index.ts';
import { parseSpiffeId, parseWorkloadId } from '../identity/index.ts';

export interface MeshIdentityGrant {
  /** The client's SPIFFE ID; `--agent NAME` means spiffe://TD/agent/NAME. */
  id: string;
  /** Agent names it may announce: it may write agents.NAME.* */
  agents: readonly string[];
  /** MCP server names it fronts: it may write mcp.SERVER.* */
  mcp: readonly string[];
}

export interface NatsServerConfigOptions {
  trustDomain: string;
  bucket: string;
  /** One per identity; several for one ID are merged. */
  grants: readonly MeshIdentityGrant[];
  /** The SPIFFE ID with every permission (creates the buckets); default spiffe://TD/admin. */
  admin?: string;
  /** The server's certificate and key (a DNS/IP SAN for its host name, or spiffe://TD/nats), and the mesh bundle. */
  serverCert: string;
  serverKey: string;
  bundle: string;
  /** host:port; default 0.0.0.0:4222. */
  listen?: string;
  /** JetStream's store directory; default ./nats-data. */
  storeDir?: string;
}

export interface NatsUser {
  user: string;
  permissions?: { publish: { allow: string[]; deny: string[] }; subscribe: { allow: string[] } };
}

export interface NatsServerConfig {
  listen: string;
  jetstream: { store_dir: string };
  tls: { cert_file: string; key_file: string; ca_file: string; verify_and_map: true; timeout: number };
  authorization: { users: NatsUser[] };
}

/** Only the admin changes streams, and nobody deletes stored messages behind the KV API. */
const DENIED = ['$JS.API.STREAM.CREATE.>', '$JS.API.STREAM.UPDATE.>', '$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>',
  '$JS.API.STREAM.MSG.DELETE.>', '$JS.API.STREAM.SNAPSHOT.>', '$JS.API.STREAM.RESTORE.>'];

/** The subjects a sidecar with this grant may publish to: its own keys, the shared tasks bucket, and reading/watching KV (also the policy, which only the admin writes). */
export function identityPublishAllow(bucket: string, grant: MeshIdentityGrant): string[] {
  const streams = [`KV_${bucket}`, `KV_${bucket}-tasks`, `KV_${bucket}-policy`];
  return [
    ...grant.agents.map((agent) => `$KV.${bucket}.agents.${agent}.>`),
    ...grant.mcp.map((server) => `$KV.${bucket}.mcp.${server}.>`),
    `$KV.${bucket}-tasks.>`,
    ...auditPublishAllow(bucket, grant.id),
    '$JS.API.INFO',
    ...streams.flatMap((s) => [
      `$JS.API.STREAM.INFO.${s}`,
      `$JS.API.CONSUMER.CREATE.${s}`, `$JS.API.CONSUMER.CREATE.${s}.>`,
      `$JS.API.CONSUMER.DELETE.${s}.>`, `$JS.API.CONSUMER.INFO.${s}.>`,
      `$JS.API.DIRECT.GET.${s}`, `$JS.API.DIRECT.GET.${s}.>`, `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.FC.${s}.>`,
    ]),
  ];
}

/**
 * Audit and tool integrity: append to its own audit subject ({bucket}-audit.{identity name}.>), read the
 * stream's last message (to continue the chain), and read and write tool pins ({bucket}-tools).
 */
function auditPublishAllow(bucket: string, id: string): string[] {
  const audit = `${bucket}-audit`;
  const tools = `KV_${bucket}-tools`;
  return [
    `${audit}.${auditOwner(id)}.>`, `$JS.API.STREAM.INFO.${audit}`, `$JS.API.STREAM.MSG.GET.${audit}`,
    `$KV.${bucket}-tools.>`, `$JS.API.STREAM.INFO.${tools}`, `$JS.API.CONSUMER.CREATE.${tools}`, `$JS.API.CONSUMER.CREATE.${tools}.>`,
    `$JS.API.CONSUMER.DELETE.${tools}.>`, `$JS.API.CONSUMER.INFO.${tools}.>`, `$JS.API.DIRECT.GET.${tools}`, `$JS.API.DIRECT.GET.${tools}.>`,
    `$JS.API.STREAM.MSG.GET.${tools}`, `$JS.FC.${tools}.>`,
  ];
}

/** The subject token naming a sidecar identity in the audit stream: the last segment of its SPIFFE path. */
export function auditOwner(id: string): string {
  return (id.split('/').pop() ?? 'unknown').replace(/[^A-Za-z0-9_-]/g, '_') || 'unknown';
}

export function natsServerConfig(options: NatsServerConfigOptions): NatsServerConfig {
  const { trustDomain, bucket } = options;
  flagged('--trust-domain', () => parseSpiffeId(`spiffe://${trustDomain}`));
  if (!/^[-\w]+$/.test(bucket)) throw new MeshError('CONFIG_INVALID', `--bucket: '${bucket}' is not a valid KV bucket name (letters, digits, '-' and '_')`);
  const admin = flagged('--admin', () => parseWorkloadId(options.admin ?? `spiffe://${trustDomain}/admin`, trustDomain).id);
  if (options.grants.length === 0) throw new MeshError('CONFIG_INVALID', '--agent: name at least one identity (--agent NAME[=mcp1,mcp2] or --grant ID=agent:NAME,mcp:SERVER)');
  const merged = new Map<string, { agents: Set<string>; mcp: Set<string> }>();
  for (const grant of options.grants) {
    const id = flagged('--grant', () => parseWorkloadId(grant.id, trustDomain).id);
    if (id === admin) throw new MeshError('CONFIG_INVALID', `--grant: ${id} is the admin (--admin), which may do everything already`);
    for (const name of [...grant.agents, ...grant.mcp]) {
      if (!NAME_PATTERN.test(name) || name.includes('__')) throw new MeshError('CONFIG_INVALID', `--agent/--grant: '${name}' is not a valid agent or MCP server name (1-64 characters from [A-Za-z0-9_-], no '__')`);
    }
    const entry = merged.get(id) ?? { agents: new Set<string>(), mcp: new Set<string>() };
    for (const name of grant.agents) entry.agents.add(name);
    for (const name of grant.mcp) entry.mcp.add(name);
    merged.set(id, entry);
  }
  const users: NatsUser[] = [...merged].map(([id, names]) => ({
    user: id,
    permissions: {
      publish: { allow: identityPublishAllow(bucket, { id, agents: [...names.agents], mcp: [...names.mcp] }), deny: DENIED },
      subscribe: { allow: ['_INBOX.>'] },
    },
  }));
  return {
    listen: options.listen ?? '0.0.0.0:4222',
    jetstream: { store_dir: options.storeDir ?? './nats-data' },
    tls: { cert_file: options.serverCert, key_file: options.serverKey, ca_file: options.bundle, verify_and_map: true, timeout: 5 },
    authorization: { users: [...users, { user: admin }] },
  };
}

/** Runs `parse`, turning an error into CONFIG_INVALID naming `flag`. */
function flagged<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `${flag}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** nats-server reads JSON as its config format; a comment header says what the file is. */
export function renderNatsConfig(config: NatsServerConfig, header: readonly string[]): string {
  return `${header.map((line) => `# ${line}`).join('\n')}\n${JSON.stringify(config, null, 2)}\n`;
}

/** `--agent NAME` or `NAME=mcp1,mcp2`: spiffe://TD/agent/NAME may announce agent NAME and those MCP servers. */
export function parseAgentFlag(value: string, trustDomain: string): MeshIdentityGrant {
  const eq = value.indexOf('=');
  const agent = eq === -1 ? value : value.slice(0, eq);
  return { id: `spiffe://${trustDomain}/agent/${agent}`, agents: [agent], mcp: eq === -1 ? [] : list(value.slice(eq + 1)) };
}

/** `--grant ID=agent:NAME,mcp:SERVER,…`: names the mesh authority granted to ID (identity.grants), beyond its own. */
export function parseGrantFlag(value: string): MeshIdentityGrant {
  const eq = value.indexOf('=');
  if (eq === -1) throw new MeshError('CONFIG_INVALID', `--grant: expected ID=agent:NAME,mcp:SERVER, got '${value}'`);
  const agents: string[] = [];
  const mcp: string[] = [];
  for (const item of list(value.slice(eq + 1))) {
    const [kind, name] = item.split(':', 2);
    if (kind === 'agent' && name) agents.push(name);
    else if (kind === 'mcp' && name) mcp.push(name);
    else throw new MeshError('CONFIG_INVALID', `--grant: expected agent:NAME or mcp:SERVER, got '${item}'`);
  }
  return { id: value.slice(0, eq), agents, mcp };
}

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}
