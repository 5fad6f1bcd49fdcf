// Turns one run's raw measurements into the summary: the table (every agentmesh pair against both
// no-logic pairs, node:https and undici, and agentmesh / direct), the target checks, and the JSON file
// under bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { added, median, ratio, summarize, type Summary } from './stats.ts';
import { REFERENCES, VARIANTS, isMesh, type Variant } from './world.ts';
import { perVariant, type PerVariant, type SliceResult, type CpuPerRequest } from './phases.ts';
import type { StreamTiming } from './load.ts';
import type { CostProbe, RegistryScaleResult } from './registry-scale.ts';

export interface Measurements {
  latencyC1: { samples: PerVariant<number[]>; cpu: PerVariant<CpuPerRequest | undefined> };
  rate: PerVariant<SliceResult>;
  rateLow: PerVariant<SliceResult>;
  throughput: PerVariant<SliceResult>;
  sse: PerVariant<StreamTiming[]>;
  mcp: { samples: PerVariant<number[]>; cpu: PerVariant<CpuPerRequest | undefined> };
  idleRssMb: Record<string, number>;
  /** The variants measured, in table order. */
  variants: Variant[];
  /** Each variant's proxy process names (outbound side first). */
  procNames: Partial<Record<Variant, string[]>>;
  registry?: RegistryScaleResult;
}

export interface Row { metric: string; values: PerVariant<number | undefined>; digits?: number }
export interface Check { target: string; value: string; met: boolean }

const fmt = (v: number | undefined, digits = 2) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));

export function summaryOf(m: Measurements) {
  const c1 = mapV((v) => summarize(m.latencyC1.samples[v]));
  const rate = mapV((v) => summarize(m.rate[v].latencies));
  const low = mapV((v) => summarize(m.rateLow[v].latencies));
  const thr = mapV((v) => summarize(m.throughput[v].latencies));
  const rps = mapV((v) => m.throughput[v].completed / m.throughput[v].seconds);
  const first = mapV((v) => summarize(m.sse[v].map((s) => s.firstMs)));
  const last = mapV((v) => summarize(m.sse[v].map((s) => s.lastMs)));
  const perEvent = mapV((v) => median(m.sse[v].flatMap((s) => s.perEventMs)));
  const mcp = mapV((v) => summarize(m.mcp.samples[v]));
  const addedC1 = mapV((v) => added(c1[v], c1.direct));
  const addedRate = mapV((v) => added(rate[v], rate.direct));
  const addedLow = mapV((v) => added(low[v], low.direct));
  const sseAdded = mapV((v) => perEvent[v] - perEvent.direct);
  return { c1, rate, low, thr, rps, first, last, perEvent, mcp, addedC1, addedRate, addedLow, sseAdded };
}

function mapV<T>(f: (v: Variant) => T): PerVariant<T> {
  const out = perVariant<T | undefined>(() => undefined);
  for (const v of VARIANTS) out[v] = f(v);
  return out as PerVariant<T>;
}

const onlyPairs = <T>(f: (v: Variant) => T | undefined): PerVariant<T | undefined> => mapV((v) => (v === 'direct' ? undefined : f(v)));

/** Short column names. */
const LABEL: Record<Variant, string> = { direct: 'direct', reference: 'node', undici: 'undici', agentmesh: 'am', 'agentmesh-notrace': 'am-notrace', 'agentmesh-policy': 'am-policy', 'agentmesh-audit': 'am-audit', 'agentmesh-off': 'am-off' };

