// `npm run bench`: one bounded run on 127.0.0.1 that measures direct, two no-logic reference pairs
// (node:https out, undici Pool out) and agentmesh sidecar pairs (every feature on, and off) side by side
// (interleaved), then the registry at 1,000 agents; prints one table and writes the raw results to
// bench/results/. `--profile[=registry]` runs a profiling pass instead, `--memory` the RSS report,
// `--registry-only` only the registry part (with --features=all it starts one agentmesh pair).
import { spawnSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { HttpClient, closedLoop, fixedRate } from './load.ts';
import { clientOf, clientsFor, closeClients, latencyAtOne, mcpCalls, rateSlices, streams, throughputSlices, variantsOf, type Clients } from './phases.ts';
import { allowedCpus, foreignLoad, memory, pin, tasksetBinary } from './proc.ts';
import { moduleMemory } from './module-memory.ts';
import { profileRun } from './profile.ts';
import { registryScale } from './registry-scale.ts';
import { boundLines, checks, registryLines, rows, table, writeResults, type Measurements } from './report.ts';
import { startOtlpSink } from './otlp-sink.ts';
import { LAYOUTS, startWorld, type FeatureSet, type Layout, type World } from './world.ts';

/** The whole run must end before this, whatever happens (six variants and the registry: about 4 minutes). */
const DEADLINE_MS = 600_000;
const RESULTS = new URL('./results/', import.meta.url).pathname;

const flags = new Set(process.argv.slice(2));
const quick = flags.has('--quick');
const option = (name: string) => [...flags].find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3);

/**
 * `--features=all|both|each|every`: agentmesh pairs with every feature on; plus one with all off (both);
 * plus one without tracing (each, the default); plus one with only the policy and one with only audit (every).
 */
function featureSets(): FeatureSet[] {
  const asked = option('features') ?? 'each';
  const sets: Record<string, FeatureSet[]> = { all: ['all'], both: ['all', 'none'], each: ['all', 'notrace', 'none'], every: ['all', 'notrace', 'policy', 'audit', 'none'] };
  const out = sets[asked];
  if (!out) throw new Error(`unknown --features=${asked} (all, both, each or every)`);
  return out;
}

/** `--upstream=light|agent`: the microsecond node:http upstream (default), or the A2A SDK echo agent. */
function upstream(): 'light' | 'agent' {
  const asked = option('upstream') ?? 'light';
  if (asked !== 'light' && asked !== 'agent') throw new Error(`unknown --upstream=${asked} (light or agent)`);
  return asked;
}
const PLAN = {
  c1: { count: quick ? 300 : 1500, maxMs: quick ? 4000 : 12_000 },
  rate: { rps: 1000, sliceMs: quick ? 1000 : 2000, rounds: quick ? 1 : 3 },
  /** A rate every pair sustains on a small machine, so added latency is also seen without queueing. */
  rateLow: { rps: 250, sliceMs: quick ? 1000 : 2000, rounds: quick ? 1 : 2 },
  throughput: { concurrency: 32, sliceMs: quick ? 1500 : 2500, rampMs: 500, rounds: quick ? 1 : 3 },
  sse: { streams: quick ? 20 : 60, maxMs: 12_000 },
  mcp: { calls: quick ? 100 : 500, maxMs: 8000 },
  /** maxMs: the propagation probes' budget (100 probes take a few seconds). */
  registry: { agents: 1000, probes: quick ? 30 : 100, maxMs: 20_000 },
};

/** The pinning layout (`--pin=pods|split|none`, default pods); none without taskset or with one CPU. */
function pinning(): Layout {
  const asked = [...flags].find((f) => f.startsWith('--pin='))?.slice(6) ?? 'pods';
  const layout = LAYOUTS[asked];
  if (!layout) throw new Error(`unknown --pin=${asked} (pods, split or none)`);
  if (!tasksetBinary() || cpus().length < 2) return LAYOUTS.none ?? { name: 'none' };
  if (layout.loadgen !== undefined && !pin(process.pid, layout.loadgen)) throw new Error('taskset could not pin the load generator');
  return layout;
}

function rssOf(world: World): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of world.variants) for (const p of world.targets[v]?.procs ?? []) out[p.name] = memory(p.pid)?.rssMb ?? Number.NaN;
  return out;
}

