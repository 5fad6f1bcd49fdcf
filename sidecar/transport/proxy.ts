// Streaming forwarder: sends one request through an undici dispatcher with a raw dispatch handler and
// writes the answer into the caller's response as it arrives (SSE included). Never buffers a whole
// response; maps transport failures to catalog errors. Decides nothing about routing or retries.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { MeshError } from '../../sdk/errors.ts';
import { ERROR_HEADER, STATUS_HEADER } from '../../sdk/mesh-headers.ts';
import { CallScope } from './call-scope.ts';
import { responseHeaders } from '../http/http-util.ts';
import { sseErrorEvent, type ErrorContext } from '../http/respond.ts';
import { DEFAULT_MAX_SSE_EVENT, SseGuard } from './sse-guard.ts';

export interface ForwardRequest {
  dispatcher: Dispatcher;
  /** Origin of the next hop, e.g. https://127.0.0.1:15443 (for error messages). */
  origin: string;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer | IncomingMessage | undefined;
  /** Who the next hop is, for error messages ("agent 'x' at …"). */
  target: string;
  /**
   * The time budget: for the whole exchange of a plain response, and for the first event and each gap
   * between events of an SSE stream (a long stream that keeps producing events is never cut).
   */
  timeoutMs?: number;
  /** SSE answers: the largest line or event passed on (limits.maxSseEvent; default 1 MiB). */
  maxSseEvent?: number | undefined;
  /** How an error event that ends a stream the sidecar cut is written (the request's error style). */
  errorContext?: ErrorContext | undefined;
  /** Sees the status and headers before they are passed on (e.g. to learn a session id). */
  onResponse?: (status: number, headers: ResponseHeaders) => void;
  /** Sees every body chunk as it passes, and whether the body ended completely. */
  observe?: { chunk(c: Buffer): void; end(complete: boolean): void };
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** How an answer is written back: extra headers, and a look at its first chunk (e.g. for a task id). */
export interface RelayOptions {
  extraHeaders?: Record<string, string>;
  /**
   * The agent-facing A2A JSON-RPC route: an error another sidecar answered itself (it carries
   * x-agentmesh-error) goes to the agent with HTTP 200, its status kept in x-agentmesh-status.
   */
  meshErrorsAsOk?: boolean;
  tap?: (firstChunk: Buffer) => void;
  observe?: ForwardRequest['observe'];
}

/** An upstream answer whose head has arrived; its body waits until it is relayed or discarded. */
export interface Upstream {
  readonly statusCode: number;
  readonly headers: ResponseHeaders;
  /** Streams the body into `res`; resolves when `res` is finished or destroyed, never rejects. */
  relay(res: ServerResponse, options?: RelayOptions): Promise<void>;
  /** Reads and drops the body (before a retry), keeping the connection reusable. */
  discard(): Promise<void>;
}

/**
 * Forwards and streams the answer into `res`. Resolves when the response has been written; rejects
 * with a MeshError before any byte was written, or destroys `res` if the stream breaks later.
 */
export async function forward(request: ForwardRequest, res: ServerResponse): Promise<void> {
  const scope = new CallScope(res, request.timeoutMs, request.target);
  let upstream: Upstream;
  try {
    upstream = await send(request, scope);
  } catch (err) {
    scope.finish();
    request.observe?.end(false);
    throw err;
  }
  request.onResponse?.(upstream.statusCode, upstream.headers);
  await upstream.relay(res, request.observe ? { observe: request.observe } : {});
}

/** Sends the request and waits for the response head; failures come back as catalog errors. */
export function send(request: Omit<ForwardRequest, 'timeoutMs' | 'onResponse' | 'observe'>, scope: CallScope): Promise<Upstream> {
  const exchange = new Exchange(request, scope);
  request.dispatcher.dispatch({
    origin: request.origin,
    method: request.method as Dispatcher.HttpMethod,
    path: request.path,
    headers: request.headers,
    body: request.body ?? null,
    bodyTimeout: 0,
  }, exchange);
  return exchange.head;
}

/** Chunks held while nobody consumes the body yet; beyond this the connection is paused. */
const HOLD_LIMIT = 64 * 1024;

type Sink = { res: ServerResponse; options: RelayOptions; done: () => void } | { discard: true; done: () => void };

/**
 * undici's dispatch handler (the controller API of undici 7) for one exchange: no body Readable, no
 * stream.pipeline, no AbortSignal. Chunks that arrive before a sink is attached are held (a small JSON
 * answer usually arrives whole, with its head); the sink then writes them out and, with back-pressure,
 * pauses the connection.
 */
class Exchange implements Dispatcher.DispatchHandler, Upstream {
  readonly head: Promise<Upstream>;
  statusCode = 0;
  headers: ResponseHeaders = {};
  readonly #request: Omit<ForwardRequest, 'timeoutMs' | 'onResponse' | 'observe'>;
  readonly #scope: CallScope;
  // Set by the promise executor in the constructor (no placeholder closures per exchange).
  #resolveHead!: (u: Upstream) => void;
  #rejectHead!: (err: MeshError) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #sink: Sink | undefined;
  #sse = false;
  /** SSE only: event boundaries (the idle timer restarts on each) and the size cap. */
  #guard: SseGuard | undefined;
  #started = false;
  #tapped = false;
  #wroteBody = false;
  #settled = false;
  /** The body ended: true when complete, an Error when it broke. */
  #end: true | Error | undefined;

