// W3C trace context as a sidecar reads it from a request and writes it for the next hop: `traceparent`
// and `tracestate` parsed (a malformed header starts a new trace, never an error), new span and trace
// ids from a pool of random bytes, and the ratio sampler for new traces. No I/O and no clock here.
import { randomFillSync } from 'node:crypto';

/** The caller's span as its `traceparent` names it. */
export interface ParentSpan {
  traceId: string;
  spanId: string;
  /** The caller's sampled flag (bit 0 of trace-flags). */
  sampled: boolean;
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** version-traceid-parentid-flags with anything after it (a later version may add fields), one blank tolerated at each end. */
const TRACEPARENT = /^\s?((?!ff)[\da-f]{2})-((?![0]{32})[\da-f]{32})-((?![0]{16})[\da-f]{16})-([\da-f]{2})(-.*)?\s?$/;

/** Lowercase hex digit. */
function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
}

function hexRun(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isHex(s.charCodeAt(i))) return false;
  return true;
}

/**
 * The span a `traceparent` names, or undefined when it names none (absent, malformed, version ff, an
 * all-zero id, or a version-00 header with extra fields). The exact 55-character version-00 form takes
 * a loop over its characters; any other form the W3C grammar as a regular expression.
 */
export function parseTraceparent(header: string | string[] | undefined): ParentSpan | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (typeof value !== 'string' || value === '') return undefined;
  if (value.length === 55 && value.charCodeAt(0) === 48 && value.charCodeAt(1) === 48) {
    if (value.charCodeAt(2) !== 45 || value.charCodeAt(35) !== 45 || value.charCodeAt(52) !== 45) return undefined;
    if (!hexRun(value, 3, 35) || !hexRun(value, 36, 52) || !hexRun(value, 53, 55)) return undefined;
    const traceId = value.slice(3, 35);
    const spanId = value.slice(36, 52);
    if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
    return { traceId, spanId, sampled: (value.charCodeAt(54) - (value.charCodeAt(54) >= 97 ? 87 : 48)) % 2 === 1 };
  }
  const m = TRACEPARENT.exec(value);
  if (!m || (m[1] === '00' && m[5] !== undefined)) return undefined;
  return { traceId: m[2] as string, spanId: m[3] as string, sampled: (Number.parseInt(m[4] as string, 16) & 1) === 1 };
}

const TRACESTATE_MAX_MEMBERS = 32;
const TRACESTATE_MAX_LENGTH = 512;
const TRACESTATE_KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[ -~]{0,255}[!-~]$/;

/**
 * The `tracestate` to carry on: the valid `key=value` members in their order (a repeated key keeps its
 * first place and its last value), at most 32 and 512 characters; several headers count as one list.
 * Undefined when nothing valid is left.
 */
export function parseTracestate(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (typeof value !== 'string' || value === '') return undefined;
  const members = new Map<string, string>();
  let length = 0;
  for (const raw of value.split(',')) {
    const member = raw.trim();
    const eq = member.indexOf('=');
    if (eq === -1) continue;
    const key = member.slice(0, eq);
    const val = member.slice(eq + 1);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(val) || val.includes(',') || val.includes('=')) continue;
    const next = length + member.length + (members.size > 0 ? 1 : 0);
    if (next > TRACESTATE_MAX_LENGTH) continue;
    members.set(key, val);
    length = next;
    if (members.size >= TRACESTATE_MAX_MEMBERS) break;
  }
  if (members.size === 0) return undefined;
  let out = '';
  for (const [key, val] of members) out += `${out === '' ? '' : ','}${key}=${val}`;
  return out;
}

/**
 * Span and trace ids: hex slices of a block of random bytes filled 4 KiB at a time (one
 * randomFillSync and one hex conversion per 512 span ids), never the invalid all-zero id.
 */
export class IdPool {
  readonly #bytes = Buffer.alloc(4096);
  #hex = '';
  #at = 0;

  /** 16 hex digits: a span id. */
  spanId(): string {
    const id = this.#take(16);
    return id === ZERO_SPAN_ID ? this.spanId() : id;
  }

  /** 32 hex digits: a trace id. */
  traceId(): string {
    const id = this.#take(32);
    return id === ZERO_TRACE_ID ? this.traceId() : id;
  }

  #take(digits: number): string {
    if (this.#at + digits > this.#hex.length) {
      this.#hex = randomFillSync(this.#bytes).toString('hex');
      this.#at = 0;
    }
    const id = this.#hex.slice(this.#at, this.#at + digits);
    this.#at += digits;
    return id;
  }
}

/**
 * Whether a new trace is recorded at `ratio` (0–1): the trace id's four 32-bit words XORed together
 * and compared against ratio × 2³², so every sidecar that starts or sees the trace decides alike (the
 * same rule as OpenTelemetry's TraceIdRatioBased sampler).
 */
export function ratioSampler(ratio: number): (traceId: string) => boolean {
  const r = Number.isNaN(ratio) ? 0 : Math.min(1, Math.max(0, ratio));
  if (r === 1) return () => true;
  if (r === 0) return () => false;
  const bound = Math.floor(r * 0xffffffff);
  return (traceId) => {
    let acc = 0;
    for (let word = 0; word < 32; word += 8) acc = (acc ^ Number.parseInt(traceId.slice(word, word + 8), 16)) >>> 0;
    return acc < bound;
  };
}
