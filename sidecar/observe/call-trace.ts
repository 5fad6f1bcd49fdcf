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
