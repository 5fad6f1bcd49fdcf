// `npm run bench -- --profile[=all|registry]`: the proxies (both no-logic pairs, and the agentmesh pair
// with every feature on) run under `node --cpu-prof` through a shorter load (SendMessage at a fixed
// rate and at c=32; =all adds SSE and MCP; =registry the registry at 1,000 agents), then each .cpuprofile is summarised (and drawn as a flame graph, <process>.svg beside it): busy time, the top functions by self
// time, time by package or module, and our own functions inclusive.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyTree, flameGraphSvg } from './flamegraph.ts';
import { HttpClient, closedLoop } from './load.ts';
import { clientOf, clientsFor, closeClients, mcpCalls, rateSlices, streams, throughputSlices, variantsOf, type Clients } from './phases.ts';
import { pin, tasksetBinary } from './proc.ts';
import { registryScale } from './registry-scale.ts';
import { startOtlpSink } from './otlp-sink.ts';
import { LAYOUTS, startWorld, type Variant } from './world.ts';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] }

export interface ProfileSummary {
  process: string;
  sampledMs: number;
  busyMs: number;
  /** Busy CPU per request the process served in the window (µs), when the count is known. */
  busyUsPerRequest?: number;
  topSelf: { fn: string; ms: number; pct: number; callers: string[] }[];
  byModule: { module: string; ms: number; pct: number }[];
  ownInclusive: { fn: string; ms: number; pct: number }[];
}

const ROOT = new URL('..', import.meta.url).pathname;

function where(url: string): string {
  if (!url) return '';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm?.[1]) return nm[1];
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url.replace(/^file:\/\//, '').replace(ROOT, '').replace(/^dist\//, '');
}

const keyOf = (n: ProfileNode) => {
  const w = where(n.callFrame.url);
  return w ? `${n.callFrame.functionName || '(anonymous)'} ${w}:${n.callFrame.lineNumber + 1}` : n.callFrame.functionName;
};

/** Summarises the samples taken between `window.from` and `window.to` (µs, CLOCK_MONOTONIC like hrtime). */
export function summarizeProfile(name: string, profile: CpuProfile, window: { from: number; to: number }): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at >= window.from && at <= window.to) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const sampledMs = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, ms]) => a + ms, 0);
  const busyMs = sampledMs - idle;
  const pct = (ms: number) => Math.round((ms / busyMs) * 1000) / 10;
  const add = (m: Map<string, number>, k: string, ms: number) => m.set(k, (m.get(k) ?? 0) + ms);
  const fnSelf = new Map<string, number>();
  const modSelf = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n || n.callFrame.functionName === '(idle)') continue;
    add(fnSelf, keyOf(n), ms);
    const up = byId.get(parent.get(id) ?? -1);
    if (up) add(callers.get(keyOf(n)) ?? callers.set(keyOf(n), new Map()).get(keyOf(n)) ?? new Map(), keyOf(up), ms);
    add(modSelf, where(n.callFrame.url) || n.callFrame.functionName, ms);
  }
  // Inclusive time of our own functions (sidecar/, registry/, sdk/), counted once per stack.
  const inclusive = new Map<string, number>();
  const total = (id: number): number => {
    const n = byId.get(id);
    return (self.get(id) ?? 0) + (n?.children ?? []).reduce((s, c) => s + total(c), 0);
  };
  const walk = (id: number, open: Set<string>): void => {
    const n = byId.get(id);
    if (!n) return;
    const k = keyOf(n);
    const own = /^[^ ]+ (sidecar|registry|sdk)\//.test(k);
    if (own && !open.has(k)) add(inclusive, k, total(id));
    const next = own ? new Set([...open, k]) : open;
    for (const c of n.children ?? []) walk(c, next);
  };
  const roots = profile.nodes.filter((n) => !profile.nodes.some((p) => p.children?.includes(n.id)));
  for (const r of roots) walk(r.id, new Set());
  const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k);
  return {
    process: name, sampledMs, busyMs,
    topSelf: top(fnSelf, 25).map(([fn, ms]) => ({ fn, ms, pct: pct(ms), callers: top(callers.get(fn) ?? new Map(), 3).map(([c]) => c) })),
    byModule: top(modSelf, 20).map(([module, ms]) => ({ module, ms, pct: pct(ms) })),
    ownInclusive: top(inclusive, 20).map(([fn, ms]) => ({ fn, ms, pct: pct(ms) })),
  };
}

