// One sidecar's audit writer: record() only queues (no I/O, no hashing on the request path); a timer
// seals queued records into the hash chain in batches and a single pump stores them through the sink,
// spooling to disk while the sink fails and replaying the spool first, in order. Bounded everywhere:
// when memory and spool are full, records are counted and a `gap` record says how many were lost.
// The pump is one loop that runs every piece of work asked of it, one at a time: a request made while it
// is busy runs after the current one (never dropped), so a retry or flush always gets its own drain.
import { GENESIS, seal, type AuditFields } from './audit-record.ts';
import type { AuditSink } from './audit-sink.ts';
import type { AuditSpool } from './audit-spool.ts';

export interface AuditLogOptions {
  instance: string;
  sink: AuditSink;
  /** Without it (file sink), failed lines wait in memory only. */
  spool?: AuditSpool;
  /** Records held in memory (queued + sealed, not yet stored or spooled). */
  maxPending: number;
  /** Records per stored batch. */
  batchSize: number;
  flushIntervalMs: number;
  /** Wait after a failed store before trying again. */
  retryMs: number;
  onError?: (err: unknown) => void;
  now?: () => Date;
}

export interface AuditStats {
  sealed: number;
  stored: number;
  lost: number;
  pending: number;
  spooledBytes: number;
}

export class AuditLog {
  readonly #o: AuditLogOptions;
  #queue: AuditFields[] = [];
  #unsent: string[] = [];
  #seq = 0;
  #prev = GENESIS;
  #lost = 0;
  #lostFrom: string | undefined;
  #lostTo: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #pumping: Promise<void> | undefined;
  /** Work asked of the pump and not started yet; a drain is never downgraded to spooling only. */
  #next: 'drain' | 'spool' | undefined;
  #failing = false;
  #closing: Promise<void> | undefined;
  #stats = { sealed: 0, stored: 0 };
  readonly #now: () => Date;

  private constructor(options: AuditLogOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Opens the writer and continues this instance's chain from the last record it left (spool, then sink). */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const log = new AuditLog(options);
    const last = (await options.spool?.lastLine()) ?? (await options.sink.last().catch(() => undefined));
    if (last !== undefined) {
      try {
        const { seq, hash, instance } = JSON.parse(last) as { seq?: unknown; hash?: unknown; instance?: unknown };
        if (instance === options.instance && typeof seq === 'number' && typeof hash === 'string') {
          log.#seq = seq;
          log.#prev = hash;
        }
      } catch { /* an unreadable last line: start a new chain segment after it (verify will name it) */ }
    }
    if ((options.spool?.pending ?? 0) > 0) log.#kick();
    return log;
  }

  /** Queues one record; cheap and synchronous. Over the memory bound, the record is counted as lost. */
  record(fields: AuditFields): void {
    if (this.#closing) return;
    if (this.#queue.length + this.#unsent.length >= this.#o.maxPending) {
      const at = this.#now().toISOString();
      this.#lost++;
      this.#lostFrom ??= at;
      this.#lostTo = at;
      this.#flushSoon(this.#o.flushIntervalMs); // the gap record is sealed once there is room
      return;
    }
    this.#queue.push(fields);
    if (this.#queue.length >= this.#o.batchSize) this.#flushSoon(0);
    else this.#flushSoon(this.#o.flushIntervalMs);
  }

  stats(): AuditStats {
    return {
      ...this.#stats, lost: this.#lost, pending: this.#queue.length + this.#unsent.length,
      spooledBytes: this.#o.spool?.pending ?? 0,
    };
  }

  /** Seals what is queued and waits until everything sealed is stored or spooled (or the sink keeps failing). */
  async flush(): Promise<void> {
    this.#seal();
    await this.#pump();
  }

  /** Stops accepting, seals and tries once more to store everything; whatever fails stays in the spool. */
  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      clearTimeout(this.#timer);
      clearTimeout(this.#retry);
      this.#seal();
      this.#failing = false;
      await this.#pump();
      await this.#run('spool');
      await this.#o.spool?.close().catch(() => undefined);
      await this.#o.sink.close().catch(() => undefined);
    })());
  }

