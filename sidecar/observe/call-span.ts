// One sampled call's span as the tracer records it: the ids and start when the request arrives, the
// call's facts copied from its request context when the response closes (plain field writes, no
// attribute objects), then queued whole for otlp-json.ts to encode off the request path.
import type { Direction, RequestContext, Target } from '../request-context.ts';
import { decisionOf } from './call-event.ts';
import type { CallTrace } from './call-trace.ts';

export class CallSpan implements CallTrace {
  readonly traceId: string;
  readonly spanId: string;
  /** The caller's span (from its traceparent); undefined for a span that starts a trace. */
  readonly parentSpanId: string | undefined;
  readonly traceState: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** performance.now() when the request arrived and when its response closed. */
  readonly startedAt: number;
  endedAt = 0;
  direction: Direction = 'outbound';
  method = '';
  requestId = '';
  target: Target | undefined;
  caller: string | undefined;
  taskId: string | undefined;
  contextId: string | undefined;
  tool: string | undefined;
  decision: string | undefined;
  error: string | undefined;
  status = 0;
  retries = 0;
  hops = 0;
  readonly #done: (span: CallSpan) => void;

  constructor(ids: { traceId: string; spanId: string; parentSpanId: string | undefined; traceState: string | undefined }, headers: Readonly<Record<string, string>>, startedAt: number, done: (span: CallSpan) => void) {
    this.traceId = ids.traceId;
    this.spanId = ids.spanId;
    this.parentSpanId = ids.parentSpanId;
    this.traceState = ids.traceState;
    this.headers = headers;
    this.startedAt = startedAt;
    this.#done = done;
  }

  end(ctx: RequestContext, status: number, error: string | undefined): void {
    if (this.endedAt !== 0) return;
    this.endedAt = performance.now();
    this.direction = ctx.direction;
    this.method = ctx.method;
    this.requestId = ctx.requestId;
    this.target = ctx.target;
    this.caller = ctx.caller;
    this.taskId = ctx.taskId;
    this.contextId = ctx.contextId;
    this.tool = ctx.tool;
    this.decision = decisionOf(ctx.decision);
    this.error = error;
    this.status = status;
    this.retries = ctx.retries;
    this.hops = ctx.hops;
    this.#done(this);
  }
}
