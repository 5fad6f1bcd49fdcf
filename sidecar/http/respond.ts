// The one place errors become HTTP responses: a JSON-RPC error object on JSON-RPC routes (HTTP 200 on
// the agent-facing A2A JSON-RPC route, as A2A servers answer), a google.rpc.Status body elsewhere. Status
// and codes come from the catalog in sdk/errors.ts; unexpected errors are logged once, with their cause.
import type { ServerResponse } from 'node:http';
import { MeshError } from '../../sdk/errors.ts';
import { ERROR_HEADER, REQUEST_ID_HEADER, STATUS_HEADER } from '../../sdk/mesh-headers.ts';
import type { Logger } from '../log.ts';
import type { ErrorStyle } from '../request-context.ts';

export type { ErrorStyle };

/** What an error answer needs to know about the request (a RequestContext satisfies it). */
export interface ErrorContext {
  style: ErrorStyle;
  /** The JSON-RPC request id, when one was read. */
  rpcId?: string | number | null | undefined;
  requestId?: string;
  /** Where an unexpected (INTERNAL) error is logged with its cause. */
  log?: Logger;
}

/** Anything thrown in a handler, as a MeshError (unknown errors become INTERNAL). */
export function toMeshError(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  return new MeshError('INTERNAL', 'internal error in the sidecar', { cause: err });
}

export function errorBody(error: MeshError, ctx: ErrorContext): Record<string, unknown> {
  const data = { code: error.code, ...error.details, ...(ctx.requestId ? { requestId: ctx.requestId } : {}) };
  if (ctx.style !== 'json') {
    return { jsonrpc: '2.0', id: ctx.rpcId ?? null, error: { code: error.rpcCode, message: error.message, data } };
  }
  // google.rpc.Status (AIP-193), the shape A2A's HTTP+JSON binding uses; the reason is our catalog code.
  return {
    error: {
      code: error.httpStatus,
      status: STATUS_NAMES[error.httpStatus] ?? 'UNKNOWN',
      message: error.message,
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: error.code, domain: 'agentmesh', metadata: stringify(data) }],
    },
  };
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 405: 'UNIMPLEMENTED', 409: 'ALREADY_EXISTS', 413: 'RESOURCE_EXHAUSTED',
  429: 'RESOURCE_EXHAUSTED', 499: 'CANCELLED', 500: 'INTERNAL', 502: 'UNAVAILABLE', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED', 508: 'ABORTED',
};

/** ErrorInfo metadata is a string map. */
function stringify(details: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(details)) if (k !== 'code') out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/** The HTTP status an error is answered with on a route of this style. */
export function errorStatus(error: MeshError, style: ErrorStyle): number {
  if (style === 'a2a-jsonrpc') return 200;
  return error.httpStatus === 499 ? 400 : error.httpStatus;
}

/** Writes the error unless headers are already out; then the stream is cut instead (the caller sees it end). */
export function sendError(res: ServerResponse, err: unknown, ctx: ErrorContext): void {
  const error = toMeshError(err);
  if (error.code === 'INTERNAL') ctx.log?.error({ err: error.cause ?? error, requestId: ctx.requestId }, 'internal error answered as INTERNAL');
  if (res.headersSent) {
    res.destroy(error);
    return;
  }
  const body = JSON.stringify(errorBody(error, ctx));
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  // Set (not only written) so that whoever observes the response, e.g. metrics, can read them back.
  res.setHeader(ERROR_HEADER, error.code);
  res.setHeader(STATUS_HEADER, String(error.httpStatus));
  if (ctx.requestId) res.setHeader(REQUEST_ID_HEADER, ctx.requestId);
  if (error.retryAfterMs !== undefined) res.setHeader('retry-after', String(retryAfterSeconds(error.retryAfterMs)));
  if (res.req && !res.req.complete) answeredEarly(res);
  res.writeHead(errorStatus(error, ctx.style), headers);
  res.end(body);
}

/** Up to this many bytes of a refused body are read and discarded; beyond it the connection is closed. */
const DISCARD_LIMIT = 1024 * 1024;
/** How long a connection whose body was refused stays open after the answer, for the caller to read it. */
const LINGER_MS = 1000;

/**
 * The answer goes out before the request body was read (413, a body nested too deep, a refusal at
 * admission). A small rest is read and discarded so the connection can carry the next request. A large
 * or unsized rest is not read at all — discarding megabytes over TLS costs as much memory and CPU as
 * reading them: the request is paused and the socket is closed a moment after the answer was flushed,
 * once the caller had the time to read it (a lingering close).
 */
function answeredEarly(res: ServerResponse): void {
  const req = res.req;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared <= DISCARD_LIMIT) {
    req.resume();
    return;
  }
  req.pause();
  // Not `connection: close`: Node ends such a response with destroySoon(), which resets a socket that
  // still has unread input, often before the caller read the answer. It is closed LINGER_MS later.
  res.once('finish', () => {
    setTimeout(() => req.socket.destroy(), LINGER_MS).unref();
  });
}

/** Retry-After is whole seconds (RFC 9110); a wait under a second is still 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The SSE event that ends a stream the sidecar cut (cap, idle timeout): a JSON-RPC error response on
 * JSON-RPC routes (A2A clients read every event as one), an `error` event with google.rpc.Status elsewhere.
 */
export function sseErrorEvent(error: MeshError, ctx: ErrorContext): string {
  const data = JSON.stringify(errorBody(error, ctx));
  return ctx.style === 'json' ? `event: error\ndata: ${data}\n\n` : `data: ${data}\n\n`;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
