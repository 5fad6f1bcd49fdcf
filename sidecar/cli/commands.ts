// The `agentmesh` subcommands. Each takes parsed arguments and an output sink and returns an exit
// code; none touches process.* (main.ts does).
import { writeFile, rename } from 'node:fs/promises';
import { MeshError } from '../../sdk/errors.ts';
import type { Mesh } from '../../sdk/index.ts';
import { CONFIG_KEYS, readConfigFile, resolveConfig, parseDuration, type SidecarConfig } from '../config.ts';
import { caGrant, caInit, caIssue } from '../identity/index.ts';
import { createLogger } from '../log.ts';
import { startSidecar, type Sidecar } from '../sidecar.ts';
import { listFlag, stringFlag, type ParsedArgs } from './args.ts';
import { formatEvent, table } from './format.ts';
import { unknownVariables } from './env-check.ts';
import { noAgentsLine, withAgentHint } from './agent-hints.ts';

export interface CliContext {
  out: (line: string) => void;
  env: Record<string, string | undefined>;
  /** Aborted on SIGINT / SIGTERM. */
  signal: AbortSignal;
}

/** Loads --config (optional), AGENTMESH_* variables and dotted --key flags into a frozen config. */
export async function configFromArgs(args: ParsedArgs, env: CliContext['env'], reserved: readonly string[]): Promise<SidecarConfig> {
  const path = stringFlag(args, 'config') ?? env.AGENTMESH_CONFIG;
  const file = path ? await readConfigFile(path) : undefined;
  const flags: Record<string, string> = {};
  for (const [name, value] of args.flags) {
    if (name === 'config' || reserved.includes(name)) continue;
    if (value === true) throw new MeshError('CONFIG_INVALID', `--${name} needs a value`);
    flags[name] = value;
  }
  return resolveConfig({ file, env, flags });
}

export async function runSidecar(args: ParsedArgs, ctx: CliContext): Promise<{ sidecar: Sidecar }> {
  const config = await configFromArgs(args, ctx.env, ['ready-file']);
  const log = createLogger(config.log.level);
  for (const v of unknownVariables(ctx.env)) log.warn({ variable: v.name, didYouMean: v.suggestion }, `${v.name} is not a variable agentmesh reads${v.suggestion ? ` (did you mean ${v.suggestion}?)` : ''}`);
  const sidecar = await startSidecar(config, log);
  const readyFile = stringFlag(args, 'ready-file');
  if (readyFile) {
    await writeFile(`${readyFile}.tmp`, JSON.stringify(sidecar.addresses));
    await rename(`${readyFile}.tmp`, readyFile);
  }
  return { sidecar };
}

export async function runValidate(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const config = await configFromArgs(args, ctx.env, ['json']);
  // The files and the identity too: a config naming a missing certificate is not valid.
  const { validateIdentity } = await import('./validate-identity.ts');
  const problems = await validateIdentity(config);
  if (args.flags.get('json') === true) ctx.out(JSON.stringify({ valid: problems.length === 0, problems }, null, 2));
  else if (problems.length > 0) for (const p of problems) ctx.out(p);
  else ctx.out(`config is valid (agent: ${config.agent?.name ?? config.agent?.url ?? 'none'}, registry: ${config.registry.nats ?? 'embedded'})`);
  return problems.length === 0 ? 0 : 1;
}

