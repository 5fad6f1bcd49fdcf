// Prometheus metrics for one sidecar (prom-client, a registry of its own): requests, errors and
// latency per direction, target, method and caller. Served by the admin listener at /metrics.
// Labels come from the request context (methods from a2a/methods.ts), targets spelled by metric-labels.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { ERROR_HEADER, STATUS_HEADER } from '../sdk/mesh-headers.ts';
import type { CallObserver } from './observe/call-observer.ts';
import type { Direction, RequestContext } from './request-context.ts';
import { BoundedLabel, targetLabel } from './metric-labels.ts';

export type { Direction };

export interface Metrics {
  readonly registry: Registry;
  /**
   * Records one finished request. `code` is the HTTP status the caller got (0 when the stream was cut);
   * `caller` is the verified SPIFFE ID on the inbound side ('-' outbound), bounded to MAX_CALLERS values.
   */
  observe(direction: Direction, target: string, method: string, caller: string, code: number, seconds: number): void;
  /** A retry the outbound side made, and why (HTTP 503, ECONNREFUSED, …). */
  retry(target: string, reason: string): void;
  /** A circuit breaker changed state for one instance of a target ('open' is an ejection). */
  breaker(target: string, instance: string, state: 'open' | 'half-open' | 'close'): void;
  /** Drops the per-instance series of an instance that left the registry. */
  forgetInstance(target: string, instance: string): void;
  /** Serves agentmesh_cert_expiry_seconds: seconds until the current SVID expires (negative once it has). */
  certExpiry(notAfter: () => Date): void;
  /** A registry value this sidecar did not use, by reason (bad_signature, name_not_owned, replay …). */
  registryRejected(reason: string): void;
  /** A stored tool pin this sidecar ignored, by reason (unsigned, not_authority, replaced …). */
  toolPinRejected(reason: string): void;
}

const MAX_CACHED_SERIES = 10_000;
/** Distinct callers named in the inbound metrics; later ones are counted as caller="other". */
export const MAX_CALLERS = 50;

