// Bytes written straight into large chunks of memory and taken out as views of them, so an export
// request is encoded without a string per span (no pieces to concatenate, no copy to flatten them). It
// knows bytes, ASCII, JSON string literals and digits; nothing of OTLP.

/** Chunk size: one allocation per ~80 spans; a string longer than this gets a chunk of its own size. */
const CHUNK_BYTES = 64 * 1024;
/** Chunks kept for reuse once every request written into them was sent (about what one second of spans fills at a few thousand calls a second). */
const FREE_CHUNKS = 16;

export class ChunkWriter {
  readonly #chunkBytes: number;
  /** Empty until the first write. */
  #chunk: Buffer = Buffer.alloc(0);
  /** Where the next byte goes, and where the bytes not yet taken start. */
  #at = 0;
  #from = 0;
  /** Views of earlier chunks written since the last take(). */
  #full: Buffer[] = [];
  #fullBytes = 0;
  /**
   * Chunks handed out (in views) and not all given back, by their memory: the chunk and how many views
   * are out. Off-heap memory that waits for a full garbage collection after its request was sent grew
   * a sidecar's RSS by tens of MB under thousands of calls a second; chunks given back are written again.
   */
  readonly #out = new Map<ArrayBufferLike, { chunk: Buffer; views: number; reusable: boolean }>();
  readonly #free: Buffer[] = [];

  constructor(chunkBytes = CHUNK_BYTES) {
    this.#chunkBytes = chunkBytes;
  }

  /** `bytes` as they are. */
  bytes(bytes: Uint8Array): void {
    const n = bytes.length;
    this.#room(n);
    // TypedArray#set costs about the same for 10 bytes as for 500 (a builtin and a memmove).
    this.#chunk.set(bytes, this.#at);
    this.#at += n;
  }

  /** Text the caller knows to be ASCII (hex ids, digits): a byte per character. */
  ascii(text: string): void {
    const n = text.length;
    this.#room(n);
    if (n > 24) {
      // Past a couple of dozen characters Node's latin1 copy beats a charCodeAt loop.
      this.#at += this.#chunk.write(text, this.#at, 'latin1');
      return;
    }
    const chunk = this.#chunk;
    let at = this.#at;
    for (let i = 0; i < n; i++) chunk[at++] = text.charCodeAt(i);
    this.#at = at;
  }

  /** Two ASCII characters (a closing `}}`, a `",`): cheaper as stores than as a copy. */
  pair(first: number, second: number): void {
    this.#room(2);
    this.#chunk[this.#at++] = first;
    this.#chunk[this.#at++] = second;
  }

  /** `value` as a non-negative integer below 10^width (and 2^30), zero-padded to `width` digits. */
  digits(value: number, width: number): void {
    this.#room(width);
    const chunk = this.#chunk;
    // Remainder, then an exact division: small-integer arithmetic throughout, which allocates nothing
    // even before the function is optimised (a plain `/ 10` makes a heap number per digit until then).
    let rest = value;
    for (let at = this.#at + width - 1; at >= this.#at; at--) {
      const digit = rest % 10;
      chunk[at] = 48 + digit;
      rest = (rest - digit) / 10;
    }
    this.#at += width;
  }

  /**
   * A JSON string literal, as JSON.stringify writes it, in UTF-8. Printable ASCII other than `"` and `\`
   * is its own JSON, copied as it is checked; anything else goes through JSON.stringify.
   */
  string(value: string): void {
    const n = value.length;
    this.#room(n + 2);
    const chunk = this.#chunk;
    const start = this.#at;
    let at = start;
    chunk[at++] = 0x22;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return this.#escaped(value);
      chunk[at++] = c;
    }
    chunk[at++] = 0x22;
    this.#at = at;
  }

  #escaped(value: string): void {
    const json = JSON.stringify(value);
    // UTF-8 takes at most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2).
    this.#room(json.length * 3);
    this.#at += this.#chunk.write(json, this.#at, 'utf8');
  }

  /**
   * Bytes written since the last take, as views in order, and how many. Give them back with release()
   * once nothing reads them any more (their request was written out), so their chunks can be reused.
   */
  take(): { parts: Buffer[]; bytes: number } {
    const parts = this.#full;
    let bytes = this.#fullBytes;
    if (this.#at > this.#from) {
      parts.push(this.#view(this.#chunk, this.#from, this.#at));
      bytes += this.#at - this.#from;
      this.#from = this.#at;
    }
    this.#full = [];
    this.#fullBytes = 0;
    return { parts, bytes };
  }

  /**
   * Views from take() that this writer need not count any more; every view taken must come back here once,
   * or its chunk stays counted. `reusable`: nothing reads them any more (their request was written out in
   * full). A chunk whose views are all back, every one of them reusable, and that is not the one being
   * written, is kept for reuse (up to FREE_CHUNKS); any other is left to the garbage collector. Views not
   * from this writer are ignored.
   */
  release(parts: readonly Buffer[], reusable: boolean): void {
    for (const part of parts) {
      const held = this.#out.get(part.buffer);
      if (held === undefined || held.views === 0) continue; // not ours, or given back already
      if (!reusable) held.reusable = false;
      // The chunk being written keeps its count (and whether it may be reused) until it is set aside.
      if (--held.views > 0 || held.chunk === this.#chunk) continue;
      this.#out.delete(part.buffer);
      if (held.reusable) this.#recycle(held.chunk);
    }
  }

  /** Chunks with views not yet released (for tests). */
  get chunksOut(): number {
    let n = 0;
    for (const held of this.#out.values()) if (held.views > 0) n++;
    return n;
  }

  /** Chunks kept for reuse (for tests). */
  get chunksFree(): number { return this.#free.length; }

  /** A view of `chunk` handed out, counted against it. */
  #view(chunk: Buffer, from: number, to: number): Buffer {
    const held = this.#out.get(chunk.buffer);
    if (held === undefined) this.#out.set(chunk.buffer, { chunk, views: 1, reusable: true });
    else held.views++;
    return chunk.subarray(from, to);
  }

  #recycle(chunk: Buffer): void {
    if (chunk.length === this.#chunkBytes && this.#free.length < FREE_CHUNKS) this.#free.push(chunk);
  }

  /**
   * Room for `n` more bytes: when the chunk cannot take them, what it holds is set aside and the next
   * chunk begins: a released one when there is one, else new memory. A chunk is written again only when
   * every view of it came back through release() (a view handed out is read until its request is sent).
   */
  #room(n: number): void {
    if (this.#at + n <= this.#chunk.length) return;
    const done = this.#chunk;
    if (this.#at > this.#from) {
      this.#full.push(this.#view(done, this.#from, this.#at));
      this.#fullBytes += this.#at - this.#from;
    }
    // The chunk set aside may already be free: every view of it released while it was being written.
    const held = this.#out.get(done.buffer);
    if (held === undefined) {
      if (done.length > 0) this.#recycle(done);
    } else if (held.views === 0) {
      this.#out.delete(done.buffer);
      if (held.reusable) this.#recycle(done);
    }
    // Uninitialised memory: only the bytes written are ever handed out.
    this.#chunk = (n <= this.#chunkBytes ? this.#free.pop() : undefined) ?? Buffer.allocUnsafeSlow(Math.max(this.#chunkBytes, n));
    this.#at = 0;
    this.#from = 0;
  }
}
