// OTLP/HTTP JSON for recorded spans (the encoding the OpenTelemetry collector and every OTLP backend
// accept at /v1/traces): one export request written a slice of spans at a time, each slice turned into
// bytes once. Strings are escaped only when they need it (JSON.stringify then); values with few distinct
// spellings (methods, targets, callers, codes) are quoted once and cached.
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

/** Characters a JSON string cannot hold as they are (and lone surrogates, which JSON.stringify escapes). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as a JSON string literal: JSON.stringify only when something needs escaping (it costs twice a test). */
function quote(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/**
 * Quoted values of a field with few distinct values (methods, targets, callers, tools, codes), each
 * quoted once. Bounded: past `max` values it starts over, so a caller inventing names cannot grow it.
 */
class QuotedCache {
  readonly #map = new Map<string, string>();
  constructor(readonly max = 256) {}
  get(value: string): string {
    let quoted = this.#map.get(value);
    if (quoted === undefined) {
      if (this.#map.size >= this.max) this.#map.clear();
      quoted = quote(value);
      this.#map.set(value, quoted);
    }
    return quoted;
  }
}

const methods = new QuotedCache();
const targets = new QuotedCache();
const callers = new QuotedCache();
const words = new QuotedCache();

/** One export request being written: the head, spans separated by commas, then finish(). */
export class OtlpRequest {
  readonly #clock: WallClock;
  readonly #parts: Buffer[];
  #text = '';
  #bytes: number;
  spans = 0;

  constructor(head: Buffer, clock: WallClock) {
    this.#parts = [head];
    this.#bytes = head.length;
    this.#clock = clock;
  }

  add(span: CallSpan): void {
    if (this.spans++ > 0) this.#text += ',';
    this.#text += encodeSpan(span, this.#clock);
  }

  /** The spans added since the last seal, as bytes (the text is dropped). */
  seal(): void {
    if (this.#text === '') return;
    const part = Buffer.from(this.#text);
    this.#parts.push(part);
    this.#bytes += part.length;
    this.#text = '';
  }

  /** The request's body, in parts to write one after the other. */
  finish(): { parts: Buffer[]; bytes: number } {
    this.seal();
    this.#parts.push(TAIL);
    return { parts: this.#parts, bytes: this.#bytes + TAIL.length };
  }
}

function encodeSpan(span: CallSpan, clock: WallClock): string {
  const method = methods.get(span.method);
  const target = span.target ? targets.get(targetLabel(span.target)) : undefined;
  // "method target": the two JSON string bodies joined by a space are still a valid JSON string.
  const name = target === undefined ? method : `${method.slice(0, -1)} ${target.slice(1)}`;
  let out = `{"traceId":"${span.traceId}","spanId":"${span.spanId}"`;
  if (span.parentSpanId !== undefined) out += `,"parentSpanId":"${span.parentSpanId}"`;
  if (span.traceState !== undefined) out += `,"traceState":${quote(span.traceState)}`;
  // OTLP span kinds: server 2, client 3.
  out += `,"name":${name},"kind":${span.direction === 'outbound' ? 3 : 2}`
    + `,"startTimeUnixNano":"${clock.nanos(span.startedAt)}","endTimeUnixNano":"${clock.nanos(span.endedAt)}"`
    + `,"attributes":[{"key":"rpc.system","value":{"stringValue":"${span.target?.kind === 'mcp' || span.method.startsWith('MCP') ? 'mcp' : 'a2a'}"}}`
    + `,{"key":"rpc.method","value":{"stringValue":${method}}}`
    // The request id needs no escaping: RequestContext takes it only in REQUEST_ID's characters (sdk/mesh-headers.ts) or makes a UUID.
    + `,{"key":"agentmesh.request_id","value":{"stringValue":"${span.requestId}"}}`
    + `,{"key":"agentmesh.direction","value":{"stringValue":"${span.direction}"}}`
    + `,{"key":"agentmesh.retries","value":{"intValue":${span.retries | 0}}}`
    + `,{"key":"agentmesh.hops","value":{"intValue":${span.hops | 0}}}`
    + `,{"key":"http.response.status_code","value":{"intValue":${span.status | 0}}}`;
  if (target !== undefined) out += `,{"key":"agentmesh.target","value":{"stringValue":${target}}}`;
  if (span.caller !== undefined) out += `,{"key":"agentmesh.caller","value":{"stringValue":${callers.get(span.caller)}}}`;
  if (span.taskId !== undefined) out += `,{"key":"a2a.task_id","value":{"stringValue":${quote(span.taskId)}}}`;
  if (span.contextId !== undefined) out += `,{"key":"a2a.context_id","value":{"stringValue":${quote(span.contextId)}}}`;
  if (span.tool !== undefined) out += `,{"key":"mcp.tool.name","value":{"stringValue":${words.get(span.tool)}}}`;
  if (span.decision !== undefined) out += `,{"key":"agentmesh.policy.decision","value":{"stringValue":${words.get(span.decision)}}}`;
  if (span.error !== undefined) out += `,{"key":"error.type","value":{"stringValue":${words.get(span.error)}}}`;
  // OTLP status: unset 0, error 2. Flags: the W3C sampled bit 0x1, "whether the parent is remote is known" 0x100, "it is" 0x200.
  out += span.status === 0 || span.status >= 500 || span.error !== undefined
    ? `],"status":{"code":2,"message":${words.get(span.error ?? (span.status === 0 ? 'cut' : `HTTP ${span.status}`))}}`
    : '],"status":{"code":0}';
  return out + (span.parentSpanId === undefined ? ',"flags":257}' : ',"flags":769}');
}

/** An export request up to its first span: this sidecar's resource and the instrumentation scope. */
export function requestHead(resource: Readonly<Record<string, string>>, scope: string): Buffer {
  const attributes = Object.entries(resource).map(([key, value]) => `{"key":${JSON.stringify(key)},"value":{"stringValue":${JSON.stringify(value)}}}`).join(',');
  return Buffer.from(`{"resourceSpans":[{"resource":{"attributes":[${attributes}]},"scopeSpans":[{"scope":{"name":${JSON.stringify(scope)}},"spans":[`);
}
const TAIL = Buffer.from(']}]}]}');
