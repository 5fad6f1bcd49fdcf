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
  /** Sees the status and headers (as onResponse), every body chunk as it passes, and whether the body ended completely. */
  observe?: { head?(status: number, headers: ResponseHeaders): void; chunk(c: Buffer): void; end(complete: boolean): void };
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
export function forward(request: ForwardRequest, res: ServerResponse): Promise<void> {
  const scope = new CallScope(res, request.timeoutMs, request.target);
  // Relayed from the head's own callback: no promise for the head and no await between head and body
  // (per call an async frame, two awaits and two promises less than send() then relay()).
  const exchange = new Exchange(request, scope, res);
  try {
    dispatch(request, exchange);
  } catch (err) {
    exchange.failBeforeHead(err);
  }
  return exchange.done as Promise<unknown> as Promise<void>;
}

/** Sends the request and waits for the response head; failures come back as catalog errors. */
export function send(request: Outgoing, scope: CallScope): Promise<Upstream> {
  const exchange = new Exchange(request, scope, undefined);
  dispatch(request, exchange);
  return exchange.done as Promise<Upstream>;
}

function dispatch(request: Outgoing, exchange: Exchange): void {
  request.dispatcher.dispatch({
    origin: request.origin,
    method: request.method as Dispatcher.HttpMethod,
    path: request.path,
    headers: request.headers,
    body: request.body ?? null,
    bodyTimeout: 0,
  }, exchange);
}

/** Chunks held while nobody consumes the body yet; beyond this the connection is paused. */
const HOLD_LIMIT = 64 * 1024;

type Outgoing = Omit<ForwardRequest, 'timeoutMs' | 'onResponse' | 'observe'>;
/** The headers of an answer whose head has not arrived (nobody reads them before that). */
const NO_HEADERS: ResponseHeaders = Object.freeze({});
const NO_OPTIONS: RelayOptions = Object.freeze({});

/**
 * undici's dispatch handler (the controller API of undici 7) for one exchange: no body Readable, no
 * stream.pipeline, no AbortSignal. With send(), chunks that arrive before a sink is attached are held (a
 * small JSON answer usually arrives whole, with its head); relay() then writes them out and, with
 * back-pressure, pauses the connection. With forward(), the head's callback attaches the caller's response.
 */
class Exchange implements Dispatcher.DispatchHandler, Upstream {
  /** send(): this exchange once its head has arrived. forward(): settles when the answer has been written. */
  readonly done: Promise<Upstream | undefined>;
  statusCode = 0;
  headers: ResponseHeaders = NO_HEADERS;
  readonly #request: Outgoing;
  readonly #scope: CallScope;
  /** forward() only: where the answer goes as soon as its head arrives. */
  readonly #relayTo: ServerResponse | undefined;
  // Set by the promise executor in the constructor (no placeholder closures per exchange).
  #resolve!: (value: Upstream | undefined) => void;
  #reject!: (err: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  /** The sink, once attached: the response relayed into (undefined when the body is discarded), its options, and what to call when done. */
  #res: ServerResponse | undefined;
  #options: RelayOptions = NO_OPTIONS;
  #observe: ForwardRequest['observe'];
  #onDone: ((value: undefined) => void) | undefined;
  #sse = false;
  /** SSE only: event boundaries (the idle timer restarts on each) and the size cap. */
  #guard: SseGuard | undefined;
  #started = false;
  #tapped = false;
  #wroteBody = false;
  #settled = false;
  /** The body ended: true when complete, an Error when it broke. */
  #end: true | Error | undefined;

  constructor(request: Outgoing, scope: CallScope, relayTo: ServerResponse | undefined) {
    this.#request = request;
    this.#scope = scope;
    this.#relayTo = relayTo;
    this.done = new Promise<Upstream | undefined>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#scope.attach(controller);
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
    const res = this.#relayTo;
    if (res === undefined) return this.#resolve(this);
    const request = this.#request as ForwardRequest;
    try {
      request.onResponse?.(statusCode, headers);
      const observe = this.#observe = request.observe;
      observe?.head?.(statusCode, headers);
      this.#attach(res, NO_OPTIONS, this.#resolve);
    } catch (err) {
      // As a relay that failed to start: the call fails with what was thrown.
      this.#reject(err);
    }
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
    if (this.#onDone === undefined) {
      (this.#held ??= []).push(chunk);
      this.#heldBytes += chunk.length;
      return this.#heldBytes < HOLD_LIMIT;
    }
    const res = this.#res;
    return res === undefined ? true : this.#write(res, chunk);
  }

  onResponseEnd(): void {
    if (this.#guard && this.#passFn) this.#guard.flush(this.#passFn);
    this.#end = true;
    this.#settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (!this.#started) {
      const error = this.#scope.ended ?? upstreamError(err, this.#request);
      if (this.#relayTo === undefined) this.#reject(error);
      else this.failBeforeHead(error);
      return;
    }
    this.#end = err;
    this.#settle();
  }

  /** forward(): the call failed before an answer started; the caller's response is left to the caller. */
  failBeforeHead(err: unknown): void {
    this.#scope.finish();
    (this.#request as ForwardRequest).observe?.end(false);
    this.#reject(err);
  }

  relay(res: ServerResponse, options: RelayOptions = {}): Promise<void> {
    return new Promise<void>((done) => {
      this.#observe = options.observe;
      this.#attach(res, options, done);
    });
  }

  /** Writes the head and whatever body is held into `res`; the rest follows as it arrives. */
  #attach(res: ServerResponse, options: RelayOptions, done: (value: undefined) => void): void {
    this.#res = res;
    this.#options = options;
    this.#onDone = done;
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
    this.#held = undefined;
    // Head and body in one write (and one TLS record) where they are already here.
    res.cork();
    if (held !== undefined) for (const chunk of held) this.#write(res, chunk);
    this.#settle();
    res.uncork();
    if (this.#heldBytes >= HOLD_LIMIT && this.#end === undefined && !res.writableNeedDrain) this.#controller?.resume();
  }

  discard(): Promise<void> {
    return new Promise<void>((done) => {
      this.#onDone = done;
      this.#held = undefined;
      this.#controller?.resume();
      this.#settle();
    });
  }

  #write(res: ServerResponse, chunk: Buffer): boolean {
    if (!this.#tapped) {
      this.#tapped = true;
      this.#options.tap?.(chunk);
    }
    this.#observe?.chunk(chunk);
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
    const done = this.#onDone;
    const end = this.#end;
    if (done === undefined || end === undefined || this.#settled) return;
    this.#settled = true;
    const res = this.#res;
    if (res !== undefined) {
      this.#scope.finish();
      if (this.#onDrain) res.off('drain', this.#onDrain);
      this.#observe?.end(end === true && !res.destroyed);
      if (end === true) res.end();
      // A stream the sidecar cut (cap, idle timeout) ends with an error event the caller can read.
      else if (this.#guard && end instanceof MeshError && !res.destroyed) res.end(sseErrorEvent(end, this.#request.errorContext ?? { style: 'jsonrpc' }));
      else if (!res.destroyed) res.destroy(end);
    }
    done(undefined);
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
