// OTLP/HTTP JSON for recorded spans (the encoding the OpenTelemetry collector and every OTLP backend
// accept at /v1/traces): the request wrapper with this sidecar's resource, and spans encoded a slice at
// a time so a batch never holds the event loop long. Strings are escaped only when they need it.
import { targetLabel } from '../metric-labels.ts';
import type { CallSpan } from './call-span.ts';

/** OTLP span kinds. */
const SERVER = 2;
const CLIENT = 3;
/** OTLP status codes: unset, error. */
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
/** OTLP span flags: the W3C sampled bit, "whether the parent is remote is known", "the parent is remote". */
const FLAG_SAMPLED = 0x1;
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

/** Wall-clock time of performance.now() readings, as OTLP's decimal nanoseconds since the epoch. */
export class WallClock {
  #wholeMs = 0;
  #fractionMs = 0;

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
    return `${this.#wholeMs + whole}${String(ns).padStart(6, '0')}`;
  }

  #anchor(originMs: number): void {
    this.#wholeMs = Math.floor(originMs);
    this.#fractionMs = originMs - this.#wholeMs;
  }
}

/** The parts of an export request around its spans: `${head}${spans joined by ','}${TAIL}`. */
export function requestHead(resource: Readonly<Record<string, string>>, scope: string): string {
  const attributes = Object.entries(resource).map(([key, value]) => stringAttribute(key, value)).join(',');
  return `{"resourceSpans":[{"resource":{"attributes":[${attributes}]},"scopeSpans":[{"scope":{"name":${JSON.stringify(scope)}},"spans":[`;
}
export const REQUEST_TAIL = ']}]}]}';

function stringAttribute(key: string, value: string): string {
  return `{"key":${JSON.stringify(key)},"value":{"stringValue":${JSON.stringify(value)}}}`;
}

/** spans[from, to) as OTLP JSON span objects separated by commas. */
export function encodeSpans(spans: readonly CallSpan[], from: number, to: number, clock: WallClock): string {
  let out = '';
  for (let i = from; i < to; i++) {
    const span = spans[i];
    if (span === undefined) break;
    if (out !== '') out += ',';
    out += encodeSpan(span, clock);
  }
  return out;
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

function encodeSpan(span: CallSpan, clock: WallClock): string {
  const method = methods.get(span.method);
  const target = span.target ? targets.get(targetLabel(span.target)) : undefined;
  // "method target": the two JSON string bodies joined by a space are still a valid JSON string.
  const name = target === undefined ? method : `${method.slice(0, -1)} ${target.slice(1)}`;
  let out = `{"traceId":"${span.traceId}","spanId":"${span.spanId}"`;
  if (span.parentSpanId !== undefined) out += `,"parentSpanId":"${span.parentSpanId}"`;
  if (span.traceState !== undefined) out += `,"traceState":${quote(span.traceState)}`;
  out += `,"name":${name},"kind":${span.direction === 'outbound' ? CLIENT : SERVER}`
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
  const failed = span.status === 0 || span.status >= 500 || span.error !== undefined;
  out += failed
    ? `],"status":{"code":${STATUS_ERROR},"message":${words.get(span.error ?? (span.status === 0 ? 'cut' : `HTTP ${span.status}`))}}`
    : `],"status":{"code":${STATUS_UNSET}}`;
  return `${out},"flags":${FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | (span.parentSpanId === undefined ? 0 : FLAG_IS_REMOTE)}}`;
}
