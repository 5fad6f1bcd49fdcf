// OTLP/HTTP JSON for recorded spans (the encoding the OpenTelemetry collector and every OTLP backend
// accept at /v1/traces): each span written as UTF-8 straight into an export request's chunks
// (chunk-writer.ts), no string per span. Strings are escaped only when they need it; what follows from a
// call's caller, target, method and direction is built once, cached as bytes.
import { targetLabel } from '../metric-labels.ts';
import type { CallSpan } from './call-span.ts';
import { ChunkWriter } from './chunk-writer.ts';

/**
 * UTF-8 of a piece of JSON, in memory of its own (TextEncoder): a cached piece made with Buffer.from
 * would hold a whole 8 KB slab of Node's shared pool for as long as it is cached.
 */
const encoder = new TextEncoder();
const utf8 = (json: string): Uint8Array => encoder.encode(json);

/** Wall-clock time of performance.now() readings, as OTLP's decimal nanoseconds since the epoch. */
export class WallClock {
  /** The anchor (the epoch time of performance.now() 0): its whole seconds, and the milliseconds past them. */
  #originSeconds = 0;
  #originMs = 0;
  /** Seconds past the anchor's of the last reading written, and the epoch seconds as text. */
  #second = -1;
  #secondText: Uint8Array = new Uint8Array(0);

  constructor() {
    this.#anchor(performance.timeOrigin);
  }