  constructor(request: Omit<ForwardRequest, 'timeoutMs' | 'onResponse' | 'observe'>, scope: CallScope) {
    this.#request = request;
    this.#scope = scope;
    this.head = new Promise<Upstream>((resolve, reject) => {
      this.#resolveHead = resolve;
      this.#rejectHead = reject;
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#scope.attach((reason) => controller.abort(reason));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (statusCode < 200) return;
    this.statusCode = statusCode;
    this.headers = headers;
    this.#started = true;
    this.#sse = String(headers['content-type'] ?? '').startsWith('text/event-stream');
    if (this.#sse) {
      this.#scope.restart();
      this.#guard = new SseGuard(this.#request.maxSseEvent ?? DEFAULT_MAX_SSE_EVENT);
      this.#passFn = (chunk) => this.#pass(chunk);
      this.#onEvent = () => { this.#scope.restart(); };
    }
    this.#resolveHead(this);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const guard = this.#guard;
    const more = guard === undefined ? this.#pass(chunk) : guard.feed(chunk, this.#passFn as (c: Buffer) => boolean, this.#onEvent as () => void);
    if (guard?.exceeded) controller.abort(new MeshError('STREAM_LIMIT_EXCEEDED', `${this.#request.target}: ${guard.describe()}`));
    else if (!more) controller.pause();
  }

  /** SSE only: the guard's callbacks (made when the stream starts, not for every exchange). */
  #passFn: ((chunk: Buffer) => boolean) | undefined;
  #onEvent: (() => void) | undefined;

  /** Holds or writes one piece of the body; false asks for back-pressure. */
  #pass(chunk: Buffer): boolean {
    const sink = this.#sink;
    if (sink === undefined) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      return this.#heldBytes < HOLD_LIMIT;
    }
    return 'res' in sink ? this.#write(sink.res, sink.options, chunk) : true;
  }

  onResponseEnd(): void {
    if (this.#guard && this.#passFn) this.#guard.flush(this.#passFn);
    this.#end = true;
    this.#settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.#started) {
      this.#rejectHead(this.#scope.ended ?? upstreamError(err, this.#request));
      return;
    }
    this.#end = err;
    this.#settle();
  }

  relay(res: ServerResponse, options: RelayOptions = {}): Promise<void> {
    return new Promise<void>((done) => {
      this.#sink = { res, options, done };
      const headers = responseHeaders(this.headers);
      let status = this.statusCode;
      if (options.meshErrorsAsOk && this.headers[ERROR_HEADER] !== undefined) {
        delete headers[STATUS_HEADER];
        res.setHeader(STATUS_HEADER, String(status)); // set, so metrics read the status it maps to
        status = 200;
      }
      res.writeHead(status, options.extraHeaders ? Object.assign(headers, options.extraHeaders) : headers);
      // A stream (no content-length: SSE, chunked) gets its head at once; a sized answer goes out with its body.
      if (this.headers['content-length'] === undefined) res.flushHeaders();
      const onDrain = (this.#onDrain = () => { this.#controller?.resume(); });
      res.on('drain', onDrain);
      const held = this.#held;
      this.#held = [];
      // Head and body in one write (and one TLS record) where they are already here.
      res.cork();
      for (const chunk of held) this.#write(res, options, chunk);
      this.#settle();
      res.uncork();
      if (this.#heldBytes >= HOLD_LIMIT && this.#end === undefined && !res.writableNeedDrain) this.#controller?.resume();
    });
  }

  discard(): Promise<void> {
    return new Promise<void>((done) => {
      this.#sink = { discard: true, done };
      this.#held = [];
      this.#controller?.resume();
      this.#settle();
    });
  }

  #write(res: ServerResponse, options: RelayOptions, chunk: Buffer): boolean {
    if (!this.#tapped) {
      this.#tapped = true;
      options.tap?.(chunk);
    }
    options.observe?.chunk(chunk);
    if (res.destroyed) return true;
    if (this.#wroteBody) return res.write(chunk);
    // The first chunk carries a head that was not flushed: corked, both leave in one write.
    this.#wroteBody = true;
    res.cork();
    const more = res.write(chunk);
    res.uncork();
    return more;
  }

  /** Resumes the connection when `res` drains; made when a sink is attached. */
  #onDrain: (() => void) | undefined;

  /** Finishes the sink once the body has ended and a sink is attached. */
  #settle(): void {
    const sink = this.#sink;
    const end = this.#end;
    if (!sink || end === undefined || this.#settled) return;
    this.#settled = true;
    if ('res' in sink) {
      this.#scope.finish();
      if (this.#onDrain) sink.res.off('drain', this.#onDrain);
      sink.options.observe?.end(end === true && !sink.res.destroyed);
      if (end === true) sink.res.end();
      // A stream the sidecar cut (cap, idle timeout) ends with an error event the caller can read.
      else if (this.#guard && end instanceof MeshError && !sink.res.destroyed) sink.res.end(sseErrorEvent(end, this.#request.errorContext ?? { style: 'jsonrpc' }));
      else if (!sink.res.destroyed) sink.res.destroy(end);
    }
    sink.done();
  }
}

/** Maps an undici / TLS failure to the catalog, naming the hop. */
export function upstreamError(err: unknown, request: Pick<ForwardRequest, 'origin' | 'target'>): MeshError {
  if (err instanceof MeshError) return err;
  const code = errorCode(err);
  if (code === 'PEER_IDENTITY_MISMATCH') {
    return new MeshError('PEER_IDENTITY_MISMATCH', `${request.target} at ${request.origin}: ${messageOf(err)}`, { cause: err });
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
