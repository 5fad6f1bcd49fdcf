// Ships recorded spans to an OTLP/HTTP endpoint, off the request path: spans are written into the
// export request (as bytes) 64 at a time in the setImmediate turn after they were recorded (so they die young),
// requests of up to 512 spans are posted at least once a second, one at a time, and retried with
// backoff when the collector is busy or unreachable. The queue is bounded: past it spans are dropped
// and counted, never blocking a call.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.ts';
import { FailureLog } from '../log-once.ts';
import type { CallSpan } from './call-span.ts';
import type { TracerStats } from './call-trace.ts';
import { ChunkWriter } from './chunk-writer.ts';
import { OtlpRequest, WallClock } from './otlp-json.ts';

export interface SpanExporterOptions {
  /** The OTLP/HTTP traces URL. */
  endpoint: string;
  /** The export request up to its first span (otlp-json.ts requestHead). */
  head: Buffer;
  log: Logger;
  /** Spans waiting (recorded, not yet sent) at most; more are dropped. Default 2048. */
  maxQueue?: number;
  /** Spans per export request at most. Default 512. */
  batchSize?: number;
  /** A span waits this long at most before its batch is sent. Default 1000 ms. */
  delayMs?: number;
  /** Spans encoded per turn of the event loop. Default 64. */
  sliceSize?: number;
  /** One export request's time limit, from its start to the end of the answer. Default 10 s. */
  timeoutMs?: number;
  /** Headers sent with every export (a collector's API key), e.g. from OTEL_EXPORTER_OTLP_HEADERS. */
  headers?: Readonly<Record<string, string>>;
  /** Tries per batch when the collector answers 429/502/503/504 or cannot be reached. Default 5. */
  maxAttempts?: number;
  /** close() gives up on what is still unsent after this long. Default 5 s. */
  closeTimeoutMs?: number;
}

/** A batch that failed for good (after its retries). */
class ExportError extends Error {
  constructor(message: string, readonly retryable: boolean, readonly retryAfterMs?: number) { super(message); }
}

export class SpanExporter {
  readonly #url: URL;
  readonly #head: Buffer;
  readonly #agent: HttpAgent;
  readonly #failures: FailureLog;
  readonly #clock = new WallClock();
  /** Where spans are encoded: one request after another, each taking its bytes out at finish. */
  readonly #out = new ChunkWriter();
  readonly #maxQueue: number;
  readonly #batchSize: number;
  readonly #delayMs: number;
  readonly #sliceSize: number;
  readonly #timeoutMs: number;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #maxAttempts: number;
  readonly #closeTimeoutMs: number;
  /** Spans recorded since the last slice was encoded. */
  readonly #pending: CallSpan[] = [];
  /** The export request being written, and those written in full, waiting to be sent. */
  #open: OtlpRequest | undefined;
  readonly #ready: { parts: Buffer[]; bytes: number; spans: number }[] = [];
  /** Spans in #open and #ready. */
  #encoded = 0;
  #encodeQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Aborted when close() starts: ends a retry's wait. */
  readonly #closingNow = new AbortController();
  /** Aborted at the close deadline: ends what is still in flight. */
  readonly #stop = new AbortController();
  #exported = 0;
  #dropped = 0;
  #failedExports = 0;

