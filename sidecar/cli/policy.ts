// `agentmesh policy apply FILE | get` (the mesh policy in the registry's policy store) and `agentmesh
// explain` (the decision and the rule for one call, by the engine the sidecars enforce with). No process.*.
import { readFile } from 'node:fs/promises';
import { MeshError } from '../../sdk/errors.ts';
import { openPolicyStore, type PolicyStore, type StoredPolicy } from '../../registry/index.ts';
import { rpcMethod } from '../a2a/methods.ts';
import { natsAccess } from '../nats/access.ts';
import { loadIdentity } from '../identity/index.ts';
import { CompiledPolicy, describeCall, type PolicyCall, type PolicyDecision, type ResolvedLimit } from '../policy/policy-engine.ts';
import { parsePolicy } from '../policy/policy-schema.ts';
import { defaultRegistryDir } from '../sidecar.ts';
import { stringFlag, type ParsedArgs } from './args.ts';
import { configFromArgs, type CliContext } from './commands.ts';
import type { SidecarConfig } from '../config.ts';
import type { Registrations } from '../../registry/index.ts';

const RESERVED = ['json', 'policy', 'from', 'user', 'via', 'to', 'method', 'tool', 'args'];

export async function runPolicy(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const action = args.positionals[1];
  if (action === 'apply') return policyApply(args, ctx);
  if (action === 'get') return policyGet(args, ctx);
  throw new MeshError('CONFIG_INVALID', `unknown command 'policy ${action ?? ''}': use 'policy apply FILE' or 'policy get'`);
}

/** The policy store the sidecars of this config read (`--config`: registry.nats / registry.dir, registry.bucket). */
async function storeFor(args: ParsedArgs, ctx: CliContext): Promise<PolicyStore> {
  const config = await configFromArgs(args, ctx.env, RESERVED);
  if (config.policy.file !== undefined) {
    throw new MeshError('CONFIG_INVALID', `policy.file: this config reads its policy from ${config.policy.file}; edit that file instead`);
  }
  return storeOf(config);
}

/**
 * The names the policy a sidecar of `config` would run (policy.file, else the policy store) registers for
 * `identity`, for `agentmesh check`'s name binding; [] without a policy or when it cannot be read (check
 * reports the policy and NATS on their own lines).
 */
export async function policyRegistrations(config: SidecarConfig, identity: string): Promise<Registrations[]> {
  try {
    let text: string | undefined;
    if (config.policy.file !== undefined) text = await readFile(config.policy.file, 'utf8');
    else {
      const store = await storeOf(config);
      try {
        text = (await store.get())?.text;
      } finally {
        await store.close();
      }
    }
    const mine = text === undefined ? undefined : new CompiledPolicy(parsePolicy(text, 'policy'), 0).registrationsOf(identity);
    return mine ? [mine] : [];
  } catch {
    return [];
  }
}

async function storeOf(config: SidecarConfig): Promise<PolicyStore> {
  const { nats, bucket, dir } = config.registry;
  if (nats === undefined) return openPolicyStore({ bucket, dir: dir ?? defaultRegistryDir() });
  const { cert, key } = config.identity;
  if (config.registry.tls && (cert === undefined || key === undefined)) {
    throw new MeshError('CONFIG_INVALID', 'identity.cert: registry.tls needs certificate files (identity.cert and identity.key)');
  }
  const identity = config.registry.tls && cert !== undefined && key !== undefined ? await loadIdentity({ ...config.identity, cert, key }) : undefined;
  return openPolicyStore({ bucket, nats, once: true, access: natsAccess(config, () => {
    if (!identity) throw new MeshError('CONFIG_INVALID', 'registry.tls: no identity loaded');
    return identity;
  }), name: 'agentmesh-policy-cli' });
}

async function readPolicyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new MeshError('CONFIG_INVALID', `cannot read policy file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

async function policyApply(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const path = args.positionals[2];
  if (!path) throw new MeshError('CONFIG_INVALID', 'usage: agentmesh policy apply FILE --config SIDECAR_CONFIG');
  const text = await readPolicyFile(path);
  const document = parsePolicy(text, path); // validated before anything is stored
  const store = await storeFor(args, ctx);
  try {
    const stored = await store.put(text);
    if (args.flags.get('json') === true) ctx.out(JSON.stringify({ version: stored.version, appliedAt: stored.appliedAt, store: store.where }));
    else ctx.out(`policy version ${stored.version} applied to ${store.where} (${document.mode}, default ${document.default}, ${document.rules.length} rules)`);
  } finally {
    await store.close();
  }
  return 0;
}

async function policyGet(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const store = await storeFor(args, ctx);
  let stored: StoredPolicy | undefined;
  try {
    stored = await store.get();
  } finally {
    await store.close();
  }
  if (args.flags.get('json') === true) {
    ctx.out(JSON.stringify(stored ? { ...stored, document: parsePolicy(stored.text, `version ${stored.version}`) } : { version: null }, null, 2));
    return 0;
  }
  if (!stored) {
    ctx.out(`no policy in ${store.where}: sidecars allow every call`);
    return 0;
  }
  ctx.out(`# policy version ${stored.version}, applied ${stored.appliedAt}, in ${store.where}`);
  ctx.out(stored.text.trimEnd());
  return 0;
}