export function rows(m: Measurements): Row[] {
  const s = summaryOf(m);
  const peak = (v: Variant) => (Object.keys(m.throughput[v].peakRssMb).length ? Math.max(...Object.values(m.throughput[v].peakRssMb)) : undefined);
  const idle = (v: Variant, i: number) => m.idleRssMb[m.procNames[v]?.[i] ?? ''];
  return [
    { metric: 'c=1 latency p50 (ms)', values: mapV((v) => s.c1[v].p50) },
    { metric: 'c=1 latency p90 (ms)', values: mapV((v) => s.c1[v].p90) },
    { metric: 'c=1 latency p99 (ms)', values: mapV((v) => s.c1[v].p99) },
    { metric: 'c=1 added per hop p50 (ms)', values: onlyPairs((v) => s.addedC1[v].p50), digits: 3 },
    { metric: 'c=1 added per hop p99 (ms)', values: onlyPairs((v) => s.addedC1[v].p99), digits: 3 },
    { metric: '1000 req/s achieved (req/s)', values: mapV((v) => m.rate[v].achievedRps), digits: 0 },
    { metric: '1000 req/s not sent, backlog full', values: mapV((v) => m.rate[v].dropped), digits: 0 },
    { metric: '1000 req/s latency p50 (ms)', values: mapV((v) => s.rate[v].p50) },
    { metric: '1000 req/s latency p99 (ms)', values: mapV((v) => s.rate[v].p99) },
    { metric: '1000 req/s added p50 (ms)', values: onlyPairs((v) => s.addedRate[v].p50), digits: 3 },
    { metric: '1000 req/s added p90 (ms)', values: onlyPairs((v) => s.addedRate[v].p90), digits: 3 },
    { metric: '1000 req/s added p99 (ms)', values: onlyPairs((v) => s.addedRate[v].p99), digits: 3 },
    { metric: '250 req/s added p50 (ms)', values: onlyPairs((v) => s.addedLow[v].p50), digits: 3 },
    { metric: '250 req/s added p90 (ms)', values: onlyPairs((v) => s.addedLow[v].p90), digits: 3 },
    { metric: '250 req/s added p99 (ms)', values: onlyPairs((v) => s.addedLow[v].p99), digits: 3 },
    { metric: 'throughput c=32 (req/s)', values: mapV((v) => s.rps[v]), digits: 0 },
    { metric: 'c=32 failed requests', values: mapV((v) => m.throughput[v].errors), digits: 0 },
    { metric: 'c=32 latency p50 (ms)', values: mapV((v) => s.thr[v].p50) },
    { metric: 'c=32 latency p99 (ms)', values: mapV((v) => s.thr[v].p99) },
    { metric: 'SSE first event p50 (ms)', values: mapV((v) => s.first[v].p50) },
    { metric: 'SSE last event p50 (ms)', values: mapV((v) => s.last[v].p50) },
    { metric: 'SSE per-event delay p50 (ms)', values: mapV((v) => s.perEvent[v]), digits: 3 },
    { metric: 'SSE added per event (ms)', values: onlyPairs((v) => s.sseAdded[v]), digits: 3 },
    { metric: 'MCP tools/call p50 (ms)', values: mapV((v) => s.mcp[v].p50) },
    { metric: 'MCP tools/call p99 (ms)', values: mapV((v) => s.mcp[v].p99) },
    { metric: 'CPU/req pair, c=1 (µs)', values: onlyPairs((v) => m.latencyC1.cpu[v]?.pairUs), digits: 0 },
    { metric: 'CPU/req pair, 1000 req/s (µs)', values: onlyPairs((v) => m.rate[v].cpu?.pairUs), digits: 0 },
    { metric: 'CPU/req pair, 250 req/s (µs)', values: onlyPairs((v) => m.rateLow[v].cpu?.pairUs), digits: 0 },
    { metric: 'CPU/req pair, c=32 (µs)', values: onlyPairs((v) => m.throughput[v].cpu?.pairUs), digits: 0 },
    { metric: 'CPU/req out-side proxy, c=32 (µs)', values: onlyPairs((v) => Object.values(m.throughput[v].cpu?.perProcessUs ?? {})[0]), digits: 0 },
    { metric: 'CPU/req in-side proxy, c=32 (µs)', values: onlyPairs((v) => Object.values(m.throughput[v].cpu?.perProcessUs ?? {})[1]), digits: 0 },
    { metric: 'agent CPU/req, c=32 (µs)', values: mapV((v) => m.throughput[v].agentUs), digits: 0 },
    { metric: 'RSS idle, out-side (MB)', values: onlyPairs((v) => idle(v, 0)), digits: 1 },
    { metric: 'RSS idle, in-side (MB)', values: onlyPairs((v) => idle(v, 1)), digits: 1 },
    { metric: 'RSS peak under c=32 (MB)', values: onlyPairs(peak), digits: 1 },
  ];
}

