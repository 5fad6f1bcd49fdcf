// Edges for the dashboard (GET /api/edges): per caller → target, requests, errors, rate and latency,
// derived from the sidecar's own counters on request, so the request path pays nothing for them.
import type { Registry } from 'prom-client';

export interface Edge {
  direction: 'outbound' | 'inbound';
  /** The calling agent: this sidecar's agent outbound, the verified caller (SPIFFE ID) inbound. */
  from: string;
  /** `agent/NAME` or `mcp/NAME`. */
  to: string;
  requests: number;
  errors: number;
  /** Requests per second over the last minute (at least one second between samples); null until known. */
  rate: number | null;
  /** Mean and 95th percentile (from the histogram's buckets) in ms, per direction and target. */
  meanMs: number | null;
  p95Ms: number | null;
}

interface Sample { at: number; requests: Map<string, number> }
interface Values { values: { value: number; labels: Record<string, string | number>; metricName?: string }[] }

const WINDOW_MS = 60_000;
const MAX_SAMPLES = 64;

export class EdgeRates {
  readonly #registry: Registry;
  readonly #self: () => string;
  #samples: Sample[] = [];

  /** `self` names this sidecar's side of its outbound edges (its agent, else its SPIFFE ID). */
  constructor(registry: Registry, self: () => string) {
    this.#registry = registry;
    this.#self = self;
  }

  async edges(now = Date.now()): Promise<Edge[]> {
    const requests = await this.#values('agentmesh_requests_total');
    const errors = await this.#values('agentmesh_request_errors_total');
    const latency = latencyByTarget(await this.#values('agentmesh_request_duration_seconds'));
    const edges = new Map<string, Edge>();
    const edge = (labels: Record<string, string | number>): Edge | undefined => {
      const direction = labels.direction === 'inbound' ? 'inbound' : 'outbound';
      const to = String(labels.target ?? '-');
      if (to === '-') return undefined;
      const from = direction === 'outbound' ? this.#self() : String(labels.caller ?? '-');
      const key = `${direction} ${from} ${to}`;
      let found = edges.get(key);
      if (!found) {
        const l = latency.get(`${direction} ${to}`);
        found = { direction, from, to, requests: 0, errors: 0, rate: null, meanMs: l?.meanMs ?? null, p95Ms: l?.p95Ms ?? null };
        edges.set(key, found);
      }
      return found;
    };
    for (const v of requests) { const e = edge(v.labels); if (e) e.requests += v.value; }
    for (const v of errors) { const e = edge(v.labels); if (e) e.errors += v.value; }
    this.#rates(edges, now);
    return [...edges.values()].sort((a, b) => b.requests - a.requests);
  }

  /** Rates against the oldest sample of the last minute that is at least a second old. */
  #rates(edges: Map<string, Edge>, now: number): void {
    this.#samples = this.#samples.filter((s) => now - s.at <= WINDOW_MS).slice(-MAX_SAMPLES);
    const base = this.#samples.find((s) => now - s.at >= 1000);
    if (base) {
      const seconds = (now - base.at) / 1000;
      for (const [key, e] of edges) e.rate = Math.round(((e.requests - (base.requests.get(key) ?? 0)) / seconds) * 100) / 100;
    }
    this.#samples.push({ at: now, requests: new Map([...edges].map(([key, e]) => [key, e.requests])) });
  }

  async #values(name: string): Promise<Values['values']> {
    const metric = this.#registry.getSingleMetric(name);
    if (!metric) return [];
    return ((await metric.get()) as Values).values;
  }
}

/** Mean and p95 (upper bound of the bucket that holds it) per `direction target`, over every method. */
function latencyByTarget(values: Values['values']): Map<string, { meanMs: number | null; p95Ms: number | null }> {
  const acc = new Map<string, { sum: number; count: number; buckets: Map<number, number> }>();
  for (const v of values) {
    const key = `${String(v.labels.direction)} ${String(v.labels.target)}`;
    let a = acc.get(key);
    if (!a) acc.set(key, a = { sum: 0, count: 0, buckets: new Map() });
    if (v.metricName?.endsWith('_sum')) a.sum += v.value;
    else if (v.metricName?.endsWith('_count')) a.count += v.value;
    else if (v.metricName?.endsWith('_bucket')) {
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      a.buckets.set(le, (a.buckets.get(le) ?? 0) + v.value);
    }
  }
  const out = new Map<string, { meanMs: number | null; p95Ms: number | null }>();
  for (const [key, a] of acc) {
    if (a.count === 0) { out.set(key, { meanMs: null, p95Ms: null }); continue; }
    const bound = [...a.buckets].sort((x, y) => x[0] - y[0]).find(([, n]) => n >= a.count * 0.95)?.[0];
    out.set(key, { meanMs: round(a.sum / a.count * 1000), p95Ms: bound === undefined || bound === Infinity ? null : round(bound * 1000) });
  }
  return out;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
