// A bounded first-in-first-out file of sealed audit lines that could not be sent yet (NATS away): lines
// are appended at the end, read and consumed from the front, and the file is emptied once all are sent.
// All I/O is async and off the request path; one caller at a time (the audit pump).
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

const READ_CHUNK = 256 * 1024;

export class AuditSpool {
  readonly path: string;
  readonly maxBytes: number;
  #fh: FileHandle | undefined;
  #size = 0;
  #head = 0;

  private constructor(path: string, maxBytes: number) {
    this.path = path;
    this.maxBytes = maxBytes;
  }

  /**
   * Opens (or creates, mode 0600) the spool; lines left by an earlier run of the same instance are kept.
   * A last line without its line end (a write cut short by a crash) is cut off: it could never be read
   * back, and the next append would run into it.
   */
  static async open(path: string, maxBytes: number): Promise<AuditSpool> {
    const spool = new AuditSpool(path, maxBytes);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const fh = await open(path, 'a+', 0o600);
    spool.#fh = fh;
    const size = (await fh.stat()).size;
    spool.#size = await wholeLines(fh, size);
    if (spool.#size < size) await fh.truncate(spool.#size);
    return spool;
  }

  /** Bytes not yet consumed. */
  get pending(): number {
    return this.#size - this.#head;
  }

  /** Appends as many whole lines as fit under maxBytes; returns how many. */
  async append(lines: readonly string[]): Promise<number> {
    const fh = this.#handle();
    let n = 0;
    let bytes = 0;
    for (const line of lines) {
      const len = Buffer.byteLength(line) + 1;
      if (this.pending + bytes + len > this.maxBytes) break;
      bytes += len;
      n++;
    }
    if (n === 0) return 0;
    await fh.appendFile(`${lines.slice(0, n).join('\n')}\n`);
    this.#size += bytes;
    return n;
  }

  /** Up to `max` lines from the front, with the bytes they take (for consume). */
  async peek(max: number): Promise<{ lines: string[]; bytes: number }> {
    const fh = this.#handle();
    const length = Math.min(READ_CHUNK, this.pending);
    if (length === 0) return { lines: [], bytes: 0 };
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, this.#head);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const lines: string[] = [];
    let bytes = 0;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0 && lines.length < max; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      bytes += Buffer.byteLength(line) + 1;
      if (line !== '') lines.push(line);
      start = nl + 1;
    }
    return { lines, bytes };
  }

  /** Drops `bytes` from the front (what peek returned and the sink stored); empties the file when all are gone. */
  async consume(bytes: number): Promise<void> {
    this.#head = Math.min(this.#size, this.#head + bytes);
    if (this.#head === this.#size) {
      await this.#handle().truncate(0);
      this.#size = 0;
      this.#head = 0;
    }
  }

  /** The last line in the spool (to continue the hash chain after a restart), if any. */
  async lastLine(): Promise<string | undefined> {
    if (this.pending === 0) return undefined;
    const length = Math.min(64 * 1024, this.pending);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await this.#handle().read(buf, 0, length, this.#size - length);
    const lines = buf.subarray(0, bytesRead).toString('utf8').split('\n').filter((l) => l !== '');
    return lines.at(-1);
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }

  #handle(): FileHandle {
    if (!this.#fh) throw new Error('audit spool is closed');
    return this.#fh;
  }
}

/** The length of the file up to and including its last line end (0 when it has none). */
async function wholeLines(fh: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(Math.min(size, 64 * 1024));
  for (let end = size; end > 0;) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}
