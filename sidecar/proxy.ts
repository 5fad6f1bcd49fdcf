// Streaming forwarder: sends one request through an undici dispatcher and pipes the response back
// as it arrives (SSE included). Never buffers a response; maps transport failures to catalog errors.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { MeshError } from '../sdk/index.ts';
import { responseHeaders } from './http-util.ts';
import { Deadline } from './deadline.ts';

export interface ForwardRequest {
  dispatcher: Dispatcher;
  /** Origin of the next hop, e.g. https://127.0.0.1:15443 (for error messages). */
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer | IncomingMessage;
  signal: AbortSignal;
  /** Who the next hop is, for error messages ("agent 'x' at …"). */
  target: string;
  /**
   * The time budget: for the whole exchange of a plain response, and for the first byte and each idle
   * gap of an SSE stream (a long stream that keeps producing events is never cut).
   */
  timeoutMs?: number;
  /** Sees the status and headers before they are passed on (e.g. to learn a session id). */
  onResponse?: (status: number, headers: Record<string, string | string[] | undefined>) => void;
  /** Sees every body chunk as it passes, and whether the body ended completely. */
  observe?: { chunk(c: Buffer): void; end(complete: boolean): void };
}

/**
 * Forwards and streams the answer into `res`. Resolves when the response has been fully written;
 * rejects with a MeshError before any byte was written, or destroys `res` if the stream breaks later.
 */
export async function forward(request: ForwardRequest, res: ServerResponse): Promise<void> {
  const deadline = new Deadline(request.timeoutMs, request.target);
  const signal = AbortSignal.any([request.signal, deadline.signal]);
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await send(request, signal, deadline);
  } catch (err) {
    deadline.clear();
    request.observe?.end(false);
    throw err;
  }
  request.onResponse?.(upstream.statusCode, upstream.headers);
  const observe = request.observe;
  if (observe) upstream.body.on('data', (c: Buffer) => observe.chunk(c));
  try {
    await relay(upstream, res, deadline);
  } finally {
    observe?.end(res.writableFinished);
  }
}

/** Sends the request and waits for the response headers; failures come back as catalog errors. */
export async function send(request: Omit<ForwardRequest, 'signal'>, signal: AbortSignal, deadline: Deadline): Promise<Dispatcher.ResponseData> {
  try {
    return await request.dispatcher.request({
      origin: request.origin,
      method: request.method as Dispatcher.HttpMethod,
      path: request.path,
      headers: request.headers,
      body: request.body ?? null,
      signal,
      bodyTimeout: 0,
    });
  } catch (err) {
    throw deadline.expired() ?? upstreamError(err, { ...request, signal });
  }
}

/** Streams a response into `res` as it arrives; an SSE stream's deadline restarts with every chunk. */
export async function relay(upstream: Dispatcher.ResponseData, res: ServerResponse, deadline: Deadline, extraHeaders: Record<string, string> = {}, tap?: (firstChunk: Buffer) => void): Promise<void> {
  if (tap) upstream.body.once('data', tap);
  const contentType = String(upstream.headers['content-type'] ?? '');
  if (contentType.startsWith('text/event-stream')) {
    deadline.restart();
    upstream.body.on('data', () => deadline.restart());
  }
  res.writeHead(upstream.statusCode, { ...responseHeaders(upstream.headers), ...extraHeaders });
  res.flushHeaders();
  try {
    await pipeline(upstream.body, res);
  } catch (err) {
    upstream.body.destroy();
    if (!res.destroyed) res.destroy(err instanceof Error ? err : undefined);
  } finally {
    deadline.clear();
  }
}

/** Maps an undici / TLS failure to the catalog, naming the hop. */
export function upstreamError(err: unknown, request: Pick<ForwardRequest, 'origin' | 'target' | 'signal'>): MeshError {
  if (err instanceof MeshError) return err;
  const code = errorCode(err);
  if (code === 'PEER_IDENTITY_MISMATCH') {
    return new MeshError('PEER_IDENTITY_MISMATCH', `${request.target} at ${request.origin}: ${messageOf(err)}`, { cause: err });
  }
  if (request.signal.aborted) {
    return new MeshError('ABORTED', `call to ${request.target} was aborted`, { cause: err });
  }
  return new MeshError('UPSTREAM_UNAVAILABLE', `${request.target} at ${request.origin} is unreachable (${code ?? messageOf(err)})`, { cause: err });
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'PEER_IDENTITY_MISMATCH') return code;
    if (code && e.cause === undefined) return code;
  }
  return err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
