// The sealed line of a call record, written straight into one reused buffer as canonical JSON (the call
// keys in their fixed sorted order, no whitespace): no key array, sort, intermediate object or string copies
// per record. It must give exactly the bytes canonicalJson gives (audit verify re-derives the hash from
// them), so it gives up (undefined) on anything it does not expect and seal() takes the general path.
import { hash } from 'node:crypto';
import type { CallFields } from './audit-record.ts';

/** Where a record goes in the chain (as seal() takes it). */
export interface ChainPosition {
  instance: string;
  seq: number;
  time: string;
  prev: string;
}

/** The own keys a call record may have: any other key sends it the general way. */
const CALL_KEYS: ReadonlySet<string> = new Set<keyof CallFields>([
  'kind', 'requestId', 'direction', 'caller', 'user', 'chain', 'target', 'method', 'taskId', 'contextId', 'tool',
  'decision', 'rule', 'traceId', 'status', 'durationMs',
]);

/** A typical line is under 1 KB; a record that might not fit goes the general way (no growth code). */
const BUFFER_BYTES = 16 * 1024;
/** Room kept behind every string: whatever the writer puts down before the next string checks again. */
const MARGIN = 512;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Bytes of one JSON object, written key by key. A string of printable ASCII without `"` or `\` goes in as it
 * is (JSON.stringify writes it the same); any other string goes in as JSON.stringify writes it, UTF-8 encoded,
 * so the buffer always holds the UTF-8 of the string canonicalJson would return.
 */
class LineWriter {
  readonly #buf = Buffer.allocUnsafeSlow(BUFFER_BYTES);
  #pos = 0;
  #first = true;
  /** Only printable ASCII so far: the line is read back as latin1 (no UTF-8 decoding). */
  #ascii = true;
  /** A value of a type or size this writer does not handle: the record goes the general way. */
  #bad = false;
  /** Members taken from the fields (to compare with the enumerable keys counted beforehand). */
  fields = 0;

  reset(): void {
    this.#pos = 0;
    this.#first = true;
    this.#ascii = true;
    this.#bad = false;
    this.fields = 0;
  }

  get bad(): boolean {
    return this.#bad;
  }

  /** `"name":` after `{` or `,`; `name` is one of our own keys (plain ASCII). */
  key(name: string): void {
    this.#raw(this.#first ? '{"' : ',"');
    this.#first = false;
    this.#raw(name);
    this.#raw('":');
  }

  string(value: unknown): void {
    if (typeof value !== 'string' || this.#pos + value.length * 6 + MARGIN > BUFFER_BYTES) {
      this.#bad = true; // 6: the longest a UTF-16 unit becomes (\u001f); the margin covers what follows
      return;
    }
    const buf = this.#buf;
    const start = this.#pos;
    let pos = start;
    buf[pos++] = QUOTE;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === BACKSLASH) {
        // Escapes, non-ASCII, lone surrogates: exactly as JSON.stringify writes them.
        this.#pos = start + buf.write(JSON.stringify(value), start, 'utf8');
        this.#ascii = false;
        return;
      }
      buf[pos++] = c;
    }
    buf[pos++] = QUOTE;
    this.#pos = pos;
  }

  /** A finite number as JSON.stringify writes it (String(n), -0 as 0); NaN and ±Infinity go the general way. */
  number(value: unknown): void {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.#bad = true;
      return;
    }
    this.#raw(String(value));
  }

  /** An array of strings (a call's chain); anything else in it goes the general way. */
  strings(value: unknown): void {
    if (!Array.isArray(value)) {
      this.#bad = true;
      return;
    }
    this.#raw('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) this.#raw(',');
      this.string(value[i]);
    }
    this.#raw(']');
  }

  /** Closes the object, hashes it, appends the hash as the last member: the line and its hash. */
  seal(): { line: string; hash: string } {
    this.#raw('}');
    const digest = hash('sha256', this.#buf.subarray(0, this.#pos), 'hex');
    this.#pos--; // the closing brace: the line goes on with the hash
    this.#raw(',"hash":"');
    this.#raw(digest);
    this.#raw('"}');
    const line = this.#buf.toString(this.#ascii ? 'latin1' : 'utf8', 0, this.#pos);
    return { line, hash: digest };
  }

  /** Our own ASCII (punctuation, key names, digits, hex). */
  #raw(text: string): void {
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < text.length; i++) buf[pos++] = text.charCodeAt(i);
    this.#pos = pos;
  }
}

const writer = new LineWriter();

/**
 * seal() for a call record: the same line and hash, or undefined when the record has a key, a value type or
 * a size the fast way does not handle (or a member that is not an own enumerable property).
 */
export function sealCall(fields: CallFields, at: ChainPosition): { line: string; hash: string } | undefined {
  if (Object.getPrototypeOf(fields) !== Object.prototype) return undefined;
  let members = 0;
  for (const key in fields) {
    if (!CALL_KEYS.has(key)) return undefined;
    if (fields[key as keyof CallFields] !== undefined) members++;
  }
  const w = writer;
  w.reset();
  // Sorted by UTF-16 code units, as canonicalJson sorts; `instance`, `prev`, `seq`, `time` and `v` are the chain's.
  optional(w, 'caller', fields.caller);
  if (fields.chain !== undefined) {
    w.key('chain');
    w.strings(fields.chain);
    w.fields++;
  }
  optional(w, 'contextId', fields.contextId);
  optional(w, 'decision', fields.decision);
  required(w, 'direction', fields.direction);
  w.key('durationMs');
  w.number(fields.durationMs);
  w.fields++;
  w.key('instance');
  w.string(at.instance);
  required(w, 'kind', fields.kind);
  required(w, 'method', fields.method);
  w.key('prev');
  w.string(at.prev);
  required(w, 'requestId', fields.requestId);
  optional(w, 'rule', fields.rule);
  w.key('seq');
  w.number(at.seq);
  w.key('status');
  w.number(fields.status);
  w.fields++;
  optional(w, 'target', fields.target);
  optional(w, 'taskId', fields.taskId);
  w.key('time');
  w.string(at.time);
  optional(w, 'tool', fields.tool);
  optional(w, 'traceId', fields.traceId);
  optional(w, 'user', fields.user);
  w.key('v');
  w.number(1);
  return w.bad || w.fields !== members ? undefined : w.seal();
}

function required(w: LineWriter, key: string, value: string): void {
  w.key(key);
  w.string(value);
  w.fields++;
}

function optional(w: LineWriter, key: string, value: string | undefined): void {
  if (value === undefined) return;
  required(w, key, value);
}
