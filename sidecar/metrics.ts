// Prometheus metrics for one sidecar (prom-client, a registry of its own): requests, errors and
// latency per direction, target and method. Served by the admin listener at /metrics.
import type { ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STATUS_HEADER } from '../sdk/mesh-headers.ts';
import type { Direction, RequestContext } from './request-context.ts';

export type { Direction };

export interface Metrics {
  readonly registry: Registry;
  /** Records one finished request. `code` is the HTTP status the caller got (0 when the stream was cut). */
  observe(direction: Direction, target: string, method: string, code: number, seconds: number): void;
  /** A retry the outbound side made, and why (HTTP 503, ECONNREFUSED, …). */
  retry(target: string, reason: string): void;
  /** A circuit breaker changed state for one instance of a target ('open' is an ejection). */
  breaker(target: string, instance: string, state: 'open' | 'half-open' | 'close'): void;
}

const MAX_CACHED_SERIES = 10_000;

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'agentmesh_process_' });
  const labelNames = ['direction', 'target', 'method', 'code'] as const;
  const requests = new Counter({ name: 'agentmesh_requests_total', help: 'Requests handled, by direction, target, method and status code', labelNames, registers: [registry] });
  const errors = new Counter({ name: 'agentmesh_request_errors_total', help: 'Requests answered with a status >= 400 or cut', labelNames, registers: [registry] });
  const latency = new Histogram({
    name: 'agentmesh_request_duration_seconds', help: 'Time from request to the end of the response (whole stream for SSE)',
    labelNames: ['direction', 'target', 'method'] as const, registers: [registry],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  const retries = new Counter({ name: 'agentmesh_retries_total', help: 'Retries made by the outbound side, by target and reason', labelNames: ['target', 'reason'] as const, registers: [registry] });
  const transitions = new Counter({ name: 'agentmesh_breaker_transitions_total', help: 'Circuit breaker state changes per target instance (state="open" is an ejection)', labelNames: ['target', 'instance', 'state'] as const, registers: [registry] });
  const open = new Gauge({ name: 'agentmesh_breaker_open', help: '1 while the breaker of a target instance is open', labelNames: ['target', 'instance'] as const, registers: [registry] });
  // The labelled series of each (direction, target, method, code), looked up once: prom-client hashes labels on every call.
  const children = new Map<string, { requests: { inc(): void }; errors: { inc(): void } | undefined; latency: { observe(v: number): void } }>();
  return {
    registry,
    retry(target, reason) {
      retries.inc({ target, reason: /^(HTTP \d{3}|circuit-open|[A-Z][A-Z_]{1,40})$/.test(reason) ? reason : 'other' });
    },
    breaker(target, instance, state) {
      transitions.inc({ target, instance, state });
      open.set({ target, instance }, state === 'open' ? 1 : 0);
    },
    observe(direction, target, method, code, seconds) {
      const key = `${direction} ${target} ${method} ${code}`;
      let series = children.get(key);
      if (!series) {
        if (children.size >= MAX_CACHED_SERIES) children.clear();
        const failed = code === 0 || code >= 400;
        series = {
          requests: requests.labels(direction, target, method, String(code)),
          errors: failed ? errors.labels(direction, target, method, String(code)) : undefined,
          latency: latency.labels(direction, target, method),
        };
        children.set(key, series);
      }
      series.requests.inc();
      series.errors?.inc();
      series.latency.observe(seconds);
    },
  };
}

/**
 * Times one request and records it when its response closes, with the labels its context holds by
 * then. A JSON-RPC error the mesh answered with HTTP 200 counts with the status it maps to.
 */
export function trackRequest(metrics: Metrics, ctx: RequestContext, res: ServerResponse): void {
  res.once('close', () => {
    const meshStatus = Number(res.getHeader(STATUS_HEADER));
    const code = !res.writableFinished ? 0 : meshStatus > 0 ? meshStatus : res.statusCode;
    metrics.observe(ctx.direction, ctx.target?.name ?? '-', ctx.method, code, ctx.elapsedMs() / 1000);
  });
}