export async function runCa(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const action = args.positionals[1];
  if (action === 'init') {
    const written = await caInit({ trustDomain: stringFlag(args, 'trust-domain', true), dir: stringFlag(args, 'dir', true) });
    ctx.out(args.flags.get('json') === true ? JSON.stringify(written) : `mesh CA written: ${Object.values(written).join(', ')}`);
    return 0;
  }
  if (action === 'issue') {
    const ttl = stringFlag(args, 'ttl') ?? '24h';
    const ttlMs = parseDuration(ttl);
    if (ttlMs === undefined || ttlMs <= 0) throw new MeshError('CONFIG_INVALID', `--ttl: expected a duration like 24h, got '${ttl}'`);
    const written = await caIssue({ dir: stringFlag(args, 'dir', true), id: stringFlag(args, 'id', true), out: stringFlag(args, 'out', true), ttlMs });
    ctx.out(args.flags.get('json') === true ? JSON.stringify(written) : `workload certificate written: ${Object.values(written).join(', ')}`);
    return 0;
  }
  if (action === 'serve') return (await import('./ca-commands.ts')).runCaServe(args, ctx);
  if (action === 'token') return (await import('./ca-commands.ts')).runCaToken(args, ctx);
  if (action === 'grant') {
    const ttl = stringFlag(args, 'ttl');
    const ttlMs = ttl === undefined ? undefined : parseDuration(ttl);
    if (ttlMs !== undefined && ttlMs <= 0) throw new MeshError('CONFIG_INVALID', `--ttl: expected a duration like 365d, got '${ttl ?? ''}'`);
    if (ttl !== undefined && ttlMs === undefined) throw new MeshError('CONFIG_INVALID', `--ttl: expected a duration like 365d, got '${ttl}'`);
    const out = await caGrant({
      dir: stringFlag(args, 'dir', true), identity: stringFlag(args, 'identity', true), out: stringFlag(args, 'out', true),
      agents: listFlag(args, 'agent'), mcp: listFlag(args, 'mcp'), ...(ttlMs === undefined ? {} : { ttlMs }),
    });
    ctx.out(`name grant written: ${out} (add it to the sidecar's identity.grants)`);
    return 0;
  }
  throw new MeshError('CONFIG_INVALID', `unknown command 'ca ${action ?? ''}': use 'ca init', 'ca issue', 'ca grant', 'ca serve' or 'ca token'`);
}

export async function runAgents(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const mesh = await meshFor(args, ctx);
  const skill = stringFlag(args, 'skill');
  const agents = await mesh.agents(skill ? { skill } : {}, { signal: ctx.signal });
  if (args.flags.get('json') === true) {
    ctx.out(JSON.stringify(agents, null, 2));
    return 0;
  }
  const rows = [['NAME', 'INSTANCES', 'SKILLS', 'IDENTITY']];
  for (const a of agents) {
    const skills = ((a.card as { skills?: { id: string }[] }).skills ?? []).map((s) => s.id).join(',');
    rows.push([a.name, String(a.instances.length), skills, [...new Set(a.instances.map((i) => i.identity))].join(' ')]);
  }
  ctx.out(agents.length === 0 ? await noAgentsLine(mesh, skill, ctx.signal) : table(rows));
  return 0;
}

export async function runTools(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const mesh = await meshFor(args, ctx);
  const servers = await mesh.mcpServers({ signal: ctx.signal });
  if (args.flags.get('json') === true) {
    ctx.out(JSON.stringify(servers, null, 2));
    return 0;
  }
  const rows = [['TOOL (on /mcp)', 'SERVER', 'INSTANCES', 'INTEGRITY', 'DESCRIPTION']];
  for (const s of servers) {
    for (const t of s.tools) {
      const integrity = (t as { integrity?: { state?: string; flags?: string[] } }).integrity;
      const state = integrity ? `${integrity.state ?? ''}${integrity.flags ? ` flagged:${integrity.flags.join(',')}` : ''}` : '-';
      rows.push([`${s.name}__${t.name}`, s.name, String(s.instances.length), state, visible((t.description ?? '').split('\n')[0]?.slice(0, 60) ?? '')]);
    }
  }
  ctx.out(servers.length === 0 ? 'no MCP servers registered' : table(rows));
  return 0;
}

export async function runCall(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const [, agent, ...words] = args.positionals;
  if (!agent || words.length === 0) throw new MeshError('CONFIG_INVALID', 'usage: agentmesh call AGENT "text"');
  const mesh = await meshFor(args, ctx);
  const json = args.flags.get('json') === true;
  try {
    for await (const event of mesh.stream(agent, words.join(' '), { signal: ctx.signal })) {
      const line = json ? JSON.stringify(event.payload ?? null) : formatEvent(event);
      if (line) ctx.out(line);
    }
  } catch (err) {
    throw await withAgentHint(err, mesh, agent, ctx.signal);
  }
  return 0;
}

