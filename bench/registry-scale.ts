// Registry at scale: 1,000 simulated agent records (heartbeating like real sidecars) in the same NATS
// KV bucket the sidecars watch. Measures how fast a new record reaches every watcher, the sidecars'
// RSS, and the agentmesh pair's per-request cost with 1 versus 1,000 agents registered. The simulated agents and
// the watchers run in child processes of their own (bench/registry-sim.ts).
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { waitFor } from '../test/support/wait.ts';
import { builtOrSource, startChild, type Child } from './child.ts';
import type { HttpClient } from './load.ts';
import { clientOf, latencyAtOne, throughputSlices, type Clients } from './phases.ts';
import { cpuSeconds, memory } from './proc.ts';
import type { RegistrySimInfo, RegistrySimOptions } from './registry-sim.ts';
import { added, summarize, type Summary } from './stats.ts';
import type { World } from './world.ts';

export interface CostProbe {
  agentsRegistered: number;
  directC1: Summary;
  agentmeshC1: Summary;
  addedC1P50Ms: number;
  /** Sidecar pair CPU per request at concurrency 1 and under the throughput load (µs). */
  pairCpuUsC1: number;
  pairCpuUsC32: number;
  /** The reference pair measured in the same slices: a control for machine drift. */
  referenceCpuUsC32: number;
  agentmeshRps: number;
  sidecarRssMb: Record<string, number>;
  /** Each sidecar's CPU while no request flows (% of one core): the registry watch and timers. */
  idleCpuPct: Record<string, number>;
}

export interface RegistryScaleResult {
  simulatedAgents: number;
  /** Re-puts per second the simulated agents' heartbeats cause (every ttl/3 each). */
  heartbeatsPerSecond: number;
  announceSeconds: number;
  /** Until both sidecar processes list all simulated agents (s). */
  syncSeconds: number;
  /** Cost probes in the order taken: 1 agent, 1,001, 1 (after withdrawing), 1,001 again. */
  probes: CostProbe[];
  /** Means over the probes of each state; ratio = with 1,000 / with 1. */
  cost: { pairCpuUsC32: [number, number]; pairCpuUsC1: [number, number]; addedC1P50Ms: [number, number]; meshOverRefC32: [number, number]; idleCpuPct: [number, number] };
  /** New record → seen by every in-process watcher (exact, via the view's onChange), ms. */
  propagationWatchers: Summary & { watchers: number };
  /** New record → listed by both sidecar processes (polled every ~2 ms; an upper bound), ms. */
  propagationSidecars: Summary;
}

/** How long each probe watches the sidecars with no traffic, to see what the registry alone costs. */
const IDLE_MS = 2500;

async function probeCost(clients: Clients, world: World, agentsRegistered: number): Promise<CostProbe> {
  const pair = clientOf(clients, 'agentmesh').target.procs;
  const idle0 = pair.map((p) => cpuSeconds(p.pid) ?? 0);
  await delay(IDLE_MS);
  const idleCpuPct = Object.fromEntries(pair.map((p, i) => [p.name, (((cpuSeconds(p.pid) ?? 0) - (idle0[i] ?? 0)) / (IDLE_MS / 1000)) * 100]));
  const c1 = await latencyAtOne(clients, 300, 4000);
  const thr = await throughputSlices(clients, world.agentPid, 32, 1500, 300, 1);
  const direct = summarize(c1.samples.direct);
  const mesh = summarize(c1.samples.agentmesh);
  return {
    agentsRegistered, directC1: direct, agentmeshC1: mesh, addedC1P50Ms: added(mesh, direct).p50,
    pairCpuUsC1: c1.cpu.agentmesh?.pairUs ?? Number.NaN,
    pairCpuUsC32: thr.agentmesh.cpu?.pairUs ?? Number.NaN,
    referenceCpuUsC32: thr.reference.cpu?.pairUs ?? Number.NaN,
    agentmeshRps: thr.agentmesh.completed / thr.agentmesh.seconds,
    sidecarRssMb: Object.fromEntries(pair.map((p) => [p.name, memory(p.pid)?.rssMb ?? Number.NaN])),
    idleCpuPct,
  };
}

/** Polls GET /registry/agents?name= on a sidecar until it lists `name`; resolves with the time seen. */
async function seenBy(client: HttpClient, name: string, deadline: number): Promise<number> {
  while (performance.now() < deadline) {
    const res = await client.pool.request({ path: `/registry/agents?name=${name}`, method: 'GET' });
    const body = await res.body.json() as { agents: unknown[] };
    if (body.agents.length > 0) return performance.now();
    await delay(2);
  }
  throw new Error(`sidecar did not list '${name}' in time`);
}

/** process.hrtime in ms: CLOCK_MONOTONIC, the clock the registry-sim children stamp with. */
const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** A registry-sim child (bench/registry-sim.ts) and a way to send it commands. */
interface Sim {
  child: Child<RegistrySimInfo>;
  call<T>(command: string, body?: Record<string, unknown>): Promise<T>;
}

