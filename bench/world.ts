// Starts everything one benchmark run measures, on 127.0.0.1 only: a nats-server, the agent process
// (and the light upstream), agentmesh sidecar pairs (mTLS between them, one per feature set) and the two
// no-logic reference pairs on the same certificates; pins them to cores when taskset is there.
// close() stops all of it and is idempotent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, type NatsServer } from '../test/support/nats-server.ts';
import { startSidecarProcess, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { writeFiftyRulePolicy } from './policy-fifty.ts';
import { waitFor } from '../test/support/wait.ts';
import { createTestPki } from '../test/support/certs.ts';
import type { PemPair } from '../sidecar/identity/index.ts';
import type { AgentProcessInfo } from './agent-process.ts';
import { builtOrSource, startChild, type Child } from './child.ts';
import { pin } from './proc.ts';
import type { ReferenceProxyArgs, ReferenceProxyInfo } from './reference-proxy.ts';
import type { LightUpstreamArgs, LightUpstreamInfo } from './light-upstream.ts';

/**
 * Every variant a run may measure, in table order. reference: node:http in, node:https out; undici:
 * node:http in, an undici Pool out (both with a node:https inbound side); agentmesh: every feature on;
 * agentmesh-notrace: the same without tracing; agentmesh-policy / agentmesh-audit: only that feature on;
 * agentmesh-off: every feature the config can turn off, off.
 */
export const VARIANTS = ['direct', 'reference', 'undici', 'agentmesh', 'agentmesh-notrace', 'agentmesh-policy', 'agentmesh-audit', 'agentmesh-off'] as const;
export type Variant = (typeof VARIANTS)[number];
/** The no-logic pairs every ratio is taken against. */
export const REFERENCES = ['reference', 'undici'] as const satisfies readonly Variant[];
export type FeatureSet = 'all' | 'notrace' | 'policy' | 'audit' | 'none';
export const FEATURE_VARIANT: Record<FeatureSet, Variant> = {
  all: 'agentmesh', notrace: 'agentmesh-notrace', policy: 'agentmesh-policy', audit: 'agentmesh-audit', none: 'agentmesh-off',
};
export const isMesh = (v: Variant): boolean => v.startsWith('agentmesh');

export interface Target {
  variant: Variant;
  origin: string;
  a2aPath: string;
  mcpOrigin: string;
  mcpPath: string;
  /** The two proxy processes of a pair ([] for direct): outbound side first. */
  procs: { name: string; pid: number }[];
  /** agentmesh pairs: the admin listeners (A, then B), for /metrics. */
  admins?: string[];
}

export interface World {
  /** The variants this world runs, in table order (direct, reference, undici, agentmesh always). */
  readonly variants: Variant[];
  readonly targets: Partial<Record<Variant, Target>>;
  /** The process answering A2A calls: the light upstream, or the agent process (which always serves MCP). */
  readonly agentPid: number;
  /** Outbound URLs of both sidecars of the agentmesh pair (A, then B), for registry queries. */
  readonly sidecarOutbounds: string[];
  /** What each sidecar process printed (A, then B): warnings, or --trace-gc lines. */
  sidecarOutput(): string[];
  readonly nats: NatsServer;
  /** Registry settings the sidecars use (for the registry-scale part). */
  readonly registry: { nats: string; bucket: string; ttlMs: number };
  /** The mesh CA: the registry-scale part signs its simulated records with certificates from it. */
  readonly ca: PemPair;
  close(): Promise<void>;
}

/** Which CPUs (taskset lists) each role runs on; undefined roles are not pinned. */
export interface Layout {
  name: string;
  loadgen?: string;
  /** The agent and MCP server process. */
  agent?: string;
  /** The caller-side proxy of each pair (sidecar A, ref-out). */
  outProxy?: string;
  /** The agent-side proxy of each pair (sidecar B, ref-in). */
  inProxy?: string;
}

export const LAYOUTS: Record<string, Layout> = {
  /** Like two pods of one core each: caller + its proxy on CPU 0, agent + its proxy on CPU 1. */
  pods: { name: 'pods', loadgen: '0', outProxy: '0', agent: '1', inProxy: '1' },
  /** Load generator and agent on CPU 0, both proxies of the pair under test on CPU 1. */
  split: { name: 'split', loadgen: '0', agent: '0', outProxy: '1', inProxy: '1' },
  none: { name: 'none' },
};

export interface WorldOptions {
  layout: Layout;
  /** Options for node in every proxy process (e.g. --cpu-prof). */
  proxyNodeArgs?: string[];
  /** Registry record TTL (ms); heartbeats every ttl/3. */
  ttlMs?: number;
  /** Sidecar pairs to run, one per feature set: `all` is the agentmesh variant (default ['all']). */
  features?: FeatureSet[];
  /** Where tracing exports (the OTLP sink in the bench process); needed for the feature sets with tracing. */
  otlpEndpoint?: string;
  /** light (default): a node:http upstream answering in microseconds; agent: the A2A SDK echo agent. */
  upstream?: 'light' | 'agent';
}

/**
 * Sidecar config for a feature set. all: a 50-rule policy, tracing at ratio 1.0, audit (JetStream, the
 * default with NATS); notrace: all but tracing; policy / audit: only that one; none: no policy, no
 * tracing, no audit. The fairness limiter (limits.*) and the metrics have no switch: they are on in every set.
 */
export function featureConfig(set: FeatureSet, policyFile: string, otlpEndpoint: string | undefined): Record<string, unknown> {
  const tracing = set === 'all';
  if (tracing && !otlpEndpoint) throw new Error('feature set "all" traces every call: startWorld needs otlpEndpoint');
  const policy = set === 'all' || set === 'notrace' || set === 'policy';
  const audit = set === 'all' || set === 'notrace' || set === 'audit';
  return {
    ...(policy ? { policy: { file: policyFile } } : {}),
    audit: { enabled: audit },
    telemetry: tracing ? { enabled: true, endpoint: otlpEndpoint, sampling: 1 } : { enabled: false },
  };
}

export async function startWorld(options: WorldOptions): Promise<World> {
  const cleanup: (() => PromiseLike<unknown>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch(() => undefined);
  })());
  try {
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-bench-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const pki = await createTestPki({ trustDomain: 'bench.test' });
    cleanup.push(() => pki.close());
    const nats = await startNatsServer();
    cleanup.push(() => nats[Symbol.asyncDispose]());
    const ttlMs = options.ttlMs ?? 15_000;
    const registry = { nats: nats.url, bucket: `bench${process.pid}`, ttl: ttlMs };
    const nodeArgs = options.proxyNodeArgs ?? [];
    const policyFile = writeFiftyRulePolicy(dir, 'bench.test');
    const features = options.features ?? ['all'];
    if (!features.includes('all')) throw new Error('the feature sets must include "all" (the agentmesh variant)');

    const { layout } = options;
    const on = (cpus: string | undefined) => (cpus === undefined ? {} : { cpus });
    const agent = await startChild<AgentProcessInfo>(new URL('./agent-process.ts', import.meta.url), {}, on(layout.agent));
    cleanup.push(() => agent.stop());
    const mcpUrl = new URL(agent.info.mcpUrl);
    let upstreamUrl = agent.info.agentUrl;
    let upstreamPid = agent.pid;
    if ((options.upstream ?? 'light') === 'light') {
      const light = await startChild<LightUpstreamInfo>(builtOrSource(new URL('./light-upstream.ts', import.meta.url)),
        { agentUrl: agent.info.agentUrl } satisfies LightUpstreamArgs, on(layout.agent));
      cleanup.push(() => light.stop());
      upstreamUrl = light.info.url;
      upstreamPid = light.pid;
    }

    const sidecar = async (config: Record<string, unknown>): Promise<SidecarProcess> => {
      const s = await startSidecarProcess({ registry, log: { level: 'warn' }, shutdown: { drainTimeout: '2s' }, ...config }, { nodeArgs });
      cleanup.push(async () => { const exit = s.stop('SIGTERM'); const t = setTimeout(() => s.process.kill('SIGKILL'), 8000); await exit; clearTimeout(t); });
      return s;
    };
    const targets: Partial<Record<Variant, Target>> = {};
    const agentOrigin = new URL(upstreamUrl).origin;
    targets.direct = { variant: 'direct', origin: agentOrigin, a2aPath: '/a2a/jsonrpc', mcpOrigin: mcpUrl.origin, mcpPath: mcpUrl.pathname, procs: [] };
    let outbounds: string[] = [];
    const outputs: (() => string)[] = [];
    // One pair per feature set; each B fronts the same agent under its own name (echo, echo-notrace, …).
    for (const set of features) {
      const variant = FEATURE_VARIANT[set];
      const name = set === 'all' ? 'echo' : `echo-${set}`;
      const idA = await pki.issue(`spiffe://bench.test/agent/${set === 'all' ? 'caller' : `caller-${set}`}`);
      const idB = await pki.issue(`spiffe://bench.test/agent/${name}`);
      const config = featureConfig(set, policyFile, options.otlpEndpoint);
      const mcpName = set === 'all' ? 'bench' : `bench-${set}`;
      const [b, a] = await Promise.all([
        sidecar({ ...config, identity: idB, agent: { url: upstreamUrl, name }, mcp: { servers: [{ name: mcpName, url: mcpUrl.href }] } }),
        sidecar({ ...config, identity: idA }),
      ]);
      const pids = { a: a.process.pid ?? -1, b: b.process.pid ?? -1 };
      const pinned = (layout.outProxy === undefined || pin(pids.a, layout.outProxy)) && (layout.inProxy === undefined || pin(pids.b, layout.inProxy));
      if (!pinned) throw new Error(`taskset could not pin the sidecars (layout ${layout.name})`);
      await waitFor(`sidecar A (${set}) sees agent ${name} and MCP server ${mcpName}`, async () => {
        const agents = await (await fetch(`${a.outbound}/registry/agents?name=${name}`)).json() as { agents: unknown[] };
        const mcp = await (await fetch(`${a.outbound}/registry/mcp`)).json() as { servers: { name: string }[] };
        return agents.agents.length === 1 && mcp.servers.some((s) => s.name === mcpName);
      }, 20_000);
      const suffix = set === 'all' ? '' : `-${set}`;
      targets[variant] = {
        variant, origin: a.outbound, a2aPath: `/a2a/${name}`, mcpOrigin: a.outbound, mcpPath: `/mcp/${mcpName}`,
        procs: [{ name: `sidecar-A${suffix}`, pid: pids.a }, { name: `sidecar-B${suffix}`, pid: pids.b }],
        admins: [a.admin, b.admin],
      };
      if (set === 'all') outbounds = [a.outbound, b.outbound];
      outputs.push(() => a.output(), () => b.output());
    }
    // Plain JavaScript like the sidecars (bin/agentmesh.mjs runs dist/ too), so neither pays for tsx.
    const refScript = builtOrSource(new URL('./reference-proxy.ts', import.meta.url));
    const refPair = async (variant: 'reference' | 'undici', outRole: 'out' | 'out-undici', names: [string, string]) => {
      const refIn = await startChild<ReferenceProxyInfo>(refScript,
        { role: 'in', upstream: upstreamUrl, mcpUpstream: mcpUrl.origin, tls: idRefB } satisfies ReferenceProxyArgs,
        { nodeArgs, ...on(layout.inProxy) });
      cleanup.push(() => refIn.stop());
      const refOut = await startChild<ReferenceProxyInfo>(refScript,
        { role: outRole, upstream: refIn.info.url, tls: idRefA } satisfies ReferenceProxyArgs,
        { nodeArgs, ...on(layout.outProxy) });
      cleanup.push(() => refOut.stop());
      targets[variant] = {
        variant, origin: refOut.info.url, a2aPath: '/a2a/jsonrpc', mcpOrigin: refOut.info.url, mcpPath: mcpUrl.pathname,
        procs: [{ name: names[0], pid: refOut.pid }, { name: names[1], pid: refIn.pid }],
      };
    };
    const idRefA = await pki.issue('spiffe://bench.test/agent/ref-caller');
    const idRefB = await pki.issue('spiffe://bench.test/agent/ref-echo');
    await refPair('reference', 'out', ['ref-out', 'ref-in']);
    await refPair('undici', 'out-undici', ['undici-out', 'undici-in']);

    return {
      variants: VARIANTS.filter((v) => targets[v] !== undefined),
      targets,
      agentPid: upstreamPid,
      sidecarOutbounds: outbounds,
      sidecarOutput: () => outputs.map((o) => o()),
      nats,
      registry: { nats: nats.url, bucket: registry.bucket, ttlMs }, ca: pki.ca,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
