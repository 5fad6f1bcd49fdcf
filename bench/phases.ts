// The measured phases, each interleaved across the variants a run has (direct, the reference pairs, the
// agentmesh pairs) so that machine noise hits all alike, each bounded by a count and a wall-clock cap. Proxy CPU is read from /proc.
import { performance } from 'node:perf_hooks';
import { HttpClient, closedLoop, fixedRate, mcpSession, streamOnce, type LoadResult, type StreamTiming } from './load.ts';
import { cpuSeconds, memory, resetPeak } from './proc.ts';
import { VARIANTS, type Target, type Variant, type World } from './world.ts';

export interface Client { a2a: HttpClient; mcp: HttpClient; target: Target }
/** The clients of the variants a run measures; a variant it does not run has none. */
export type Clients = Partial<Record<Variant, Client>>;
/** One value per variant; a variant the run did not measure keeps its empty value. */
export type PerVariant<T> = Record<Variant, T>;

/** A client pair (A2A, MCP) for every variant the world runs. */
export function clientsFor(world: World): Clients {
  const out: Clients = {};
  for (const v of world.variants) {
    const target = world.targets[v];
    if (target) out[v] = { target, a2a: new HttpClient(target.origin), mcp: new HttpClient(target.mcpOrigin) };
  }
  return out;
}

/** Closes every client's pools. */
export async function closeClients(clients: Clients): Promise<void> {
  await Promise.allSettled(variantsOf(clients).flatMap((v) => [clientOf(clients, v).a2a.close(), clientOf(clients, v).mcp.close()]));
}

/** The variants `clients` has, in table order. */
export function variantsOf(clients: Clients): Variant[] {
  return VARIANTS.filter((v) => clients[v] !== undefined);
}

/** The client of variant `v`; throws when the run does not have it. */
export function clientOf(clients: Clients, v: Variant): Client {
  const c = clients[v];
  if (!c) throw new Error(`this run has no ${v} variant`);
  return c;
}

/** The order of round `i`: rotated so no variant always runs first (or right after another). */
export function order(i: number, list: readonly Variant[]): Variant[] {
  return list.map((_, k) => list[(i + k) % list.length] as Variant);
}

export function perVariant<T>(make: () => T): PerVariant<T> {
  return Object.fromEntries(VARIANTS.map((v) => [v, make()])) as PerVariant<T>;
}

/** CPU seconds of a set of processes, to attribute a phase's proxy CPU to its requests. */
export function cpuOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
}

export interface CpuPerRequest {
  /** Microseconds of CPU per request, per proxy process (outbound side first). */
  perProcessUs: Record<string, number>;
  /** Both processes of the pair together. */
  pairUs: number;
}

function cpuPerRequest(target: Target, seconds: Record<string, number>, requests: number): CpuPerRequest | undefined {
  if (target.procs.length === 0 || requests === 0) return undefined;
  const perProcessUs: Record<string, number> = {};
  for (const p of target.procs) perProcessUs[p.name] = ((seconds[p.name] ?? 0) / requests) * 1e6;
  return { perProcessUs, pairUs: Object.values(perProcessUs).reduce((a, b) => a + b, 0) };
}

/** Sequential SendMessages (concurrency 1), one per variant in turn, until `count` each or `maxMs`. */
export async function latencyAtOne(clients: Clients, count: number, maxMs: number) {
  const samples = perVariant<number[]>(() => []);
  const before = snapshot(clients);
  const until = performance.now() + maxMs;
  const list = variantsOf(clients);
  for (let i = 0; i < count && performance.now() < until; i++) {
    for (const v of order(i, list)) {
      const c = clientOf(clients, v);
      samples[v].push(await c.a2a.sendMessage(c.target.a2aPath));
    }
  }
  const spent = since(clients, before);
  return { samples, cpu: perVariantCpu(clients, spent, (v) => samples[v].length) };
}

export interface SliceResult {
  runs: LoadResult[];
  latencies: number[];
  completed: number;
  seconds: number;
  errors: number;
  firstError?: string;
  cpu: CpuPerRequest | undefined;
  /** Agent CPU per request during this variant's slices (µs): the upstream's own cost. */
  agentUs: number;
  /** The load generator's own CPU per request (µs): this process, which also runs the clients. */
  loadgenUs: number;
  /** Peak RSS of each proxy process during this phase (MB), when VmHWM could be reset. */
  peakRssMb: Record<string, number>;
  /** Fixed rate: requests not sent because the backlog was full, and the rate achieved (req/s). */
  dropped: number;
  achievedRps: number;
}

