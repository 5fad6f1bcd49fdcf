// What the sidecar reads of an A2A request, once per hop: for JSON-RPC the envelope (id, method) and the
// ids routing needs (task, context, message); for REST the method and task id from the path. The results
// go into the request context; the body itself is passed on untouched.
import { readEnvelope } from '../http/http-util.ts';
import type { RequestContext } from '../request-context.ts';
import { restMethod, rpcMethod, rpcTaskId, type A2aMethod } from './methods.ts';

/**
 * Reads a JSON-RPC body into `ctx` (rpcId first, so errors echo it); the table entry, if the method is
 * known. `into.params` receives the params for a caller that must look further (push targets).
 */
export function readRpcRequest(body: Buffer, ctx: RequestContext, into?: { params?: unknown }): A2aMethod | undefined {
  const envelope = readEnvelope(body, ctx);
  if (into) into.params = envelope.params;
  const resolved = rpcMethod(envelope.method);
  ctx.method = resolved?.method.name ?? 'other';
  if (!resolved) return undefined;
  ctx.taskId = rpcTaskId(resolved, envelope.params);
  const message = (envelope.params as { message?: { messageId?: unknown; contextId?: unknown } } | undefined)?.message;
  if (typeof message?.messageId === 'string' && message.messageId !== '') ctx.messageId = message.messageId;
  if (typeof message?.contextId === 'string' && message.contextId !== '') ctx.contextId = message.contextId;
  return resolved.method;
}

/** Reads a REST request's method and task id from its path into `ctx`. */
export function readRestRequest(httpMethod: string, rest: string, ctx: RequestContext): A2aMethod | undefined {
  const { method, taskId } = restMethod(httpMethod, rest);
  ctx.method = method?.name ?? 'other';
  ctx.taskId = taskId;
  return method;
}