/**
 * Every variant first gets the loads the phases apply (concurrency 32, then the fixed rate), so the
 * measured slices see warm code and connection pools already at their working size: TLS handshakes
 * and JIT compilation during the first second of a rate slice are start-up costs, not per-hop ones.
 */
async function warmUp(clients: Clients): Promise<void> {
  for (const v of variantsOf(clients)) {
    const { a2a, target } = clientOf(clients, v);
    const r = await closedLoop(() => a2a.sendMessage(target.a2aPath), PLAN.throughput.concurrency, quick ? 1500 : 3000, 0);
    if (r.errors > 0) throw new Error(`warm-up via ${v} failed: ${r.firstError}`);
    const paced = await fixedRate(() => a2a.sendMessage(target.a2aPath), PLAN.rate.rps, quick ? 1000 : 1500);
    if (paced.errors > 0) throw new Error(`warm-up via ${v} failed: ${paced.firstError}`);
  }
  await latencyAtOne(clients, 300, 3000);
  await streams(clients, 10, 3000);
  await mcpCalls(clients, 30, 3000);
}

/** Per phase: its duration and the CPU share other processes on the machine took meanwhile. */
const noise: Record<string, { seconds: number; foreignPct: number }> = {};

/** The registry part and what it needs of the request path (c=32 and c=1 warm-up of the three clients it uses). */
async function registryPart(world: World, clients: Clients, log: (line: string) => void): Promise<Measurements['registry']> {
  const sidecars = world.sidecarOutbounds.map((url) => new HttpClient(url, 4));
  // The registry part compares the agentmesh pair (every feature on) with direct and the node pair only.
  const three: Clients = { direct: clientOf(clients, 'direct'), reference: clientOf(clients, 'reference'), agentmesh: clientOf(clients, 'agentmesh') };
  const stop = foreignLoad(cpus().length);
  try {
    return await registryScale(world, three, sidecars, PLAN.registry);
  } catch (err) {
    // The request-path figures are still worth their table: the registry part is reported failed.
    log(`  registry at 1,000 agents FAILED: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  } finally {
    const { seconds, foreignPct } = stop();
    noise['registry at 1,000 agents'] = { seconds, foreignPct };
    log(`  registry at 1,000 agents: ${seconds.toFixed(1)} s (other load on the machine: ${foreignPct.toFixed(0)}% of all CPUs)`);
    await Promise.allSettled(sidecars.map((s) => s.close()));
  }
}

/** `--registry-only`: a short warm-up, then only the registry part (to iterate on it without the 4-minute run). */
async function registryOnly(world: World, clients: Clients, log: (line: string) => void): Promise<number> {
  await latencyAtOne(clients, 300, 3000);
  const registry = await registryPart(world, clients, log);
  if (!registry) return 1;
  log('');
  for (const line of registryLines(registry)) log(line);
  const file = writeResults(RESULTS, { meta: { date: new Date().toISOString(), plan: PLAN.registry, noise, registryOnly: true }, raw: { registry } });
  log(`\nraw results: ${file}`);
  return 0;
}

async function measure(world: World, clients: Clients, log: (line: string) => void): Promise<Measurements> {
  const idleRssMb = rssOf(world);
  const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const stop = foreignLoad(cpus().length);
    const out = await run();
    const { seconds, foreignPct } = stop();
    noise[name] = { seconds, foreignPct };
    log(`  ${name}: ${seconds.toFixed(1)} s (other load on the machine: ${foreignPct.toFixed(0)}% of all CPUs)`);
    return out;
  };
  await step('warm-up', () => warmUp(clients));
  const latencyC1 = await step('latency at concurrency 1', () => latencyAtOne(clients, PLAN.c1.count, PLAN.c1.maxMs));
  const rate = await step('fixed rate 1000 req/s', () => rateSlices(clients, world.agentPid, PLAN.rate.rps, PLAN.rate.sliceMs, PLAN.rate.rounds));
  const rateLow = await step('fixed rate 250 req/s', () => rateSlices(clients, world.agentPid, PLAN.rateLow.rps, PLAN.rateLow.sliceMs, PLAN.rateLow.rounds));
  const throughput = await step('throughput at concurrency 32', () => throughputSlices(clients, world.agentPid, PLAN.throughput.concurrency, PLAN.throughput.sliceMs, PLAN.throughput.rampMs, PLAN.throughput.rounds));
  const sse = await step('SSE streams', () => streams(clients, PLAN.sse.streams, PLAN.sse.maxMs));
  const mcp = await step('MCP tools/call', () => mcpCalls(clients, PLAN.mcp.calls, PLAN.mcp.maxMs));
  const procNames = Object.fromEntries(world.variants.map((v) => [v, world.targets[v]?.procs.map((p) => p.name) ?? []]));
  const m: Measurements = { latencyC1, rate, rateLow, throughput, sse, mcp, idleRssMb, variants: world.variants, procNames };
  if (!flags.has('--skip-registry')) {
    const registry = await registryPart(world, clients, log);
    if (registry) m.registry = registry;
  }
  return m;
}

function machine(layout: Layout) {
  const list = cpus();
  return {
    cpuModel: list[0]?.model ?? 'unknown', cpus: list.length, allowedCpus: allowedCpus(), memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version, kernel: release(),
    pinning: { ...layout, natsServer: 'not pinned' },
    commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim(),
  };
}

function describe(layout: Layout): string {
  if (layout.name === 'none') return 'off';
  return `${layout.name} (load generator → CPU ${layout.loadgen}, agent+MCP → CPU ${layout.agent}, caller-side proxies → CPU ${layout.outProxy}, agent-side proxies → CPU ${layout.inProxy}; nats-server not pinned)`;
}

async function main(): Promise<number> {
  const started = performance.now();
  const log = (line: string) => process.stdout.write(`${line}\n`);
  if (flags.has('--memory')) return moduleMemory(log, { quick });
  if ([...flags].some((f) => f.startsWith('--profile'))) return profileRun({ registry: flags.has('--profile=registry'), all: flags.has('--profile=all'), dir: RESULTS, log, upstream: upstream() });
  const layout = pinning();
  const features = featureSets();
  log(`agentmesh bench: ${cpus().length} CPUs, Node ${process.version}, pinning: ${describe(layout)}; upstream ${upstream()}; agentmesh feature sets: ${features.join(', ')}`);
  // Tracing (feature set all): the sidecars trace every call (ratio 1.0) and export to a sink in this process.
  const sink = await startOtlpSink();
  const world = await startWorld({ layout, features, otlpEndpoint: sink.url, upstream: upstream() });
  const clients = clientsFor(world);
  const stop = async (code: number) => {
    await closeClients(clients);
    await world.close();
    await sink.close();
    return code;
  };
  const onSignal = () => { log('interrupted: stopping every process'); void stop(130).then((c) => process.exit(c)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchdog = setTimeout(() => { log(`deadline of ${DEADLINE_MS / 1000} s reached: stopping`); void stop(2).then((c) => process.exit(c)); }, DEADLINE_MS - (performance.now() - started));
  try {
    log(`  setup: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (flags.has('--registry-only')) return await registryOnly(world, clients, log);
    const m = await measure(world, clients, log);
    const idleAfterMb = rssOf(world);
    const list = rows(m);
    const verdicts = checks(m);
    const meta = { date: new Date().toISOString(), machine: machine(layout), plan: PLAN, upstream: upstream(), features, noise, seconds: (performance.now() - started) / 1000 };
    const file = writeResults(RESULTS, { meta, table: list, checks: verdicts, idleAfterMb, raw: m });
    log('');
    log(table(list, world.variants));
    log('');
    for (const line of boundLines(m, cpus().length)) log(line);
    log('');
    if (m.registry) for (const line of registryLines(m.registry)) log(line);
    log(`idle RSS after the run: ${Object.entries(idleAfterMb).map(([k, v]) => `${k} ${v.toFixed(1)} MB`).join(', ')}`);
    log('');
    for (const c of verdicts) log(`${c.met ? 'MET   ' : 'MISSED'}  ${c.target}: ${c.value}`);
    const noisy = Object.entries(noise).filter(([, n]) => n.foreignPct > 10);
    if (noisy.length > 0) log(`\nWARNING: other processes used >10% of the CPUs during ${noisy.map(([k]) => k).join(', ')}; absolute numbers are unreliable, ratios less so.`);
    log(`tracing (agentmesh, ratio 1.0): the sidecars exported ${sink.exports()} OTLP batches, ${(sink.bytes() / 1e6).toFixed(1)} MB`);
    log(`\nraw results: ${file} (${meta.seconds.toFixed(0)} s)`);
    return 0;
  } finally {
    clearTimeout(watchdog);
    await stop(0);
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