/** Time slices of `sliceMs` per variant, `rounds` times in rotating order, each running `load`. */
export async function slices(clients: Clients, agentPid: number, rounds: number, load: (c: HttpClient, path: string) => Promise<LoadResult>): Promise<PerVariant<SliceResult>> {
  const runs = perVariant<LoadResult[]>(() => []);
  const cpu = perVariant<Record<string, number>>(() => ({}));
  const agentCpu = perVariant(() => ({ s: 0 }));
  const loadgenCpu = perVariant(() => ({ s: 0 }));
  const peaks = perVariant<Record<string, number>>(() => ({}));
  const sampled = perVariant<Record<string, number>>(() => ({}));
  const list = variantsOf(clients);
  for (const v of list) for (const p of clientOf(clients, v).target.procs) resetPeak(p.pid);
  for (let round = 0; round < rounds; round++) {
    for (const v of order(round, list)) {
      const { target, a2a } = clientOf(clients, v);
      const before = Object.fromEntries(target.procs.map((p) => [p.name, cpuSeconds(p.pid) ?? 0]));
      const agentBefore = cpuSeconds(agentPid) ?? 0;
      const loadgenBefore = process.cpuUsage();
      // VmHWM is the exact peak; sampling is the fallback where clear_refs is not allowed.
      const sampler = setInterval(() => {
        for (const p of target.procs) sampled[v][p.name] = Math.max(sampled[v][p.name] ?? 0, memory(p.pid)?.rssMb ?? 0);
      }, 100);
      try {
        runs[v].push(await load(a2a, target.a2aPath));
      } finally {
        clearInterval(sampler);
      }
      agentCpu[v].s += (cpuSeconds(agentPid) ?? 0) - agentBefore;
      const used = process.cpuUsage(loadgenBefore);
      loadgenCpu[v].s += (used.user + used.system) / 1e6;
      for (const p of target.procs) cpu[v][p.name] = (cpu[v][p.name] ?? 0) + (cpuSeconds(p.pid) ?? 0) - (before[p.name] ?? 0);
    }
  }
  for (const v of list) for (const p of clientOf(clients, v).target.procs) peaks[v][p.name] = Math.max(memory(p.pid)?.peakMb ?? 0, sampled[v][p.name] ?? 0);
  const out = perVariant<SliceResult>(() => emptySlice());
  for (const v of list) {
    const list = runs[v];
    const completed = list.reduce((n, r) => n + r.completed, 0);
    const errors = list.reduce((n, r) => n + r.errors, 0);
    const firstError = list.find((r) => r.firstError)?.firstError;
    // CPU is counted over whole slices (ramp included), so divide by every request the slices handled.
    const sent = list.reduce((n, r) => n + r.handled, 0);
    out[v] = {
      runs: list, latencies: list.flatMap((r) => r.latencies), completed, errors, ...(firstError ? { firstError } : {}),
      seconds: list.reduce((s, r) => s + r.seconds, 0),
      dropped: list.reduce((n, r) => n + (r.dropped ?? 0), 0),
      achievedRps: completed / Math.max(1e-9, list.reduce((s, r) => s + r.seconds, 0)),
      cpu: cpuPerRequest(clientOf(clients, v).target, cpu[v], sent), agentUs: (agentCpu[v].s / Math.max(1, sent)) * 1e6,
      loadgenUs: (loadgenCpu[v].s / Math.max(1, sent)) * 1e6, peakRssMb: peaks[v],
    };
  }
  return out;
}

function emptySlice(): SliceResult {
  return { runs: [], latencies: [], completed: 0, seconds: 0, errors: 0, cpu: undefined, agentUs: Number.NaN, loadgenUs: Number.NaN, peakRssMb: {}, dropped: 0, achievedRps: Number.NaN };
}

export const rateSlices = (clients: Clients, agentPid: number, rate: number, sliceMs: number, rounds: number) =>
  slices(clients, agentPid, rounds, (c, path) => fixedRate(() => c.sendMessage(path), rate, sliceMs));

export const throughputSlices = (clients: Clients, agentPid: number, concurrency: number, sliceMs: number, rampMs: number, rounds: number) =>
  slices(clients, agentPid, rounds, (c, path) => closedLoop(() => c.sendMessage(path), concurrency, sliceMs, rampMs));

/** SSE streams of 20 events, one per variant in turn. */
export async function streams(clients: Clients, count: number, maxMs: number) {
  const timings = perVariant<StreamTiming[]>(() => []);
  const until = performance.now() + maxMs;
  const list = variantsOf(clients);
  for (let i = 0; i < count && performance.now() < until; i++) {
    for (const v of order(i, list)) {
      const c = clientOf(clients, v);
      timings[v].push(await streamOnce(c.a2a, c.target.a2aPath, i));
    }
  }
  return timings;
}

/** MCP tools/call at concurrency 1 over one session per variant, one call per variant in turn. */
export async function mcpCalls(clients: Clients, count: number, maxMs: number) {
  const sessions = perVariant(() => undefined as Awaited<ReturnType<typeof mcpSession>> | undefined);
  const list = variantsOf(clients);
  for (const v of list) sessions[v] = await mcpSession(clientOf(clients, v).mcp, clientOf(clients, v).target.mcpPath);
  const samples = perVariant<number[]>(() => []);
  const before = snapshot(clients);
  const until = performance.now() + maxMs;
  try {
    for (let i = 0; i < count && performance.now() < until; i++) {
      for (const v of order(i, list)) {
        const s = sessions[v];
        if (s) samples[v].push(await s.call());
      }
    }
  } finally {
    await Promise.allSettled(list.map((v) => sessions[v]?.close()));
  }
  return { samples, cpu: perVariantCpu(clients, since(clients, before), (v) => samples[v].length) };
}

function snapshot(clients: Clients): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of variantsOf(clients)) for (const p of clientOf(clients, v).target.procs) out[p.name] = cpuSeconds(p.pid) ?? 0;
  return out;
}

function since(clients: Clients, before: Record<string, number>): Record<string, number> {
  const now = snapshot(clients);
  return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

function perVariantCpu(clients: Clients, spent: Record<string, number>, count: (v: Variant) => number): PerVariant<CpuPerRequest | undefined> {
  const out = perVariant<CpuPerRequest | undefined>(() => undefined);
  for (const v of variantsOf(clients)) out[v] = cpuPerRequest(clientOf(clients, v).target, spent, count(v));
  return out;
}