export function createMetrics(): Metrics {
  const registry = new Registry();
  // prom-client's own names already start with process_ / nodejs_: agentmesh_process_cpu_seconds_total.
  collectDefaultMetrics({ register: registry, prefix: 'agentmesh_' });
  const callers = new BoundedLabel(MAX_CALLERS);
  const labelNames = ['direction', 'target', 'method', 'caller', 'code'] as const;
  // The series of each request are counted in plain numbers on the request path and handed to prom-client
  // when /metrics is read (its collect hooks): prom-client validates and hashes the labels on every inc()
  // and observe(), which profiles showed on every request.
  const children = new Map<string, Series>();
  /** The series the previous request counted in. */
  let last: Series | undefined;
  /** Series whose counts moved since the last scrape. */
  const dirty = new Set<Series>();
  const flush = (): void => {
    for (const series of dirty) {
      if (series.requests > 0) requests.inc(series.labels, series.requests);
      if (series.errors > 0) errors.inc(series.labels, series.errors);
      series.requests = 0;
      series.errors = 0;
    }
    dirty.clear();
  };
  const requests = new Counter({ name: 'agentmesh_requests_total', help: 'Requests handled, by direction, target, method, caller and status code', labelNames, registers: [registry], collect: flush });
  const errors = new Counter({ name: 'agentmesh_request_errors_total', help: 'Requests answered with a status >= 400 or cut', labelNames, registers: [registry], collect: flush });
  const latency = new LatencyHistogram({
    name: 'agentmesh_request_duration_seconds', help: 'Time from request to the end of the response (whole stream for SSE)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  registry.registerMetric(latency as unknown as Metric);
  const retries = new Counter({ name: 'agentmesh_retries_total', help: 'Retries made by the outbound side, by target and reason', labelNames: ['target', 'reason'] as const, registers: [registry] });
  const transitions = new Counter({ name: 'agentmesh_breaker_transitions_total', help: 'Circuit breaker state changes per target instance (state="open" is an ejection)', labelNames: ['target', 'instance', 'state'] as const, registers: [registry] });
  const open = new Gauge({ name: 'agentmesh_breaker_open', help: '1 while the breaker of a target instance is open', labelNames: ['target', 'instance'] as const, registers: [registry] });
  const rejected = new Counter({ name: 'agentmesh_registry_rejected_total', help: 'Registry values ignored, by reason (signature, chain, expiry, name binding, replay, MCP name conflict, invalid)', labelNames: ['reason'] as const, registers: [registry] });
  const pinsRejected = new Counter({ name: 'agentmesh_tool_pins_rejected_total', help: 'Stored tool pins ignored, by reason (unsigned, bad_signature, not_authority: an approval not signed by the mesh CA, wrong_tool, replaced: a first-use pin over another value, invalid)', labelNames: ['reason'] as const, registers: [registry] });
  return {
    registry,
    certExpiry(notAfter) {
      new Gauge({
        name: 'agentmesh_cert_expiry_seconds', help: 'Seconds until the current workload certificate (SVID) expires', registers: [registry],
        collect() { this.set((notAfter().getTime() - Date.now()) / 1000); },
      });
    },
    retry(target, reason) {
      retries.inc({ target, reason: /^(HTTP \d{3}|circuit-open|[A-Z][A-Z_]{1,40})$/.test(reason) ? reason : 'other' });
    },
    registryRejected(reason) {
      rejected.inc({ reason });
    },
    toolPinRejected(reason) {
      pinsRejected.inc({ reason });
    },
    breaker(target, instance, state) {
      transitions.inc({ target, instance, state });
      open.set({ target, instance }, state === 'open' ? 1 : 0);
    },
    forgetInstance(target, instance) {
      open.remove({ target, instance });
      for (const state of ['open', 'half-open', 'close']) transitions.remove({ target, instance, state });
    },
    observe(direction, target, method, caller, code, seconds) {
      // Most requests carry the labels of the one before: compared as they are before a key string is built.
      let series = last !== undefined && last.code === code && last.caller === caller && last.labels.method === method && last.labels.target === target && last.labels.direction === direction ? last : undefined;
      const key = series === undefined ? `${direction} ${target} ${method} ${code} ${caller}` : '';
      series ??= children.get(key);
      if (!series) {
        if (children.size >= MAX_CACHED_SERIES) {
          flush();
          children.clear();
        }
        const labels = { direction, target, method, caller: callers.of(caller), code: String(code) };
        series = { labels, code, caller, failed: code === 0 || code >= 400, requests: 0, errors: 0, latency: latency.series(direction, target, method) };
        children.set(key, series);
      }
      last = series;
      series.requests++;
      if (series.failed) series.errors++;
      dirty.add(series);
      latency.observe(series.latency, seconds);
    },
  };
}

/** Told of each tracked call when its response closes (the audit's CallAudit): one object per sidecar, no callback per request. */
export interface CallRecorder {
  done(ctx: RequestContext, req: IncomingMessage, code: number): void;
}

/**
 * Times one request and records it when its response closes, with the labels its context holds by
 * then. A JSON-RPC error the mesh answered with HTTP 200 counts with the status it maps to.
 * `recorder` gets the same status (the audit record of the call); `observer` (observe/) ends the span, logs the access line and feeds the tap.
 */
export function trackRequest(metrics: Metrics, ctx: RequestContext, res: ServerResponse, recorder?: CallRecorder, observer?: CallObserver): void {
  // on(), not once(): a response emits 'close' once, and once() adds a wrapper and its state per request.
  res.on('close', () => {
    const meshStatus = Number(res.getHeader(STATUS_HEADER));
    const code = !res.writableFinished && !listenEnded(ctx, res) ? 0 : meshStatus > 0 ? meshStatus : res.statusCode;
    const target = ctx.target ? targetLabel(ctx.target) : '-';
    metrics.observe(ctx.direction, target, ctx.method, ctx.caller ?? '-', code, ctx.elapsedMs() / 1000);
    recorder?.done(ctx, res.req, code);
    if (observer) { const error = res.getHeader(ERROR_HEADER); observer.end(ctx, code, typeof error === 'string' ? error : undefined); }
  });
}

/**
 * An MCP GET (listen) stream only its client ends: the client closing it after its head went out is its
 * normal end, not a cut. A stream the sidecar's side broke (res.errored) is still a cut (code 0).
 */
function listenEnded(ctx: RequestContext, res: ServerResponse): boolean {
  return ctx.method === 'MCP GET' && res.headersSent && !res.errored;
}

interface Series {
  labels: { direction: string; target: string; method: string; caller: string; code: string };
  /** The code and caller as observed (the caller label may be 'other'). */
  code: number;
  caller: string;
  failed: boolean;
  /** Counts not yet handed to prom-client. */
  requests: number;
  errors: number;
  latency: HistogramSeries;
}

interface HistogramSeries {
  labels: { direction: string; target: string; method: string };
  /** Observations per bucket (not cumulative), the last one past every bound (+Inf). */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * agentmesh_request_duration_seconds: a Prometheus histogram with the exposition of prom-client's own (the
 * registry formats it), observed with one array increment per request where prom-client's Histogram
 * validates and hashes the labels of every observation. The series are few (direction, target, method).
 */
class LatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(options: { name: string; help: string; buckets: number[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = options.buckets;
  }

  series(direction: string, target: string, method: string): HistogramSeries {
    const key = `${direction} ${target} ${method}`;
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, s = { labels: { direction, target, method }, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 });
    return s;
  }

  observe(s: HistogramSeries, seconds: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += seconds;
    s.count++;
  }

  /** What the registry prints: the shape prom-client's Histogram gives (le first, then the series' labels). */
  getForPromString(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string }[] } {
    const values = [];
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i] ?? 0;
        values.push({ labels: { le: this.#bounds[i] as number }, sharedLabels: s.labels, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** As prom-client's get(): each value's labels whole (the dashboard reads these). */
  async get(): Promise<ReturnType<LatencyHistogram['getForPromString']>> {
    const data = this.getForPromString();
    data.values = data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels }, sharedLabels: {} }));
    return data;
  }

  reset(): void {
    for (const s of this.#series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
