// Registry at scale: 1,000 simulated agent records (heartbeating like real sidecars) in the same NATS
// KV bucket the sidecars watch. Measures how fast a new record reaches every watcher, the sidecars'
// RSS, and the agentmesh pair's per-request cost with 1 versus 1,000 agents registered.
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { createRecordSigner, createRecordVerifier, openRegistry, signGrant, type AnnouncedRecord, type RecordSigner, type RecordVerifier, type Registry, type RegistryOptions } from '../registry/index.ts';
import { issueWorkload, type PemPair } from '../sidecar/identity/index.ts';
import { waitFor } from '../test/support/wait.ts';
import type { HttpClient } from './load.ts';
import { clientOf, latencyAtOne, throughputSlices, type Clients } from './phases.ts';
import { cpuSeconds, memory } from './proc.ts';
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

/** The simulator signs every simulated record as one identity, granted each name by the CA. */
const SIMULATOR = 'spiffe://bench.test/agent/simulator';
/** How long each probe watches the sidecars with no traffic, to see what the registry alone costs. */
const IDLE_MS = 2500;

/** A simulated record shaped like a real agent's: a ~1 KB card with skills and two interfaces. */
function simulated(name: string, i: number, grant: string): AnnouncedRecord {
  const url = `https://10.0.${Math.floor(i / 250)}.${i % 250}:15443`;
  return {
    kind: 'agent', name, instance: `sim${i}`, identity: SIMULATOR, grants: [grant], endpoint: url, labels: { team: `t${i % 17}`, region: i % 2 ? 'eu' : 'us' },
    card: {
      name, description: `simulated agent ${i} for the registry-scale benchmark`, version: '1.0.0',
      supportedInterfaces: [{ url: `${url}/a2a/jsonrpc`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }, { url: `${url}/a2a/rest`, protocolBinding: 'HTTP+JSON', protocolVersion: '1.0' }],
      capabilities: { streaming: true, pushNotifications: false },
      defaultInputModes: ['text/plain'], defaultOutputModes: ['text/plain'],
      skills: [0, 1, 2].map((k) => ({ id: `skill-${(i + k) % 50}`, name: `Skill ${(i + k) % 50}`, description: 'does one simulated thing well', tags: [`tag-${(i + k) % 23}`, 'simulated'] })),
    },
  };
}

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

type Opts = Pick<RegistryOptions, 'signer' | 'verifier'> & { nats: string; bucket: string; ttlMs: number };
type Grants = (name: string) => Promise<string>;

/**
 * Signed records as between sidecars: one workload certificate for the simulator (issuing 1,000 would
 * take longer than the whole run), a CA-signed grant per simulated name (one small JWT in each record).
 */
async function simulatorSigning(ca: PemPair): Promise<{ signer: RecordSigner; verifier: RecordVerifier; grant: Grants }> {
  const pair = await issueWorkload({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, id: SIMULATOR });
  const grants = new Map<string, Promise<string>>();
  return {
    signer: createRecordSigner(() => ({ id: SIMULATOR, certPem: pair.certPem, keyPem: pair.keyPem })),
    verifier: createRecordVerifier({ trustDomain: 'bench.test', bundle: () => ca.certPem }),
    grant(name) {
      let grant = grants.get(name);
      if (!grant) grants.set(name, (grant = signGrant({ caKeyPem: ca.keyPem, identity: SIMULATOR, agents: [name], mcp: [] })));
      return grant;
    },
  };
}

/** Announces `count` simulated agents (heartbeating every ttl/3 like real sidecars); resolves once both sidecars list them. */
async function populate(opts: Opts, grant: Grants, sidecars: HttpClient[], count: number): Promise<{ simulator: Registry; announceSeconds: number; syncSeconds: number }> {
  const simulator = await openRegistry({ ...opts, name: 'bench-simulator' });
  // The CA's grants first (~1 ms of ECDSA and key import each, 1,000 of them took most of the announce
  // time): an operator issues them ahead (`agentmesh ca grant`), they are no part of announcing.
  const tokens = await Promise.all(Array.from({ length: count }, (_, i) => grant(`sim-${i}`)));
  const t0 = performance.now();
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, k) => simulator.announce(simulated(`sim-${i + k}`, i + k, tokens[i + k] ?? ''))));
  }
  const announceSeconds = (performance.now() - t0) / 1000;
  await Promise.all(sidecars.map((s) => seenBy(s, `sim-${count - 1}`, performance.now() + 30_000)));
  return { simulator, announceSeconds, syncSeconds: (performance.now() - t0) / 1000 };
}

