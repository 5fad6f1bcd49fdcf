// OTLP/HTTP JSON for recorded spans (the encoding the OpenTelemetry collector and every OTLP backend
// accept at /v1/traces): one export request written a slice of spans at a time, each slice turned into
// bytes once (as latin1 when it is all ASCII, which skips a UTF-8 pass). Strings are escaped only when
// they need it; what follows from a call's caller, target, method and direction is built once, cached.
import { targetLabel } from '../metric-labels.ts';
import type { CallSpan } from './call-span.ts';

/** Wall-clock time of performance.now() readings, as OTLP's decimal nanoseconds since the epoch. */
export class WallClock {
  #wholeMs = 0;
  #fractionMs = 0;
  #second = -1;
  #secondText = '';

  constructor() {
    this.#anchor(performance.timeOrigin);
  }

  /** Follows a step of the system clock: re-anchors when Date.now() and the monotonic clock part by 2 ms or more. */
  check(): void {
    const origin = Date.now() - performance.now();
    if (Math.abs(origin - (this.#wholeMs + this.#fractionMs)) >= 2) this.#anchor(origin);
  }

  nanos(at: number): string {
    const ms = this.#fractionMs + at;
    let whole = Math.floor(ms);
    let ns = Math.round((ms - whole) * 1e6);
    if (ns === 1e6) { whole++; ns = 0; }
    whole += this.#wholeMs;
    // Seconds (cached: they change once a second) and the nanoseconds within the second, 9 digits:
    // small integers print fast, and a 19-digit number would not even be exact.
    const seconds = Math.floor(whole / 1000);
    if (seconds !== this.#second) { this.#second = seconds; this.#secondText = String(seconds); }
    const within = (whole - seconds * 1000) * 1e6 + ns;
    return this.#secondText + (within >= 1e8 ? String(within) : String(within).padStart(9, '0'));
  }

  #anchor(originMs: number): void {
    this.#wholeMs = Math.floor(originMs);
    this.#fractionMs = originMs - this.#wholeMs;
  }
}

/** Printable ASCII other than `"` and `\`: such a string is its own JSON string body, byte for byte. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const ASCII = /^[\x00-\x7f]*$/;

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

/** A stretch of JSON, and whether it is all ASCII (then the request's bytes are its characters: latin1, no UTF-8 pass). */
interface Text { json: string; ascii: boolean }

const quoted = (value: string): Text => {
  const json = JSON.stringify(value);
  return { json, ascii: ASCII.test(json) };
};
const attribute = (key: string, value: string) => `{"key":"${key}","value":{"stringValue":${JSON.stringify(value)}}}`;

/**
 * The part of a span that follows from its caller, target, method and direction: name, kind and those
 * attributes, with rpc.system (which is mcp for an MCP target or an `MCP …` method).
 */
function callBlock(caller: string | undefined, target: string | undefined, method: string, outbound: boolean): Text {
  const name = target === undefined ? method : `${method} ${target}`;
  const system = target?.startsWith('mcp/') === true || method.startsWith('MCP') ? 'mcp' : 'a2a';
  // OTLP span kinds: server 2, client 3.
  let json = `"name":${JSON.stringify(name)},"kind":${outbound ? 3 : 2},"attributes":[{"key":"rpc.system","value":{"stringValue":"${system}"}},${attribute('rpc.method', method)}`
    + `,{"key":"agentmesh.direction","value":{"stringValue":"${outbound ? 'outbound' : 'inbound'}"}}`;
  if (target !== undefined) json += `,${attribute('agentmesh.target', target)}`;
  if (caller !== undefined) json += `,${attribute('agentmesh.caller', caller)}`;
  return { json, ascii: ASCII.test(json) };
}

type Blocks = Cache<string, [Text | undefined, Text | undefined]>;
/** callBlock results by caller ('' for none), target ('' for none), method, then direction. */
const blocks = new Cache<string, Cache<string, Blocks>>(256);

function blockOf(span: CallSpan): Text {
  const target = span.target ? targetLabel(span.target) : undefined;
  const byMethod = blocks.get(span.caller ?? '', () => new Cache(256)).get(target ?? '', () => new Cache(64));
  const pair = byMethod.get(span.method, () => [undefined, undefined]);
  const outbound = span.direction === 'outbound';
  const at = outbound ? 0 : 1;
  return (pair[at] ??= callBlock(span.caller, target, span.method, outbound));
}

/** retries, hops and status code: mostly the same few triples. */
const counts = new Cache<number, string>(1024);
const countsOf = (retries: number, hops: number, status: number) =>
  `,{"key":"agentmesh.retries","value":{"intValue":${retries}}},{"key":"agentmesh.hops","value":{"intValue":${hops}}},{"key":"http.response.status_code","value":{"intValue":${status}}}`;

/** Status (OTLP: unset 0, error 2) and flags (W3C sampled 0x1, "whether the parent is remote is known" 0x100, "it is" 0x200). */
const words = new Cache<string, Text>(256);
const OK_ROOT = '],"status":{"code":0},"flags":257}';
const OK_CHILD = '],"status":{"code":0},"flags":769}';

/** One export request being written: the head, spans separated by commas, then finish(). */
export class OtlpRequest {
  readonly #clock: WallClock;
  readonly #parts: Buffer[];
  #text = '';
  #ascii = true;
  #bytes: number;
  spans = 0;

  constructor(head: Buffer, clock: WallClock) {
    this.#parts = [head];
    this.#bytes = head.length;
    this.#clock = clock;
  }

  add(span: CallSpan): void {
    let out = `${this.spans++ > 0 ? ',' : ''}{"traceId":"${span.traceId}","spanId":"${span.spanId}`;
    if (span.parentSpanId !== undefined) out += `","parentSpanId":"${span.parentSpanId}`;
    out += `","startTimeUnixNano":"${this.#clock.nanos(span.startedAt)}","endTimeUnixNano":"${this.#clock.nanos(span.endedAt)}",`;
    if (span.traceState !== undefined) out += `"traceState":${this.#string(span.traceState)},`;
    const block = blockOf(span);
    if (!block.ascii) this.#ascii = false;
    // The request id needs no escaping: RequestContext takes it only in REQUEST_ID's characters (sdk/mesh-headers.ts) or makes a UUID.
    out += `${block.json},{"key":"agentmesh.request_id","value":{"stringValue":"${span.requestId}"}}`;
    const retries = span.retries | 0;
    const hops = span.hops | 0;
    const status = span.status | 0;
    out += retries < 16 && hops < 64 && status >= 0 && status < 1000
      ? counts.get(status + 1000 * hops + 64_000 * retries, () => countsOf(retries, hops, status))
      : countsOf(retries, hops, status);
    if (span.taskId !== undefined) out += `,{"key":"a2a.task_id","value":{"stringValue":${this.#string(span.taskId)}}}`;
    if (span.contextId !== undefined) out += `,{"key":"a2a.context_id","value":{"stringValue":${this.#string(span.contextId)}}}`;
    if (span.tool !== undefined) out += `,{"key":"mcp.tool.name","value":{"stringValue":${this.#word(span.tool)}}}`;
    if (span.decision !== undefined) out += `,{"key":"agentmesh.policy.decision","value":{"stringValue":${this.#word(span.decision)}}}`;
    if (span.error !== undefined) out += `,{"key":"error.type","value":{"stringValue":${this.#word(span.error)}}}`;
    const root = span.parentSpanId === undefined;
    if (span.status === 0 || span.status >= 500 || span.error !== undefined) {
      const message = this.#word(span.error ?? (span.status === 0 ? 'cut' : `HTTP ${span.status}`));
      out += `],"status":{"code":2,"message":${message}},"flags":${root ? 257 : 769}}`;
    } else {
      out += root ? OK_ROOT : OK_CHILD;
    }
    this.#text += out;
  }

  /** A JSON string literal; JSON.stringify only when the string needs escaping or is not ASCII. */
  #string(value: string): string {
    if (PLAIN.test(value)) return `"${value}"`;
    const text = quoted(value);
    if (!text.ascii) this.#ascii = false;
    return text.json;
  }

  /** A JSON string literal of a value with few spellings (tool, decision, error code), cached. */
  #word(value: string): string {
    const text = words.get(value, quoted);
    if (!text.ascii) this.#ascii = false;
    return text.json;
  }

  /** The spans added since the last seal, as bytes (the text is dropped). */
  seal(): void {
    if (this.#text === '') return;
    const part = Buffer.from(this.#text, this.#ascii ? 'latin1' : 'utf8');
    this.#parts.push(part);
    this.#bytes += part.length;
    this.#text = '';
    this.#ascii = true;
  }

  /** The request's body, in parts to write one after the other. */
  finish(): { parts: Buffer[]; bytes: number } {
    this.seal();
    this.#parts.push(TAIL);
    return { parts: this.#parts, bytes: this.#bytes + TAIL.length };
  }
}

/** An export request up to its first span: this sidecar's resource and the instrumentation scope. */
export function requestHead(resource: Readonly<Record<string, string>>, scope: string): Buffer {
  const attributes = Object.entries(resource).map(([key, value]) => `{"key":${JSON.stringify(key)},"value":{"stringValue":${JSON.stringify(value)}}}`).join(',');
  return Buffer.from(`{"resourceSpans":[{"resource":{"attributes":[${attributes}]},"scopeSpans":[{"scope":{"name":${JSON.stringify(scope)}},"spans":[`);
}
const TAIL = Buffer.from(']}]}]}');