  /** Follows a step of the system clock: re-anchors when Date.now() and the monotonic clock part by 2 ms or more. */
  check(): void {
    const origin = Date.now() - performance.now();
    if (Math.abs(origin - (this.#originSeconds * 1000 + this.#originMs)) >= 2) this.#anchor(origin);
  }

  /** Writes `at` (a performance.now() reading) as decimal nanoseconds since the epoch, without quotes. */
  write(out: ChunkWriter, at: number): void {
    // Counted from the anchor's whole second, every figure but the first stays a small integer (no heap
    // numbers, even before this is optimised) until the process has run for 12 days.
    const ms = this.#originMs + at;
    let whole = Math.floor(ms);
    let ns = Math.round((ms - whole) * 1e6);
    if (ns === 1e6) { whole++; ns = 0; }
    // Seconds (their text cached: it changes once a second) and the nanoseconds within the second,
    // 9 digits: a 19-digit number would not even be exact as a double.
    const second = Math.floor(whole / 1000);
    if (second !== this.#second) { this.#second = second; this.#secondText = utf8(String(this.#originSeconds + second)); }
    out.bytes(this.#secondText);
    out.digits((whole - second * 1000) * 1e6 + ns, 9);
  }

  #anchor(originMs: number): void {
    this.#originSeconds = Math.floor(originMs / 1000);
    this.#originMs = originMs - this.#originSeconds * 1000;
    this.#second = -1;
  }
}

/**
 * Text that is the same for many spans, built once: bounded maps that start over past `max` entries,
 * so a caller inventing names or methods cannot grow them.
 */
class Cache<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly max: number) {}
  get(key: K, make: (key: K) => V): V {
    let value = this.#map.get(key);
    if (value === undefined) {
      if (this.#map.size >= this.max) this.#map.clear();
      value = make(key);
      this.#map.set(key, value);
    }
    return value;
  }
}

const quoted = (value: string): Uint8Array => utf8(JSON.stringify(value));
const attribute = (key: string, value: string) => `{"key":"${key}","value":{"stringValue":${JSON.stringify(value)}}}`;

/**
 * The part of a span that follows from its caller, target, method and direction: name, kind and those
 * attributes, with rpc.system (which is mcp for an MCP target or an `MCP …` method); it ends with the
 * opening of the request id attribute, up to its value's opening quote (one copy fewer per span).
 */
function callBlock(caller: string | undefined, target: string | undefined, method: string, outbound: boolean): Uint8Array {
  const name = target === undefined ? method : `${method} ${target}`;
  const system = target?.startsWith('mcp/') === true || method.startsWith('MCP') ? 'mcp' : 'a2a';
  // OTLP span kinds: server 2, client 3.
  let json = `"name":${JSON.stringify(name)},"kind":${outbound ? 3 : 2},"attributes":[{"key":"rpc.system","value":{"stringValue":"${system}"}},${attribute('rpc.method', method)}`
    + `,{"key":"agentmesh.direction","value":{"stringValue":"${outbound ? 'outbound' : 'inbound'}"}}`;
  if (target !== undefined) json += `,${attribute('agentmesh.target', target)}`;
  if (caller !== undefined) json += `,${attribute('agentmesh.caller', caller)}`;
  return utf8(`${json},{"key":"agentmesh.request_id","value":{"stringValue":"`);
}

type Blocks = Cache<string, [Uint8Array | undefined, Uint8Array | undefined]>;
/** callBlock results by caller ('' for none), target ('' for none), method, then direction. */
const blocks = new Cache<string, Cache<string, Blocks>>(256);
const newPair = (): [Uint8Array | undefined, Uint8Array | undefined] => [undefined, undefined];
const newByTarget = (): Cache<string, Blocks> => new Cache(256);
const newByMethod = (): Blocks => new Cache(64);

function blockOf(span: CallSpan): Uint8Array {
  const target = span.target ? targetLabel(span.target) : undefined;
  const pair = blocks.get(span.caller ?? '', newByTarget).get(target ?? '', newByMethod).get(span.method, newPair);
  const outbound = span.direction === 'outbound';
  const at = outbound ? 0 : 1;
  return (pair[at] ??= callBlock(span.caller, target, span.method, outbound));
}

/** retries, hops and status code: mostly the same few triples (after the `"}}` that closes the request id attribute). */
const counts = new Cache<number, Uint8Array>(1024);
const countsOf = (retries: number, hops: number, status: number) =>
  utf8(`"}},{"key":"agentmesh.retries","value":{"intValue":${retries}}},{"key":"agentmesh.hops","value":{"intValue":${hops}}},{"key":"http.response.status_code","value":{"intValue":${status}}}`);

/** The cache key is status + 1000 × hops + 64 000 × retries (a function made once, not a closure per span). */
const countsOfKey = (key: number) => countsOf(Math.floor(key / 64_000), Math.floor(key / 1000) % 64, key % 1000);

/** JSON string literals of values with few spellings (tool, decision, error code), and `HTTP <status>` messages. */
const words = new Cache<string, Uint8Array>(256);
const httpStatuses = new Cache<number, Uint8Array>(256);
const httpStatus = (status: number) => quoted(`HTTP ${status}`);

/** The fixed stretches of a span, in the order they are written. */
const FIRST_SPAN = utf8('{"traceId":"');
const NEXT_SPAN = utf8(',{"traceId":"');
const SPAN_ID = utf8('","spanId":"');
const PARENT_SPAN_ID = utf8('","parentSpanId":"');
const START = utf8('","startTimeUnixNano":"');
const END = utf8('","endTimeUnixNano":"');
const TRACE_STATE = utf8('","traceState":');
const COMMA = utf8(',');
const TASK_ID = utf8(',{"key":"a2a.task_id","value":{"stringValue":');
const CONTEXT_ID = utf8(',{"key":"a2a.context_id","value":{"stringValue":');
const TOOL = utf8(',{"key":"mcp.tool.name","value":{"stringValue":');
const DECISION = utf8(',{"key":"agentmesh.policy.decision","value":{"stringValue":');
const ERROR_TYPE = utf8(',{"key":"error.type","value":{"stringValue":');
/** Status (OTLP: unset 0, error 2) and flags (W3C sampled 0x1, "whether the parent is remote is known" 0x100, "it is" 0x200). */
const OK_ROOT = utf8('],"status":{"code":0},"flags":257}');
const OK_CHILD = utf8('],"status":{"code":0},"flags":769}');
const ERROR_STATUS = utf8('],"status":{"code":2,"message":');
const ERROR_ROOT = utf8('},"flags":257}');
const ERROR_CHILD = utf8('},"flags":769}');
const CUT = quoted('cut');
const QUOTE = 0x22;
const COMMA_CHAR = 0x2c;
const BRACE = 0x7d;

/**
 * One export request being written: the head, spans separated by commas, then finish(). Spans go
 * straight into `out` as bytes (its chunks outlive the request: the next one goes on where it stopped);
 * only one request writes to it at a time.
 */
export class OtlpRequest {
  readonly #head: Buffer;
  readonly #clock: WallClock;
  readonly #out: ChunkWriter;
  spans = 0;

  constructor(head: Buffer, clock: WallClock, out: ChunkWriter = new ChunkWriter()) {
    this.#head = head;
    this.#clock = clock;
    this.#out = out;
  }

  add(span: CallSpan): void {
    const out = this.#out;
    out.bytes(this.spans++ > 0 ? NEXT_SPAN : FIRST_SPAN);
    out.ascii(span.traceId);
    out.bytes(SPAN_ID);
    out.ascii(span.spanId);
    if (span.parentSpanId !== undefined) {
      out.bytes(PARENT_SPAN_ID);
      out.ascii(span.parentSpanId);
    }
    out.bytes(START);
    this.#clock.write(out, span.startedAt);
    out.bytes(END);
    this.#clock.write(out, span.endedAt);
    if (span.traceState === undefined) {
      out.pair(QUOTE, COMMA_CHAR);
    } else {
      out.bytes(TRACE_STATE);
      out.string(span.traceState);
      out.bytes(COMMA);
    }
    // Name, kind and the first attributes, up to the request id's value. The request id needs no
    // escaping: RequestContext takes it only in REQUEST_ID's characters (sdk/mesh-headers.ts) or makes a UUID.
    out.bytes(blockOf(span));
    out.ascii(span.requestId);
    const retries = span.retries | 0;
    const hops = span.hops | 0;
    const status = span.status | 0;
    out.bytes(retries < 16 && hops < 64 && status >= 0 && status < 1000
      ? counts.get(status + 1000 * hops + 64_000 * retries, countsOfKey)
      : countsOf(retries, hops, status));
    if (span.taskId !== undefined) this.#attribute(TASK_ID, span.taskId);
    if (span.contextId !== undefined) this.#attribute(CONTEXT_ID, span.contextId);
    if (span.tool !== undefined) this.#word(TOOL, span.tool);
    if (span.decision !== undefined) this.#word(DECISION, span.decision);
    if (span.error !== undefined) this.#word(ERROR_TYPE, span.error);
    const root = span.parentSpanId === undefined;
    if (span.status === 0 || span.status >= 500 || span.error !== undefined) {
      out.bytes(ERROR_STATUS);
      out.bytes(span.error !== undefined ? words.get(span.error, quoted) : span.status === 0 ? CUT : httpStatuses.get(span.status, httpStatus));
      out.bytes(root ? ERROR_ROOT : ERROR_CHILD);
    } else {
      out.bytes(root ? OK_ROOT : OK_CHILD);
    }
  }

  /** A string attribute (`key` is its opening up to the value). */
  #attribute(key: Uint8Array, value: string): void {
    this.#out.bytes(key);
    this.#out.string(value);
    this.#out.pair(BRACE, BRACE);
  }

  /** A string attribute of a value with few spellings (tool, decision, error code), its JSON cached. */
  #word(key: Uint8Array, value: string): void {
    this.#out.bytes(key);
    this.#out.bytes(words.get(value, quoted));
    this.#out.pair(BRACE, BRACE);
  }

  /** The request's body, in parts to write one after the other. */
  finish(): { parts: Buffer[]; bytes: number } {
    const { parts, bytes } = this.#out.take();
    return { parts: [this.#head, ...parts, TAIL], bytes: this.#head.length + bytes + TAIL.length };
  }
}

/** An export request up to its first span: this sidecar's resource and the instrumentation scope. */
export function requestHead(resource: Readonly<Record<string, string>>, scope: string): Buffer {
  const attributes = Object.entries(resource).map(([key, value]) => `{"key":${JSON.stringify(key)},"value":{"stringValue":${JSON.stringify(value)}}}`).join(',');
  return Buffer.from(`{"resourceSpans":[{"resource":{"attributes":[${attributes}]},"scopeSpans":[{"scope":{"name":${JSON.stringify(scope)}},"spans":[`);
}
const TAIL = Buffer.from(']}]}]}');