async function startSim(world: World, role: RegistrySimOptions['role']): Promise<Sim> {
  const options: RegistrySimOptions = { role, nats: world.registry.nats, bucket: world.registry.bucket, ttlMs: world.registry.ttlMs, caCertPem: world.ca.certPem, caKeyPem: world.ca.keyPem };
  const child = await startChild<RegistrySimInfo>(builtOrSource(new URL('./registry-sim.ts', import.meta.url)), options, { timeoutMs: 60_000 });
  return {
    child,
    async call<T>(command: string, body: Record<string, unknown> = {}): Promise<T> {
      const res = await request(`${child.info.control}/${command}`, { method: 'POST', body: JSON.stringify(body), headersTimeout: 120_000, bodyTimeout: 120_000 });
      const out = await res.body.json() as T & { error?: string };
      if (res.statusCode !== 200) throw new Error(`registry-sim ${role} ${command}: ${out.error ?? res.statusCode}`);
      return out;
    },
  };
}

/** Announces `count` simulated agents (heartbeating every ttl/3 like real sidecars); resolves once both sidecars list them. */
async function populate(simulator: Sim, sidecars: HttpClient[], count: number): Promise<{ announceSeconds: number; syncSeconds: number }> {
  const { startedAt, announcedAt } = await simulator.call<{ startedAt: number; announcedAt: number }>('populate', { count });
  await Promise.all(sidecars.map((s) => seenBy(s, `sim-${count - 1}`, performance.now() + 30_000)));
  return { announceSeconds: (announcedAt - startedAt) / 1000, syncSeconds: (monotonicMs() - startedAt) / 1000 };
}

/** Withdraws every simulated record; resolves once neither sidecar lists them. */
async function depopulate(simulator: Sim, sidecars: HttpClient[], count: number): Promise<void> {
  await simulator.call('withdraw');
  await Promise.all(sidecars.map(async (s) => {
    await waitFor('simulated agents withdrawn', async () => {
      const res = await s.pool.request({ path: `/registry/agents?name=sim-${count - 1}`, method: 'GET' });
      return ((await res.body.json()) as { agents: unknown[] }).agents.length === 0;
    }, 15_000);
  }));
}

/** New records, one at a time: time until every watcher (in their own process) and both sidecars have each. */
async function propagation(world: World, simulator: Sim, sidecars: HttpClient[], first: number, probes: number, until: number) {
  const watchers = await startSim(world, 'watchers');
  try {
    const { watchers: count } = await watchers.call<{ watchers: number }>('open', { count: 3, until: `sim-${first - 1}` });
    const viaWatchers: number[] = [];
    const viaSidecars: number[] = [];
    for (let k = 0; k < probes && performance.now() < until; k++) {
      const name = `probe-${k}`;
      await watchers.call('expect', { name });
      const polled = Promise.all(sidecars.map((s) => seenBy(s, name, performance.now() + 5000).then(() => monotonicMs())));
      const { at } = await simulator.call<{ at: number }>('announce', { name, index: first + k });
      const { at: watched } = await watchers.call<{ at: number }>('seen', { name });
      viaWatchers.push(watched - at);
      viaSidecars.push(Math.max(...await polled) - at);
    }
    return { propagationWatchers: { ...summarize(viaWatchers), watchers: count }, propagationSidecars: summarize(viaSidecars) };
  } finally {
    await watchers.child.stop();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** `maxMs` bounds the propagation probes alone (the cost probes and the announcing take what they take, each bounded). */
/**
 * `maxMs` bounds the propagation probes alone (the cost probes and the announcing take what they take, each
 * bounded). The simulator and the watchers run in child processes of their own (bench/registry-sim.ts): the
 * load generator's event loop signs and verifies nothing.
 */
export async function registryScale(world: World, clients: Clients, sidecars: HttpClient[], options: { agents: number; probes: number; maxMs: number }): Promise<RegistryScaleResult> {
  const simulator = await startSim(world, 'simulator');
  try {
    const probes: CostProbe[] = [await probeCost(clients, world, 1)];
    const { announceSeconds, syncSeconds } = await populate(simulator, sidecars, options.agents);
    probes.push(await probeCost(clients, world, options.agents + 1));
    // A-B-A-B: withdraw and announce again, so drift on a shared machine does not pass for a registry effect.
    await depopulate(simulator, sidecars, options.agents);
    probes.push(await probeCost(clients, world, 1));
    await populate(simulator, sidecars, options.agents);
    probes.push(await probeCost(clients, world, options.agents + 1));
    // Its own budget: a slow announce or cost probe above once left it none, and it reported n=0 (NaN).
    const spread = await propagation(world, simulator, sidecars, options.agents, options.probes, performance.now() + options.maxMs);
    const pick = (f: (p: CostProbe) => number): [number, number] => [mean(probes.filter((p) => p.agentsRegistered === 1).map(f)), mean(probes.filter((p) => p.agentsRegistered > 1).map(f))];
    return {
      simulatedAgents: options.agents, heartbeatsPerSecond: options.agents / (Math.max(100, Math.floor(world.registry.ttlMs / 3)) / 1000), announceSeconds, syncSeconds, probes,
      cost: { pairCpuUsC32: pick((p) => p.pairCpuUsC32), pairCpuUsC1: pick((p) => p.pairCpuUsC1), addedC1P50Ms: pick((p) => p.addedC1P50Ms), meshOverRefC32: pick((p) => p.pairCpuUsC32 / p.referenceCpuUsC32), idleCpuPct: pick((p) => Math.max(...Object.values(p.idleCpuPct))) },
      ...spread,
    };
  } finally {
    await simulator.child.stop(12_000);
  }
}
