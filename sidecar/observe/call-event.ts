// One finished call as the access log, the tap and the trace span see it: built once from the request
// context when the response closes. Never bodies, tokens or headers; ids and names only.
import type { RequestContext } from '../request-context.ts';
import { targetLabel } from '../metric-labels.ts';

export interface CallEvent {
  /** ISO time the call finished. */
  time: string;
  requestId: string;
  direction: 'outbound' | 'inbound';
  /** The verified caller's SPIFFE ID (inbound side only). */
  caller?: string;
  /** `agent/NAME` or `mcp/NAME`. */
  target?: string;
  method: string;
  /** The HTTP status the caller got (the mapped status of a JSON-RPC error answered with 200); 0 when cut. */
  status: number;
  durationMs: number;
  retries: number;
  hops: number;
  taskId?: string;
  contextId?: string;
  tool?: string;
  /** The catalog code of an error the mesh answered itself. */
  error?: string;
  /** The policy decision, when a policy decided the call: allow or deny. */
  decision?: string;
  /** The W3C trace id, when tracing is on. */
  traceId?: string;
}

export function callEvent(ctx: RequestContext, status: number, error: string | undefined): CallEvent {
  const event: CallEvent = {
    time: new Date().toISOString(), requestId: ctx.requestId, direction: ctx.direction, method: ctx.method,
    status, durationMs: Math.round(ctx.elapsedMs() * 1000) / 1000, retries: ctx.retries, hops: ctx.hops,
  };
  if (ctx.caller !== undefined) event.caller = ctx.caller;
  if (ctx.target) event.target = targetLabel(ctx.target);
  if (ctx.taskId !== undefined) event.taskId = ctx.taskId;
  if (ctx.contextId !== undefined) event.contextId = ctx.contextId;
  if (ctx.tool !== undefined) event.tool = ctx.tool;
  if (error !== undefined) event.error = error;
  const decision = decisionOf(ctx.decision);
  if (decision !== undefined) event.decision = decision;
  if (ctx.trace) event.traceId = ctx.trace.traceId;
  return event;
}

/** ctx.decision as a word: the policy layer's `{ allowed }`, or a string it set. */
export function decisionOf(decision: unknown): string | undefined {
  if (typeof decision === 'string') return decision;
  if (typeof decision === 'object' && decision !== null && 'allowed' in decision && typeof decision.allowed === 'boolean') {
    return decision.allowed ? 'allow' : 'deny';
  }
  return undefined;
}
