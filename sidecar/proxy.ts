// Streaming forwarder: sends one request through an undici dispatcher and pipes the response back
// as it arrives (SSE included). Never buffers a response; maps transport failures to catalog errors.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { MeshError } from '../sdk/index.ts';
import { responseHeaders } from './http-util.ts';

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
    upstream = await request.dispatcher.request({
      origin: request.origin,
      method: request.method as Dispatcher.HttpMethod,
      path: request.path,
      headers: request.headers,
      body: request.body ?? null,
      signal,
      bodyTimeout: 0,
    });
  } catch (err) {
    deadline.clear();
    throw deadline.expired() ?? upstreamError(err, { ...request, signal });
  }
  request.onResponse?.(upstream.statusCode, upstream.headers);
  const contentType = String(upstream.headers['content-type'] ?? '');
  if (contentType.startsWith('text/event-stream')) {
    deadline.restart();
    upstream.body.on('data', () => deadline.restart());
  }
  res.writeHead(upstream.statusCode, responseHeaders(upstream.headers));
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

/** One call's time budget as an AbortSignal; restart() begins a new idle gap (SSE). */
class Deadline {
  readonly #controller = new AbortController();
  readonly #ms: number | undefined;
  readonly #target: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(ms: number | undefined, target: string) {
    this.#ms = ms;
    this.#target = target;
    this.restart();
  }

  get signal(): AbortSignal { return this.#controller.signal; }

  restart(): void {
    if (this.#ms === undefined || this.#controller.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#controller.abort(this.#error()), this.#ms);
    this.#timer.unref();
  }

  clear(): void { clearTimeout(this.#timer); }

  /** The timeout error when the deadline is what ended the call. */
  expired(): MeshError | undefined {
    return this.#controller.signal.aborted ? this.#error() : undefined;
  }

  #error(): MeshError {
    return new MeshError('UPSTREAM_TIMEOUT', `deadline of ${this.#ms} ms exceeded waiting for ${this.#target}`, { details: { timeoutMs: this.#ms } });
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