/** The table: one column per variant, then each agentmesh pair over each no-logic pair, then am/direct. */
export function table(list: Row[], variants: Variant[]): string {
  const ratios: [Variant, Variant][] = variants.filter(isMesh).flatMap((mv) => REFERENCES.filter((r) => variants.includes(r)).map((r): [Variant, Variant] => [mv, r]));
  ratios.push(['agentmesh', 'direct']);
  const head = ['metric', ...variants.map((v) => LABEL[v]), ...ratios.map(([a, b]) => `${LABEL[a]}/${LABEL[b]}`)];
  const body = list.map((r) => [
    r.metric, ...variants.map((v) => fmt(r.values[v], r.digits)),
    ...ratios.map(([a, b]) => fmt(ratio(r.values[a] ?? Number.NaN, r.values[b] ?? Number.NaN))),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i === 0 ? ':' : '') + '-'.repeat(w + 1) + (i === 0 ? '' : ':')).join('|')}|`, ...body.map(line)].join('\n');
}

export function checks(m: Measurements): Check[] {
  const s = summaryOf(m);
  const out: Check[] = [];
  const add = (target: string, value: string, met: boolean) => out.push({ target, value, met });
  // Issue 16: against the undici no-logic pair (the practical limit) and the node:https pair.
  const thr = s.rps.agentmesh / s.rps.undici;
  add('throughput ≥ 0.9× the undici pair', `${thr.toFixed(2)}× (${(s.rps.agentmesh / s.rps.reference).toFixed(2)}× the node pair)`, thr >= 0.9);
  const cpu = (v: Variant) => m.throughput[v].cpu?.pairUs ?? Number.NaN;
  const cpuRatio = cpu('agentmesh') / cpu('undici');
  add('CPU per request (c=32) ≤ 1.1× the undici pair', `${cpuRatio.toFixed(2)}× (${cpu('agentmesh').toFixed(0)} vs ${cpu('undici').toFixed(0)} µs)`, cpuRatio <= 1.1);
  add('added per hop c=1 p50 ≤ the node pair', `${s.addedC1.agentmesh.p50.toFixed(3)} vs ${s.addedC1.reference.p50.toFixed(3)} ms (undici ${s.addedC1.undici.p50.toFixed(3)})`, s.addedC1.agentmesh.p50 <= s.addedC1.reference.p50);
  add('SSE added per event ≤ 1.1× the undici pair', `${s.sseAdded.agentmesh.toFixed(3)} vs ${s.sseAdded.undici.toFixed(3)} ms`, s.sseAdded.agentmesh <= 1.1 * Math.max(0, s.sseAdded.undici));
  add('1000 req/s added p99 ≤ 1.0 ms (both sidecars)', `${s.addedRate.agentmesh.p99.toFixed(3)} ms`, s.addedRate.agentmesh.p99 <= 1.0);
  add('1000 req/s sustained (nothing left unsent)', `${m.rate.agentmesh.dropped} not sent, ${m.rate.agentmesh.achievedRps.toFixed(0)} req/s`, m.rate.agentmesh.dropped === 0);
  const early = m.sse.agentmesh.filter((t) => t.firstBeforeLastSent).length;
  add('SSE first event before the agent sends the last', `${early}/${m.sse.agentmesh.length} streams`, early === m.sse.agentmesh.length);
  const idle = Math.max(m.idleRssMb['sidecar-A'] ?? Number.NaN, m.idleRssMb['sidecar-B'] ?? Number.NaN);
  add('RSS ≤ 60 MB per idle sidecar', `${idle.toFixed(1)} MB`, idle <= 60);
  const peak = Math.max(...Object.values(m.throughput.agentmesh.peakRssMb));
  add('RSS ≤ 90 MB under the throughput run', `${peak.toFixed(1)} MB`, peak <= 90);
  const r = m.registry;
  if (r) {
    const p99 = Math.max(r.propagationWatchers.p99, r.propagationSidecars.p99);
    add('registry propagation p99 ≤ 100 ms (1,000 agents)', `${p99.toFixed(1)} ms`, p99 <= 100);
    const [one, many] = r.cost.pairCpuUsC32;
    add('per-request CPU (c=32) with 1,000 agents within 10% of 1', `${one.toFixed(0)} → ${many.toFixed(0)} µs (${(((many / one) - 1) * 100).toFixed(1)}%)`, many / one <= 1.1);
    const [a1, a2] = r.cost.addedC1P50Ms;
    add('added latency (c=1 p50) with 1,000 agents within 10% of 1', `${a1.toFixed(3)} → ${a2.toFixed(3)} ms (${(((a2 / a1) - 1) * 100).toFixed(1)}%)`, a2 / a1 <= 1.1);
  }
  return out;
}

/**
 * What the machine allows, from this run's own figures: every request costs the load generator, the
 * agent and the pair CPU time, and two CPUs bound the sum. Explains targets no proxy could meet here.
 */
export function boundLines(m: Measurements, cpus: number): string[] {
  const s = summaryOf(m);
  const cost = (r: SliceResult) => ({ loadgen: r.loadgenUs, agent: r.agentUs, pair: r.cpu?.pairUs ?? 0 });
  const t = mapV((v) => cost(m.throughput[v]));
  const rest = t.agentmesh.loadgen + t.agentmesh.agent;
  const budget = (cpus * 1e6) / (1.5 * s.rps.reference) - rest;
  const busy = (v: Variant) => {
    const c = cost(m.rate[v]);
    return `${v} ${(((c.loadgen + c.agent + c.pair) * m.rate[v].achievedRps) / 1e6).toFixed(2)} (load generator ${c.loadgen.toFixed(0)} + agent ${c.agent.toFixed(0)} + pair ${c.pair.toFixed(0)} µs/req)`;
  };
  return [
    `bounds on ${cpus} CPUs, from this run:`,
    `  c=32: load generator + agent cost ${rest.toFixed(0)} µs of CPU per request before any proxy; a pair that cost nothing would reach ≈ ${((cpus * 1e6) / rest).toFixed(0)} req/s (${((cpus * 1e6) / rest / s.rps.reference).toFixed(2)}× the reference).`,
    `  1.5× the reference (${(1.5 * s.rps.reference).toFixed(0)} req/s) leaves ${budget.toFixed(0)} µs per request for both proxies together; the node pair uses ${t.reference.pair.toFixed(0)}, the undici pair ${t.undici.pair.toFixed(0)}, agentmesh ${t.agentmesh.pair.toFixed(0)}.`,
    `  1000 req/s, CPUs busy: ${m.variants.map(busy).join('; ')}.`,
  ];
}

export function registryLines(r: RegistryScaleResult): string[] {
  const rss = (p: CostProbe) => Object.entries(p.sidecarRssMb).map(([k, v]) => `${k} ${v.toFixed(1)} MB`).join(', ');
  const pair = ([a, b]: [number, number], digits: number, unit: string) => `${a.toFixed(digits)} → ${b.toFixed(digits)}${unit} (${(((b / a) - 1) * 100).toFixed(1)}%)`;
  const last = r.probes.at(-1);
  return [
    `registry: ${r.simulatedAgents} simulated agents (heartbeat every ttl/3) announced in ${r.announceSeconds.toFixed(2)} s, listed by both sidecars after ${r.syncSeconds.toFixed(2)} s`,
    `  new record → all ${r.propagationWatchers.watchers} in-process watchers: p50 ${r.propagationWatchers.p50.toFixed(2)} ms, p99 ${r.propagationWatchers.p99.toFixed(2)} ms, max ${r.propagationWatchers.max.toFixed(2)} ms (n=${r.propagationWatchers.n})`,
    `  new record → both sidecar processes (polled every 2 ms): p50 ${r.propagationSidecars.p50.toFixed(2)} ms, p99 ${r.propagationSidecars.p99.toFixed(2)} ms`,
    `  sidecar RSS: 1 agent: ${r.probes[0] ? rss(r.probes[0]) : '–'}; ${r.simulatedAgents + 1} agents: ${last ? rss(last) : '–'}`,
    `  1 → ${r.simulatedAgents + 1} agents (means of an A-B-A-B sequence): pair CPU/req c=32 ${pair(r.cost.pairCpuUsC32, 0, ' µs')}, c=1 ${pair(r.cost.pairCpuUsC1, 0, ' µs')}; added c=1 p50 ${pair(r.cost.addedC1P50Ms, 3, ' ms')}; agentmesh/reference CPU ${pair(r.cost.meshOverRefC32, 2, '')}`,
    `  busiest sidecar's CPU with no traffic: ${pair(r.cost.idleCpuPct, 1, '% of a core')} (its watch decodes ${r.heartbeatsPerSecond.toFixed(0)} heartbeat puts/s)`,
  ];
}

/** Writes the raw samples and the summary; returns the file path. */
export function writeResults(dir: string, data: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const round = (_k: string, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v);
  writeFileSync(file, JSON.stringify(data, round));
  return file;
}

export type { Summary };
