// Starts everything one benchmark run measures, on 127.0.0.1 only: a nats-server, the agent process,
// two agentmesh sidecar processes (mTLS between them) and the reference proxy pair on the same
// certificates; pins them to cores when taskset is there. close() stops all of it and is idempotent.
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

export const VARIANTS = ['direct', 'reference', 'agentmesh'] as const;
export type Variant = (typeof VARIANTS)[number];

export interface Target {
  variant: Variant;
  origin: string;
  a2aPath: string;
  mcpOrigin: string;
  mcpPath: string;
  /** The two proxy processes of a pair ([] for direct): outbound side first. */
  procs: { name: string; pid: number }[];
}

export interface World {
  readonly targets: Record<Variant, Target>;
  readonly agentPid: number;
  /** Outbound URLs of both sidecars (A, then B), for registry queries. */
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
  /** Run both sidecars under a 50-rule mesh policy (policy.file; bench/policy-fifty.ts). */
  policy?: boolean;
  /** More config for both sidecars (e.g. telemetry for `--telemetry`). */
  sidecarConfig?: Record<string, unknown>;
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
    const idA = await pki.issue('spiffe://bench.test/agent/caller');
    const idB = await pki.issue('spiffe://bench.test/agent/echo');
    const nats = await startNatsServer();
    cleanup.push(() => nats[Symbol.asyncDispose]());
    const ttlMs = options.ttlMs ?? 15_000;
    const registry = { nats: nats.url, bucket: `bench${process.pid}`, ttl: ttlMs };
    const nodeArgs = options.proxyNodeArgs ?? [];
    const policy = options.policy ? { policy: { file: writeFiftyRulePolicy(dir, 'bench.test') } } : {};

    const { layout } = options;
    const on = (cpus: string | undefined) => (cpus === undefined ? {} : { cpus });
    const agent = await startChild<AgentProcessInfo>(new URL('./agent-process.ts', import.meta.url), {}, on(layout.agent));
    cleanup.push(() => agent.stop());
    const mcpUrl = new URL(agent.info.mcpUrl);

    const sidecar = async (config: Record<string, unknown>): Promise<SidecarProcess> => {
      const s = await startSidecarProcess({ registry, log: { level: 'warn' }, shutdown: { drainTimeout: '2s' }, ...policy, ...options.sidecarConfig, ...config }, { nodeArgs });
      cleanup.push(async () => { const exit = s.stop('SIGTERM'); const t = setTimeout(() => s.process.kill('SIGKILL'), 8000); await exit; clearTimeout(t); });
      return s;
    };
    const [b, a] = await Promise.all([
      sidecar({ identity: idB, agent: { url: agent.info.agentUrl }, mcp: { servers: [{ name: 'bench', url: mcpUrl.href }] } }),
      sidecar({ identity: idA }),
    ]);
    const refArgs = (args: ReferenceProxyArgs) => args;
    // Plain JavaScript like the sidecars (bin/agentmesh.mjs runs dist/ too), so neither pays for tsx.
    const refScript = builtOrSource(new URL('./reference-proxy.ts', import.meta.url));
    const refIn = await startChild<ReferenceProxyInfo>(refScript,
      refArgs({ role: 'in', upstream: agent.info.agentUrl, mcpUpstream: mcpUrl.origin, tls: idB }),
      { nodeArgs, ...on(layout.inProxy) });
    cleanup.push(() => refIn.stop());
    const refOut = await startChild<ReferenceProxyInfo>(refScript,
      refArgs({ role: 'out', upstream: refIn.info.url, tls: idA }),
      { nodeArgs, ...on(layout.outProxy) });
    cleanup.push(() => refOut.stop());

    const pids = { a: a.process.pid ?? -1, b: b.process.pid ?? -1 };
    const pinned = (layout.outProxy === undefined || pin(pids.a, layout.outProxy)) && (layout.inProxy === undefined || pin(pids.b, layout.inProxy));
    if (!pinned) throw new Error(`taskset could not pin the sidecars (layout ${layout.name})`);
    await waitFor('sidecar A sees the echo agent and the bench MCP server', async () => {
      const agents = await (await fetch(`${a.outbound}/registry/agents?name=echo`)).json() as { agents: unknown[] };
      const mcp = await (await fetch(`${a.outbound}/registry/mcp`)).json() as { servers: { name: string }[] };
      return agents.agents.length === 1 && mcp.servers.some((s) => s.name === 'bench');
    }, 20_000);
    const agentOrigin = new URL(agent.info.agentUrl).origin;
    return {
      targets: {
        direct: { variant: 'direct', origin: agentOrigin, a2aPath: '/a2a/jsonrpc', mcpOrigin: mcpUrl.origin, mcpPath: mcpUrl.pathname, procs: [] },
        reference: {
          variant: 'reference', origin: refOut.info.url, a2aPath: '/a2a/jsonrpc', mcpOrigin: refOut.info.url, mcpPath: mcpUrl.pathname,
          procs: [{ name: 'ref-out', pid: refOut.pid }, { name: 'ref-in', pid: refIn.pid }],
        },
        agentmesh: {
          variant: 'agentmesh', origin: a.outbound, a2aPath: '/a2a/echo', mcpOrigin: a.outbound, mcpPath: '/mcp/bench',
          procs: [{ name: 'sidecar-A', pid: pids.a }, { name: 'sidecar-B', pid: pids.b }],
        },
      },
      agentPid: agent.pid,
      sidecarOutbounds: [a.outbound, b.outbound],
      sidecarOutput: () => [a.output(), b.output()],
      nats,
      registry: { nats: nats.url, bucket: registry.bucket, ttlMs }, ca: pki.ca,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
