// `agentmesh tools approve SERVER [TOOL] --ca-dir DIR`: approves the definitions the mesh announces now (as
// the local sidecar lists them, --url) with an approval signed by the mesh CA key (DIR/ca-key.pem, as
// `agentmesh ca grant` reads it) into the pin store (--nats / --config / --registry-dir), so calls resume.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import { createPinVerifier, openToolPinStore, signApproval, type ToolPin } from '../../registry/index.ts';
import { definitionHash, type ToolDefinition } from '../tools/tool-definition.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import type { CliContext } from './commands.ts';
import { storeSource } from './store-source.ts';

interface Listed { name: string; tools: ToolDefinition[]; instances: { identity: string }[] }

export async function runToolsApprove(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const [, , server, tool] = args.positionals;
  if (!server) throw new MeshError('CONFIG_INVALID', 'usage: agentmesh tools approve SERVER [TOOL] --ca-dir DIR [--url URL] [--config FILE | --nats URL | --registry-dir DIR]');
  const ca = await readCa(stringFlag(args, 'ca-dir') ?? ctx.env.AGENTMESH_CA_DIR);
  const url = stringFlag(args, 'url') ?? ctx.env.AGENTMESH_URL ?? 'http://127.0.0.1:15001';
  const res = await fetch(`${url}/registry/mcp`, { signal: ctx.signal }).catch((err: unknown) => {
    throw new MeshError('SIDECAR_UNREACHABLE', `cannot reach the sidecar at ${url}: ${(err as Error).message}`);
  });
  const { servers } = await res.json() as { servers: Listed[] };
  const found = servers.find((s) => s.name === server);
  if (!found) throw new MeshError('MCP_SERVER_NOT_FOUND', `MCP server '${server}' is not in the mesh`);
  const identity = found.instances[0]?.identity;
  if (!identity) throw new MeshError('MCP_SERVER_NOT_FOUND', `MCP server '${server}' has no live instance`);
  const tools = found.tools.filter((t) => tool === undefined || t.name === tool);
  if (tools.length === 0) throw new MeshError('MCP_TOOL_NOT_FOUND', `MCP server '${server}' has no tool '${tool ?? ''}'`);
  const source = await storeSource(args, ctx.env);
  const store = await openToolPinStore({
    bucket: source.bucket, name: 'agentmesh-cli-tools', verifier: createPinVerifier({ trustDomain: ca.trustDomain, bundle: () => ca.certPem }),
    ...(source.nats ? { nats: source.nats.servers, access: source.nats.access } : { dir: source.registryDir }),
  });
  try {
    for (const t of tools) {
      const { integrity: _shown, ...definition } = t as ToolDefinition & { integrity?: unknown };
      const pin: ToolPin = { server, tool: t.name, hash: definitionHash(definition), identity, how: 'approved', at: new Date().toISOString() };
      const { how: _how, ...unsigned } = pin;
      await store.put(pin, await signApproval(ca.keyPem, unsigned));
      ctx.out(`approved ${server}__${t.name} ${pin.hash} (announced by ${identity})`);
    }
  } finally {
    await store.close();
  }
  return 0;
}

/** The mesh CA (DIR/ca.pem and DIR/ca-key.pem, written by `agentmesh ca init`): approvals are signed with its key. */
async function readCa(dir: string | undefined): Promise<{ certPem: string; keyPem: string; trustDomain: string }> {
  if (!dir) throw new MeshError('CONFIG_INVALID', "--ca-dir: an approval is signed with the mesh CA key: name the directory holding ca.pem and ca-key.pem (or set AGENTMESH_CA_DIR)");
  const [certPem, keyPem] = await Promise.all(['ca.pem', 'ca-key.pem'].map((f) => readFile(join(dir, f), 'utf8').catch((err: unknown) => {
    throw new MeshError('CONFIG_INVALID', `--ca-dir: cannot read ${join(dir, f)} (run 'agentmesh ca init' first?): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  })));
  const trustDomain = /URI:spiffe:\/\/([a-z0-9._-]+)/.exec(new X509Certificate(certPem ?? '').subjectAltName ?? '')?.[1];
  if (!trustDomain) throw new MeshError('CONFIG_INVALID', `--ca-dir: ${join(dir, 'ca.pem')} names no spiffe:// trust domain`);
  return { certPem: certPem ?? '', keyPem: keyPem ?? '', trustDomain };
}