  constructor(options: SpanExporterOptions) {
    this.#url = new URL(options.endpoint);
    this.#head = options.head;
    this.#agent = this.#url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
    this.#failures = new FailureLog(options.log, { what: 'span export' });
    this.#maxQueue = options.maxQueue ?? 2048;
    this.#batchSize = options.batchSize ?? 512;
    this.#delayMs = options.delayMs ?? 1000;
    this.#sliceSize = options.sliceSize ?? 64;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#headers = options.headers ?? {};
    this.#maxAttempts = options.maxAttempts ?? 5;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  }

  /** Queues a finished span, or drops it (counted) when the queue is full or the exporter closed. */
  add(span: CallSpan): void {
    if (this.#closed || this.#pending.length + this.#encoded >= this.#maxQueue) {
      this.#dropped++;
      return;
    }
    this.#pending.push(span);
    if (this.#pending.length >= this.#sliceSize && !this.#encodeQueued) {
      this.#encodeQueued = true;
      setImmediate(this.#encodeSlices);
    }
    this.#timer ??= setTimeout(this.#due, this.#delayMs).unref();
  }

  stats(): TracerStats {
    return { queued: this.#pending.length + this.#encoded, exported: this.#exported, dropped: this.#dropped, failedExports: this.#failedExports };
  }

  /** Sends what is queued (for up to closeTimeoutMs), then stops. Idempotent; never rejects. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#closingNow.abort();
      clearTimeout(this.#timer);
      this.#timer = undefined;
      const deadline = setTimeout(() => this.#stop.abort(), this.#closeTimeoutMs).unref();
      try {
        this.#encode(this.#pending.length);
        this.#finishOpen();
        this.#send();
        while (this.#sending) await this.#sending;
      } finally {
        clearTimeout(deadline);
        this.#stop.abort();
        this.#agent.destroy();
      }
    })();
    return this.#closing;
  }

  /** The full slices recorded since the last turn, encoded (a setImmediate turn: after the I/O that recorded them). */
  readonly #encodeSlices = (): void => {
    this.#encodeQueued = false;
    if (this.#closed) return;
    this.#encode(this.#pending.length - (this.#pending.length % this.#sliceSize));
    this.#send();
  };

  /** The delay ran out: everything recorded goes out now. */
  readonly #due = (): void => {
    this.#timer = undefined;
    this.#encode(this.#pending.length);
    this.#finishOpen();
    this.#send();
  };

  /** Writes the oldest `n` recorded spans into export requests of up to batchSize spans. */
  #encode(n: number): void {
    if (n <= 0) return;
    const spans = this.#pending;
    for (let i = 0; i < n; i++) {
      if (this.#open === undefined) {
        this.#clock.check();
        this.#open = new OtlpRequest(this.#head, this.#clock, this.#out);
      }
      this.#open.add(spans[i] as CallSpan);
      this.#encoded++;
      if (this.#open.spans >= this.#batchSize) this.#finishOpen();
    }
    // The spans not encoded move to the front of the same array (no new array per turn; none kept past its length).
    if (n < spans.length) spans.copyWithin(0, n);
    spans.length -= n;
  }

  #finishOpen(): void {
    if (this.#open === undefined) return;
    this.#ready.push({ ...this.#open.finish(), spans: this.#open.spans });
    this.#open = undefined;
  }

  /** Starts sending the oldest finished request, unless a send is under way (it looks again when done). */
  #send(): void {
    if (this.#sending) return;
    const next = this.#ready.shift();
    if (next === undefined) return;
    this.#encoded -= next.spans;
    if (this.#encoded === 0 && this.#pending.length === 0) { clearTimeout(this.#timer); this.#timer = undefined; }
    this.#sending = this.#deliver(next, next.spans).finally(() => {
      this.#sending = undefined;
      this.#send();
      if (!this.#sending && !this.#closed && this.#encoded + this.#pending.length > 0) this.#timer ??= setTimeout(this.#due, this.#delayMs).unref();
    });
  }

  /** Posts one batch, retrying what a retry may fix; counts it exported or dropped. Never rejects. */
  async #deliver(body: { parts: Buffer[]; bytes: number }, spans: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await this.#post(body);
        this.#exported += spans;
        this.#failures.success();
        // Every byte left (the request finished writing): the chunks can be written again. A request
        // still writing (a collector that answered early) leaves them to the GC.
        this.#out.release(body.parts, written);
        return;
      } catch (err) {
        const retryable = !(err instanceof ExportError) || err.retryable;
        if (!retryable || attempt >= this.#maxAttempts || this.#stop.signal.aborted) {
          this.#dropped += spans;
          this.#failedExports++;
          // Possibly still being written by a socket being closed: never written into again.
          this.#out.release(body.parts, false);
          this.#failures.failure(err);
          return;
        }
        const backoff = Math.min(5000, 500 * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
        const wait = err instanceof ExportError && err.retryAfterMs !== undefined ? Math.min(err.retryAfterMs, 30_000) : backoff;
        // Once closing, no waiting: the next try goes now (until the close deadline aborts it).
        await sleep(wait, undefined, { signal: this.#closingNow.signal, ref: false }).catch(() => undefined);
      }
    }
  }

  /**
   * One POST, its body written part by part (no copy into one buffer). The time limit covers the whole
   * exchange: a collector that trickles its answer does not hold the export queue.
   */
  #post(body: { parts: Buffer[]; bytes: number }): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const send = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(this.#url, {
        method: 'POST', agent: this.#agent, signal: this.#stop.signal,
        headers: { ...this.#headers, 'content-type': 'application/json', 'content-length': body.bytes },
      }, (res: IncomingMessage) => {
        res.resume();
        res.once('error', reject);
        res.once('end', () => {
          const status = res.statusCode ?? 0;
          // Resolves with whether the whole request had been written out (nothing still reads its body).
          if (status >= 200 && status < 300) return resolve(req.writableFinished);
          reject(new ExportError(`the collector answered HTTP ${status}`, status === 429 || status === 502 || status === 503 || status === 504, retryAfterMs(res.headers['retry-after'])));
        });
      });
      const deadline = setTimeout(() => req.destroy(new Error(`no complete answer from the collector within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      deadline.unref();
      req.once('close', () => clearTimeout(deadline));
      req.once('error', reject);
      // Written before the agent hands out a socket, so the parts leave together (one writev).
      for (const part of body.parts) req.write(part);
      req.end();
    });
  }
}

/**
 * Export headers as OpenTelemetry's exporters read them: `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else
 * `OTEL_EXPORTER_OTLP_HEADERS`, each `key=value` pairs separated by commas, values URL-encoded. A pair
 * without `=` or with an empty key is skipped.
 */
export function otlpHeadersFromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const raw = env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS ?? '';
  const headers: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const key = pair.slice(0, at).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key) || key === 'content-length' || key === 'content-type' || key === 'host') continue;
    let value = pair.slice(at + 1).trim();
    try { value = decodeURIComponent(value); } catch { /* kept as written */ }
    if (!/[\r\n\0]/.test(value)) headers[key] = value;
  }
  return headers;
}

/** A Retry-After header in seconds (the only form collectors send), as ms. */
function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d+$/.test(header)) return undefined;
  return Number(header) * 1000;
}