/** Invisible and bidirectional characters shown as \u{…} escapes, so a terminal shows what a model would read. */
function visible(text: string): string {
  return text.replace(/[\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF\u{E0000}-\u{E007F}]/gu, (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`);
}

/** The SDK (A2A and MCP clients) loads only for the commands that call a sidecar, not into `agentmesh sidecar`. */
async function meshFor(args: ParsedArgs, ctx: CliContext): Promise<Mesh> {
  const { connectMesh } = await import('../../sdk/index.ts');
  return connectMesh({ url: stringFlag(args, 'url') ?? ctx.env.AGENTMESH_URL ?? 'http://127.0.0.1:15001' });
}

export const USAGE = `usage: agentmesh <command>

  sidecar --config FILE [--ready-file FILE] [--<key> VALUE ...]   run a sidecar
  run --config FILE [--ready-file FILE] [--<key> VALUE ...] -- COMMAND [ARGS ...]
                                                                  run an agent and its sidecar together (AGENTMESH_URL set
                                                                  for the agent; signals reach both; exits with the agent's code)
  validate --config FILE [--json]                                 check a config, its files and its identity
  ca init --trust-domain TD --dir DIR [--json]                     create a mesh CA
  ca issue --dir DIR --id spiffe://TD/agent/NAME --out OUT [--ttl 24h] [--json]
  ca grant --dir DIR --identity spiffe://TD/… [--agent NAME ...] [--mcp NAME ...] --out FILE [--ttl 365d]
                                                                  grant names to an identity (CA-signed)
  nats config --trust-domain TD --agent NAME[=mcp1,mcp2] ... [--grant ID=agent:NAME,mcp:SERVER ...]
        --server-cert F --server-key F --bundle F [--bucket agentmesh] [--admin spiffe://TD/admin] [--listen 0.0.0.0:4222] [--store-dir DIR] [--json]
                                                                  print a nats-server config with per-identity permissions
  nats init --config FILE                                         create the KV buckets (as the NATS admin)
  ca serve --dir DIR [--listen 127.0.0.1:15100] [--svid-ttl 1h] [--ready-file FILE]   run the online CA
  ca token --dir DIR --id spiffe://TD/agent/NAME [--ttl 15m] [--json]          a one-time join token
  policy apply FILE --config F [--json]                           validate a policy and store it as the next version
  policy get --config F [--json]                                  print the policy in force in the mesh
  explain --from ID --to agent:NAME|mcp:NAME [--method M] [--tool T] [--user CLAIMS-JSON] [--via ID,...]
        [--args JSON] [--policy FILE | --config F] [--json]      the decision and the rule for one call
  agents [--skill S] [--json] [--url URL]                         list agents in the registry
  tools [--json] [--url URL]                                      list MCP servers and their tools (integrity: pinned, changed, flagged …)
  tools approve SERVER [TOOL] --ca-dir DIR [--url URL] [--config F | --nats URL | --registry-dir D]
                                                                  approve the tool definitions announced now (signed with the CA key)
  audit tail [--follow] [--agent A] [--json] [--config F | --nats URL [--bucket B] | --dir D | --file F]
                                                                  print audit records
  audit verify [--json] [--config F | --nats URL [--bucket B] | --dir D | --file F]
                                                                  check the hash chains; names the first bad record
  call AGENT "text" [--json] [--url URL]                          send a message, print the stream
  tap [--agent A] [--method M] [--direction D] [--json] [--count N] [--admin URL]
                                                                  watch a sidecar's calls live (its admin listener's /api/tap)
  check [--config FILE] [--json] [--timeout 3s]                   check certificates, NATS, ports, the agent's card, policy.file
  demo [--keep]                                                   run the multi-agent demo (--keep: leave it up to try the CLI)
  --version, COMMAND --help, --debug (stack traces on errors)

config keys (flags --<key>, or AGENTMESH_<KEY> variables): ${CONFIG_KEYS.join(', ')}`;