/** Withdraws every simulated record (bounded, so a slow NATS cannot hold the run). */
async function depopulate(simulator: Registry, sidecars: HttpClient[], count: number): Promise<void> {
  await Promise.race([simulator.close(), delay(10_000)]);
  await Promise.all(sidecars.map(async (s) => {
    await waitFor('simulated agents withdrawn', async () => {
      const res = await s.pool.request({ path: `/registry/agents?name=sim-${count - 1}`, method: 'GET' });
      return ((await res.body.json()) as { agents: unknown[] }).agents.length === 0;
    }, 15_000);
  }));
}

/** New records, one at a time: time until every in-process watcher and both sidecars have each. */
async function propagation(opts: Opts, grant: Grants, simulator: Registry, sidecars: HttpClient[], first: number, probes: number, until: number) {
  const watchers: Registry[] = [];
  try {
    for (let w = 0; w < 3; w++) watchers.push(await openRegistry({ ...opts, name: `bench-watcher-${w}` }));
    await waitFor('watchers synced', () => watchers.every((w) => w.agentInstances(`sim-${first - 1}`).length === 1), 15_000);
    const viaWatchers: number[] = [];
    const viaSidecars: number[] = [];
    for (let k = 0; k < probes && performance.now() < until; k++) {
      const name = `probe-${k}`;
      const token = await grant(name); // before the clock starts: the CA's work is not propagation
      const seen = watchers.map((w) => new Promise<number>((resolve) => {
        const off = w.onChange(() => { if (w.agentInstances(name).length > 0) { off(); resolve(performance.now()); } });
      }));
      const polled = Promise.all(sidecars.map((s) => seenBy(s, name, performance.now() + 5000)));
      const at = performance.now();
      await simulator.announce(simulated(name, first + k, token));
      viaWatchers.push(Math.max(...await Promise.all(seen)) - at);
      viaSidecars.push(Math.max(...await polled) - at);
    }
    return { propagationWatchers: { ...summarize(viaWatchers), watchers: watchers.length }, propagationSidecars: summarize(viaSidecars) };
  } finally {
    await Promise.allSettled(watchers.map((w) => w.close()));
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** `maxMs` bounds the propagation probes alone (the cost probes and the announcing take what they take, each bounded). */
export async function registryScale(world: World, clients: Clients, sidecars: HttpClient[], options: { agents: number; probes: number; maxMs: number }): Promise<RegistryScaleResult> {
  const { signer, verifier, grant } = await simulatorSigning(world.ca);
  const opts = { nats: world.registry.nats, bucket: world.registry.bucket, ttlMs: world.registry.ttlMs, signer, verifier };
  const probes: CostProbe[] = [await probeCost(clients, world, 1)];
  let populated = await populate(opts, grant, sidecars, options.agents);
  const { announceSeconds, syncSeconds } = populated;
  try {
    probes.push(await probeCost(clients, world, options.agents + 1));
    // A-B-A-B: withdraw and announce again, so drift on a shared machine does not pass for a registry effect.
    await depopulate(populated.simulator, sidecars, options.agents);
    probes.push(await probeCost(clients, world, 1));
    populated = await populate(opts, grant, sidecars, options.agents);
    probes.push(await probeCost(clients, world, options.agents + 1));
    // Its own budget: a slow announce or cost probe above once left it none, and it reported n=0 (NaN).
    const spread = await propagation(opts, grant, populated.simulator, sidecars, options.agents, options.probes, performance.now() + options.maxMs);
    const pick = (f: (p: CostProbe) => number): [number, number] => [mean(probes.filter((p) => p.agentsRegistered === 1).map(f)), mean(probes.filter((p) => p.agentsRegistered > 1).map(f))];
    return {
      simulatedAgents: options.agents, heartbeatsPerSecond: options.agents / (Math.max(100, Math.floor(opts.ttlMs / 3)) / 1000), announceSeconds, syncSeconds, probes,
      cost: { pairCpuUsC32: pick((p) => p.pairCpuUsC32), pairCpuUsC1: pick((p) => p.pairCpuUsC1), addedC1P50Ms: pick((p) => p.addedC1P50Ms), meshOverRefC32: pick((p) => p.pairCpuUsC32 / p.referenceCpuUsC32), idleCpuPct: pick((p) => Math.max(...Object.values(p.idleCpuPct))) },
      ...spread,
    };
  } finally {
    await Promise.race([populated.simulator.close(), delay(10_000)]);
  }
}
