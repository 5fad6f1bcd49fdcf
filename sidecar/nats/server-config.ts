// `agentmesh nats config`: a nats-server (2.9+) configuration for a mesh. TLS verify_and_map names
// each client by its certificate's SPIFFE ID; each identity may publish only its own registry keys
// and the JetStream API calls a KV reader needs; nobody but the admin may create, purge or delete.
import { MeshError } from '../../sdk/errors.ts';
import { NAME_PATTERN } from '../../registry/index.ts';
import { parseSpiffeId, parseWorkloadId } from '../identity/index.ts';

export interface MeshIdentityGrant {
  /** The agent name: the identity is spiffe://TD/agent/NAME and may write agents.NAME.* */
  agent: string;
  /** MCP server names it fronts: it may write mcp.SERVER.* */
  mcp: readonly string[];
}

export interface NatsServerConfigOptions {
  trustDomain: string;
  bucket: string;
  agents: readonly MeshIdentityGrant[];
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

/** The subjects a sidecar with this grant may publish to: its own keys, the shared tasks bucket, and reading/watching KV. */
export function identityPublishAllow(bucket: string, grant: MeshIdentityGrant): string[] {
  const streams = [`KV_${bucket}`, `KV_${bucket}-tasks`];
  return [
    `$KV.${bucket}.agents.${grant.agent}.>`,
    ...grant.mcp.map((server) => `$KV.${bucket}.mcp.${server}.>`),
    `$KV.${bucket}-tasks.>`,
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

export function natsServerConfig(options: NatsServerConfigOptions): NatsServerConfig {
  const { trustDomain, bucket } = options;
  flagged('--trust-domain', () => parseSpiffeId(`spiffe://${trustDomain}`));
  if (!/^[-\w]+$/.test(bucket)) throw new MeshError('CONFIG_INVALID', `--bucket: '${bucket}' is not a valid KV bucket name (letters, digits, '-' and '_')`);
  const admin = flagged('--admin', () => parseWorkloadId(options.admin ?? `spiffe://${trustDomain}/admin`, trustDomain).id);
  if (options.agents.length === 0) throw new MeshError('CONFIG_INVALID', '--agent: name at least one agent identity (--agent NAME[=mcp1,mcp2])');
  const seen = new Set<string>();
  const users: NatsUser[] = options.agents.map((grant) => {
    for (const name of [grant.agent, ...grant.mcp]) {
      if (!NAME_PATTERN.test(name) || name.includes('__')) throw new MeshError('CONFIG_INVALID', `--agent: '${name}' is not a valid agent or MCP server name (1-64 characters from [A-Za-z0-9_-], no '__')`);
    }
    const user = parseWorkloadId(`spiffe://${trustDomain}/agent/${grant.agent}`, trustDomain).id;
    if (seen.has(user) || user === admin) throw new MeshError('CONFIG_INVALID', `--agent: '${grant.agent}' is named twice`);
    seen.add(user);
    return {
      user,
      permissions: { publish: { allow: identityPublishAllow(bucket, grant), deny: DENIED }, subscribe: { allow: ['_INBOX.>'] } },
    };
  });
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

/** `NAME` or `NAME=mcp1,mcp2` (the form of --agent). */
export function parseGrant(value: string): MeshIdentityGrant {
  const eq = value.indexOf('=');
  const agent = eq === -1 ? value : value.slice(0, eq);
  const mcp = eq === -1 ? [] : value.slice(eq + 1).split(',').map((s) => s.trim()).filter((s) => s !== '');
  return { agent, mcp };
}
