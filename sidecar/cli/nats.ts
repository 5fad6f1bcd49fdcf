// `agentmesh nats config` (print a nats-server config with per-identity permissions) and `agentmesh
// nats init` (the admin creates the KV buckets). No process.* here; main.ts owns the process.
import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { MeshError } from '../../sdk/errors.ts';
import { initNatsBuckets, openAuditStream, TOOL_PIN_HISTORY } from '../../registry/index.ts';
import { loadIdentity } from '../identity/index.ts';
import { natsAccess } from '../nats/access.ts';
import { natsServerConfig, parseAgentFlag, parseGrantFlag, renderNatsConfig } from '../nats/server-config.ts';
import { AFFINITY_TTL_MS } from '../a2a/task-affinity.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import { configFromArgs, type CliContext } from './commands.ts';

export async function runNats(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const action = args.positionals[1];
  if (action === 'config') return natsConfig(args, ctx);
  if (action === 'init') return natsInit(args, ctx);
  throw new MeshError('CONFIG_INVALID', `unknown command 'nats ${action ?? ''}': use 'nats config' or 'nats init'`);
}

function natsConfig(args: ParsedArgs, ctx: CliContext): number {
  const trustDomain = stringFlag(args, 'trust-domain', true);
  const bucket = stringFlag(args, 'bucket') ?? 'agentmesh';
  const admin = stringFlag(args, 'admin');
  const listen = stringFlag(args, 'listen');
  const storeDir = stringFlag(args, 'store-dir');
  // Paths are made absolute: nats-server resolves relative ones from its own working directory.
  const file = (name: string): string => {
    const path = resolve(stringFlag(args, name, true));
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      throw new MeshError('CONFIG_INVALID', `--${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    return path;
  };
  const config = natsServerConfig({
    trustDomain, bucket,
    grants: [
      ...(args.lists.get('agent') ?? []).map((value) => parseAgentFlag(value, trustDomain)),
      ...(args.lists.get('grant') ?? []).map(parseGrantFlag),
    ],
    serverCert: file('server-cert'), serverKey: file('server-key'), bundle: file('bundle'),
    ...(admin ? { admin } : {}), ...(listen ? { listen } : {}), ...(storeDir ? { storeDir: resolve(storeDir) } : {}),
  });
  if (args.flags.get('json') === true) {
    ctx.out(JSON.stringify(config, null, 2));
    return 0;
  }
  ctx.out(renderNatsConfig(config, [
    `nats-server config for the agentmesh mesh ${trustDomain} (bucket '${bucket}'), printed by agentmesh nats config.`,
    'Clients are named by the SPIFFE ID in their TLS certificate (verify_and_map); each agent identity may write',
    `only its own registry keys; only ${config.authorization.users.at(-1)?.user ?? 'the admin'} may create, purge or delete streams.`,
    'Run: nats-server -c THIS_FILE, then create the buckets once: agentmesh nats init --config ADMIN_CONFIG',
  ]).trimEnd());
  return 0;
}

async function natsInit(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const config = await configFromArgs(args, ctx.env, ['json']);
  const servers = config.registry.nats;
  if (servers === undefined) throw new MeshError('CONFIG_INVALID', 'registry.nats: nats init needs the NATS URL (--registry.nats or the config file)');
  const { bucket, ttl } = config.registry;
  const { cert, key } = config.identity;
  if (cert === undefined || key === undefined) throw new MeshError('CONFIG_INVALID', 'identity.cert: nats init needs the admin\'s certificate files (identity.cert and identity.key)');
  const identity = await loadIdentity({ ...config.identity, cert, key });
  const created = await initNatsBuckets({
    servers, access: natsAccess(config, () => identity),
    buckets: [{ name: bucket, ttlMs: ttl }, { name: `${bucket}-tasks`, ttlMs: AFFINITY_TTL_MS }, { name: `${bucket}-policy`, ttlMs: 0 }],
  });
  // Tool pins ({bucket}-tools, no expiry) and the audit stream ({bucket}-audit): audit/, tools/.
  created.push(...await initNatsBuckets({ servers, access: natsAccess(config, () => identity), buckets: [{ name: `${bucket}-tools`, ttlMs: 0, history: TOOL_PIN_HISTORY }] }));
  await (await openAuditStream({ nats: servers, access: natsAccess(config, () => identity), bucket, name: 'agentmesh-admin' })).close();
  if (args.flags.get('json') === true) ctx.out(JSON.stringify(created, null, 2));
  else for (const b of created) ctx.out(`KV bucket '${b.bucket}' ready (max age ${b.ttlMs / 1000}s, ${b.values} values)`);
  if (args.flags.get('json') !== true) ctx.out(`stream '${bucket}-audit' ready`);
  return 0;
}