  #flushSoon(ms: number): void {
    if (this.#closing || (this.#timer && ms > 0)) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#seal();
      this.#kick();
    }, ms);
    this.#timer.unref();
  }

  #seal(): void {
    if (this.#lost > 0 && this.#queue.length + this.#unsent.length < this.#o.maxPending) {
      this.#queue.unshift({ kind: 'gap', lost: this.#lost, from: this.#lostFrom ?? '', to: this.#lostTo ?? '' });
      this.#lost = 0;
      this.#lostFrom = undefined;
      this.#lostTo = undefined;
    }
    if (this.#queue.length === 0) return;
    // One position object per batch, moved along the chain (seal keeps no reference to it).
    const at = { instance: this.#o.instance, seq: this.#seq, time: this.#now().toISOString(), prev: this.#prev };
    for (const fields of this.#queue) {
      at.seq = ++this.#seq;
      const sealed = seal(fields, at);
      at.prev = this.#prev = sealed.hash;
      this.#unsent.push(sealed.line);
    }
    this.#stats.sealed += this.#queue.length;
    this.#queue = [];
  }

  /** Stores what is sealed; while the sink is failing, only moves it to the spool (disk, not memory). */
  #kick(): void {
    void this.#run(this.#failing ? 'spool' : 'drain');
  }

  #pump(): Promise<void> {
    return this.#run('drain');
  }

  /**
   * Asks the pump for `work`; resolves once the pump is idle again, that is after work started later than
   * this call has finished. One spool/sink operation at a time.
   */
  #run(work: 'drain' | 'spool'): Promise<void> {
    if (this.#next !== 'drain') this.#next = work;
    this.#pumping ??= this.#loop();
    return this.#pumping;
  }

  async #loop(): Promise<void> {
    await Promise.resolve(); // #pumping is set before the first piece of work starts
    try {
      for (let work = this.#next; work; work = this.#next) {
        this.#next = undefined;
        try {
          await (work === 'drain' ? this.#drain() : this.#spoolUnsent());
        } catch (err) {
          this.#o.onError?.(err);
        }
      }
    } finally {
      this.#pumping = undefined;
    }
  }

  async #drain(): Promise<void> {
    const { sink, spool, batchSize } = this.#o;
    for (;;) {
      if (spool && spool.pending > 0) {
        const { lines, bytes } = await spool.peek(batchSize);
        const stored = lines.length === 0 ? 0 : await sink.write(lines);
        if (stored === lines.length) {
          this.#stats.stored += stored;
          await spool.consume(bytes);
          // Whatever arrived meanwhile goes behind the spooled lines, in order.
          if (this.#unsent.length > 0) this.#unsent.splice(0, await spool.append(this.#unsent));
          continue;
        }
        // Partly stored: the stored ones are re-sent with the same msg ids (JetStream drops the duplicates).
        await this.#spoolUnsent();
        return this.#backoff();
      }
      if (this.#unsent.length === 0) {
        if (this.#lost > 0) this.#flushSoon(this.#o.flushIntervalMs);
        return;
      }
      const batch = this.#unsent.slice(0, batchSize);
      const stored = await sink.write(batch);
      this.#unsent.splice(0, stored);
      this.#stats.stored += stored;
      if (stored < batch.length) {
        await this.#spoolUnsent();
        return this.#backoff();
      }
    }
  }

  /** While the sink fails, sealed lines move to disk (as many as fit); the rest wait in memory. */
  async #spoolUnsent(): Promise<void> {
    if (!this.#o.spool || this.#unsent.length === 0) return;
    const n = await this.#o.spool.append(this.#unsent);
    this.#unsent.splice(0, n);
  }

  #backoff(): void {
    if (this.#closing) return;
    this.#failing = true;
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      this.#failing = false;
      this.#seal();
      void this.#pump();
    }, this.#o.retryMs);
    this.#retry.unref();
  }
}
