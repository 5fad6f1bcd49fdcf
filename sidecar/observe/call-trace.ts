// The trace handle a request context carries when tracing is on (ctx.trace): the span's ids as the
// headers the next hop and the local agent get, and how to end it. No OpenTelemetry import here.
import type { RequestContext } from '../request-context.ts';
import type { CallEvent } from './call-event.ts';

export interface CallTrace {
  readonly traceId: string;
  /** `traceparent` (and `tracestate`) naming this call's span. */
  readonly headers: Readonly<Record<string, string>>;
  end(event: CallEvent): void;
}

/** Starts a span per call; loaded only when telemetry is on (tracing.ts). */
export interface CallTracer {
  begin(ctx: RequestContext, headers: Readonly<Record<string, string | string[] | undefined>>): CallTrace;
  /** Flushes what is buffered and stops exporting. Idempotent. */
  close(): Promise<void>;
}

const NONE: Readonly<Record<string, string>> = Object.freeze({});

/** The trace headers for the next hop or the local agent; none when tracing is off (traceparent then passes through). */
export function traceHeaders(ctx: RequestContext): Readonly<Record<string, string>> {
  return ctx.trace?.headers ?? NONE;
}
