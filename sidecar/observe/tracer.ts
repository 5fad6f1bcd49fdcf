// The sidecar's tracer, loaded only when telemetry.enabled is true: W3C trace context continued from the
// caller or started, a client span per outbound call and a server span per inbound call, recorded as
// plain objects and exported as OTLP/HTTP JSON by span-exporter.ts. Nothing global, no OpenTelemetry SDK:
// a span costs a parse, two ids from a pool, one object and a few field writes on the request path.
import type { Logger } from '../log.ts';
import { CallSpan } from './call-span.ts';
import type { CallTrace, CallTracer } from './call-trace.ts';
import { requestHead } from './otlp-json.ts';
import { otlpHeadersFromEnv, SpanExporter, type SpanExporterOptions } from './span-exporter.ts';
import { IdPool, parseTraceparent, parseTracestate, ratioSampler } from './trace-context.ts';

export interface TracerOptions {
  /** The OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces. */
  endpoint: string;
  /** 0–1: the share of new traces recorded; a caller's sampled flag is followed. */
  sampling: number;
  serviceName: string;
  /** Resource attributes naming this sidecar. */
  resource: Record<string, string>;
  log: Logger;
  /** Queue, batch and timing limits of the exporter (tests). */
  export?: Omit<SpanExporterOptions, 'endpoint' | 'head' | 'log'>;
}

/** The instrumentation scope spans are exported under. */
const SCOPE = 'agentmesh';

/** A call that is not recorded still gets a span id of its own, so the next hop sees it as the parent (flags 00). */
class UnsampledTrace implements CallTrace {
  constructor(readonly traceId: string, readonly headers: Readonly<Record<string, string>>) {}
  end(): void { /* not recorded */ }
}

export function createTracer(options: TracerOptions): CallTracer {
  const ids = new IdPool();
  const sampleNew = ratioSampler(options.sampling);
  const exporter = new SpanExporter({
    ...options.export,
    endpoint: options.endpoint,
    headers: otlpHeadersFromEnv(process.env),
    head: requestHead({ 'service.name': options.serviceName, ...options.resource }, SCOPE),
    log: options.log,
  });
  const done = (span: CallSpan) => exporter.add(span);
  return {
    begin(ctx, headers) {
      const parent = parseTraceparent(headers.traceparent);
      const traceId = parent?.traceId ?? ids.traceId();
      const spanId = ids.spanId();
      const sampled = parent ? parent.sampled : sampleNew(traceId);
      const traceState = parent && headers.tracestate !== undefined ? parseTracestate(headers.tracestate) : undefined;
      const traceparent = `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
      const out: Record<string, string> = traceState === undefined ? { traceparent } : { traceparent, tracestate: traceState };
      if (!sampled) return new UnsampledTrace(traceId, out);
      return new CallSpan({ traceId, spanId, parentSpanId: parent?.spanId, traceState }, out, ctx.startedAt, done);
    },
    stats: () => exporter.stats(),
    close: () => exporter.close(),
  };
}