/** Runs the profiling pass; profiles land in bench/results/profiles/<time>/, the summary beside them. */
export async function profileRun(options: { registry: boolean; all: boolean; dir: string; log: (line: string) => void; upstream: 'light' | 'agent' }): Promise<number> {
  const dir = join(options.dir, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(dir, { recursive: true });
  const layout = (tasksetBinary() && pin(process.pid, '0') ? LAYOUTS.pods : undefined) ?? { name: 'none' };
  const sink = await startOtlpSink();
  const world = await startWorld({ layout, features: ['all'], otlpEndpoint: sink.url, upstream: options.upstream, proxyNodeArgs: ['--cpu-prof', '--cpu-prof-interval=250', `--cpu-prof-dir=${dir}`] });
  const names = new Map<number, { name: string; variant: Variant }>();
  for (const v of world.variants) for (const p of world.targets[v]?.procs ?? []) names.set(p.pid, { name: p.name, variant: v });
  const clients: Clients = clientsFor(world);
  const served = new Map<Variant, number>();
  const window = { from: 0, to: 0 };
  const us = () => Number(process.hrtime.bigint() / 1000n);
  try {
    for (const v of variantsOf(clients)) {
      const c = clientOf(clients, v);
      await closedLoop(() => c.a2a.sendMessage(c.target.a2aPath), 8, 3000, 0);
    }
    window.from = us();
    if (options.registry) {
      const sidecars = world.sidecarOutbounds.map((url) => new HttpClient(url, 4));
      const three: Clients = { direct: clientOf(clients, 'direct'), reference: clientOf(clients, 'reference'), agentmesh: clientOf(clients, 'agentmesh') };
      const r = await registryScale(world, three, sidecars, { agents: 1000, probes: 50, maxMs: 45_000 });
      await Promise.allSettled(sidecars.map((s) => s.close()));
      options.log(`registry: pair CPU/req c=32 ${r.cost.pairCpuUsC32.map((x) => x.toFixed(0)).join(' → ')} µs`);
    } else if (options.all) {
      const thr = await throughputSlices(clients, world.agentPid, 32, 4000, 0, 2);
      const rate = await rateSlices(clients, world.agentPid, 1000, 3000, 1);
      const sse = await streams(clients, 30, 5000);
      const mcp = await mcpCalls(clients, 200, 5000);
      for (const v of variantsOf(clients)) served.set(v, thr[v].completed + thr[v].errors + rate[v].completed + sse[v].length + mcp.samples[v].length);
    } else {
      // SendMessage only, the same paced load for every variant (a pair that keeps up gets the same
      // requests, batched alike), so busy µs per request compare across pairs; then c=32.
      const rate = await rateSlices(clients, world.agentPid, 400, 4000, 2);
      const thr = await throughputSlices(clients, world.agentPid, 32, 3000, 0, 1);
      for (const v of variantsOf(clients)) served.set(v, rate[v].runs.reduce((n, r) => n + r.handled, 0) + thr[v].runs.reduce((n, r) => n + r.handled, 0));
    }
    window.to = us();
  } finally {
    await closeClients(clients);
    await world.close();
    await sink.close();
  }
  const summaries: ProfileSummary[] = [];
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread (1 is tsx's loader).
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.split('.')[4] === '0')) {
    const pid = Number(file.split('.')[3]);
    const proc = names.get(pid);
    if (!proc) continue;
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const summary = summarizeProfile(proc.name, profile, window);
    // A flame graph of the same window beside the profile (bench/flamegraph.ts).
    writeFileSync(join(dir, `${proc.name}.svg`), flameGraphSvg(busyTree(profile, window), `${proc.name}: ${options.upstream} upstream, load phases only`));
    const count = served.get(proc.variant) ?? 0;
    if (count > 0) summary.busyUsPerRequest = (summary.busyMs * 1000) / count;
    summaries.push(summary);
  }
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summaries, null, 1));
  for (const s of summaries.sort((a, b) => a.process.localeCompare(b.process))) {
    options.log(`\n== ${s.process}: busy ${s.busyMs.toFixed(0)} ms of ${s.sampledMs.toFixed(0)} ms sampled${s.busyUsPerRequest ? ` (${s.busyUsPerRequest.toFixed(0)} µs per request)` : ''}`);
    options.log('  by module (self):');
    for (const m of s.byModule.slice(0, 12)) options.log(`    ${m.pct.toFixed(1).padStart(5)}%  ${m.module}`);
    options.log('  top functions (self):');
    for (const f of s.topSelf.slice(0, 15)) options.log(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.fn}  ← ${f.callers.slice(0, 2).join(' | ')}`);
    if (s.ownInclusive.length) options.log('  own functions (inclusive):');
    for (const f of s.ownInclusive.slice(0, 12)) options.log(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.fn}`);
  }
  options.log(`\nprofiles and summary: ${dir}`);
  return 0;
}
