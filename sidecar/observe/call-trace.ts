// The trace handle a request context carries when tracing is on (ctx.trace): the span's ids as the
// headers the next hop and the local agent get, and how to end it. The recorder is tracer.ts.
import type { RequestContext } from '../request-context.ts';

export interface CallTrace {
  readonly traceId: string;
  /** `traceparent` (and `tracestate`) naming this call's span. */
  readonly headers: Readonly<Record<string, string>>;
  /** The call's response closed with `status` (0 when cut) and the mesh's error code, if any: records the span when sampled. */
  end(ctx: RequestContext, status: number, error: string | undefined): void;
}

/** What a tracer has done since it started (/api/state). */
export interface TracerStats {
  /** Spans recorded and waiting for export. */
  queued: number;
  /** Spans the collector accepted. */
  exported: number;
  /** Spans lost: the queue was full, or their export failed for good. */
  dropped: number;
  /** Export requests that failed (each retried ones counted once). */
  failedExports: number;
}

/** Starts a span per call; loaded only when telemetry is on (tracing.ts). */
export interface CallTracer {
  begin(ctx: RequestContext, headers: Readonly<Record<string, string | string[] | undefined>>): CallTrace;
  stats(): TracerStats;
  /** Exports what is queued and stops exporting. Idempotent. */
  close(): Promise<void>;
}

const NONE: Readonly<Record<string, string>> = Object.freeze({});

/** The trace headers for the next hop or the local agent; none when tracing is off (traceparent then passes through). */
export function traceHeaders(ctx: RequestContext): Readonly<Record<string, string>> {
  return ctx.trace?.headers ?? NONE;
}

/**
 * Writes this call's trace headers over the caller's in `headers` (forwarded headers, filled in place).
 * With tracing on, the sidecar owns both: a caller's `tracestate` is dropped when the call's trace has
 * none (its `traceparent` was invalid, so a new trace began, or no member of it was valid), as W3C trace
 * context asks. With tracing off nothing changes: both pass through as the caller sent them.
 */
export function withTraceHeaders<H extends Record<string, string | string[]>>(headers: H, ctx: RequestContext): H {
  const trace = ctx.trace?.headers;
  if (trace === undefined) return headers;
  const out = headers as Record<string, string | string[]>;
  for (const name in trace) out[name] = trace[name] as string;
  // Deleted only when there is one: most calls carry none, and a delete can slow the object down.
  if (trace.tracestate === undefined && out.tracestate !== undefined) delete out.tracestate;
  return headers;
}