/** The call `explain` asks about, from its flags. */
export function callFromFlags(args: ParsedArgs): PolicyCall {
  const caller = stringFlag(args, 'from', true);
  const to = stringFlag(args, 'to', true);
  const m = /^(agent|mcp):([A-Za-z0-9_-]{1,64})$/.exec(to);
  if (!m?.[1] || !m[2]) throw new MeshError('CONFIG_INVALID', `--to: expected agent:NAME or mcp:NAME, got '${to}'`);
  const kind = m[1] === 'agent' ? 'agent' : 'mcp';
  const tool = stringFlag(args, 'tool');
  if (tool !== undefined && kind === 'agent') throw new MeshError('CONFIG_INVALID', '--tool: only for --to mcp:NAME');
  let method = stringFlag(args, 'method') ?? (kind === 'agent' ? 'SendMessage' : tool !== undefined ? 'tools/call' : 'tools/list');
  if (kind === 'agent' && method !== 'agent-card') {
    const resolved = rpcMethod(method);
    if (!resolved) throw new MeshError('CONFIG_INVALID', `--method: unknown A2A method '${method}'`);
    method = resolved.method.name;
  }
  const call: PolicyCall = { caller, target: { kind, name: m[2] }, method, tool };
  const user = stringFlag(args, 'user');
  if (user !== undefined) call.user = jsonFlag('user', user);
  const via = stringFlag(args, 'via');
  if (via !== undefined) call.via = via.split(',').map((s) => s.trim()).filter(Boolean);
  const toolArgs = stringFlag(args, 'args');
  if (toolArgs !== undefined) call.args = jsonFlag('args', toolArgs);
  return call;
}

/** `--user` is the claims object (`{"sub":"u1","role":"analyst"}`); its `sub` is the subject. */
function jsonFlag(name: string, value: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new MeshError('CONFIG_INVALID', `--${name}: expected a JSON object, got '${value}'`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MeshError('CONFIG_INVALID', `--${name}: expected a JSON object`);
  if (name !== 'user') return parsed;
  const claims = parsed as Record<string, unknown>;
  return { ...(typeof claims.sub === 'string' ? { subject: claims.sub } : {}), claims };
}

export interface Explanation extends PolicyDecision {
  call: string;
  caller: string;
  /** The policy's `limits` the receiving sidecar applies to this caller (and user) calling this target. */
  limits: readonly ResolvedLimit[];
}

/** The decision for one call under `policy` (what a sidecar running it would enforce), and the limits on it. */
export function explain(policy: CompiledPolicy, call: PolicyCall): Explanation {
  return { ...policy.decide(call), call: describeCall(call), caller: call.caller, limits: policy.limitsFor(call.caller, call.target, call.user) };
}

/** `one-a-second (rate 1/1s, burst 2, concurrency 4)` */
function describeLimit(limit: ResolvedLimit): string {
  const parts = [
    ...(limit.rate ? [`rate ${limit.rate.tokens}/${limit.rate.perMs / 1000}s`] : []),
    ...(limit.burst === undefined ? [] : [`burst ${limit.burst}`]),
    ...(limit.concurrency === undefined ? [] : [`concurrency ${limit.concurrency}`]),
  ];
  return `${limit.name} (${parts.join(', ')})`;
}

export async function runExplain(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const call = callFromFlags(args);
  const path = stringFlag(args, 'policy');
  let policy: CompiledPolicy | undefined;
  if (path !== undefined) policy = new CompiledPolicy(parsePolicy(await readPolicyFile(path), path), 0);
  else {
    const store = await storeFor(args, ctx);
    try {
      const stored = await store.get();
      if (stored) policy = new CompiledPolicy(parsePolicy(stored.text, `version ${stored.version} in ${store.where}`), stored.version);
    } finally {
      await store.close();
    }
  }
  const result: Explanation = policy
    ? explain(policy, call)
    : { allowed: true, rule: undefined, reason: 'no policy: every call is allowed', mode: 'enforce', version: 0, call: describeCall(call), caller: call.caller, limits: [] };
  if (args.flags.get('json') === true) {
    ctx.out(JSON.stringify({ decision: result.allowed ? 'allow' : 'deny', ...result }, null, 2));
    return 0;
  }
  ctx.out(`${result.allowed ? 'ALLOW' : 'DENY'}  ${result.call} to ${result.caller}`);
  ctx.out(`  ${result.rule === undefined ? 'rule: (none)' : `rule: ${result.rule}`}; ${result.reason}`);
  ctx.out(`  policy: ${path ?? (policy ? `version ${policy.version}` : 'none')}, mode ${result.mode}${result.mode === 'audit' && !result.allowed ? ' (recorded, let through)' : ''}`);
  if (result.limits.length > 0) ctx.out(`  limits: ${result.limits.map(describeLimit).join('; ')}`);
  return 0;
}
