// Watching the embedded registry's directory: a scan turns files into watch changes (puts for new or
// rewritten valid files, deletes for vanished ones) and removes what dead processes left behind.
// Scans run on fs.watch events and on an unref'd timer, one at a time. It never writes records.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, publish } from './diagnostics.ts';
import type { RecordCodec, SealedRecord } from './record-codec.ts';
import { isFresh } from './record.ts';
import type { RegistryChange } from './types.ts';

export const RECORD_SUFFIX = '.json';
export const TEMP_SUFFIX = '.tmp';

interface Known {
  /** inode, mtime and size: a rename or rewrite changes it, so unchanged files are not re-read. */
  version: string;
  /** Absent when the file did not hold a valid record. */
  sealed?: SealedRecord;
  mtimeMs: number;
  /** Whether the watcher was given this key as a put (and so must hear of its delete). */
  delivered: boolean;
}

/** Thrown inside a scan for a file that exists but could not be read this time (EMFILE …). */
class Unreadable extends Error {}

export class DirectoryWatch {
  readonly #known = new Map<string, Known>();
  #stopped = false;
  #scanning: Promise<void> | undefined;
  #again = false;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  readonly #dir: string;
  readonly #ttlMs: number;
  readonly #decode: RecordCodec['decode'];
  readonly #onChange: (change: RegistryChange) => void;
  readonly #onInvalid: ((key: string, err: unknown) => void) | undefined;

  /** Files whose record is stale beyond 2×ttlMs (or corrupt files untouched that long) are removed. */
  constructor(dir: string, ttlMs: number, decode: RecordCodec['decode'], onChange: (change: RegistryChange) => void, onInvalid?: (key: string, err: unknown) => void) {
    this.#dir = dir;
    this.#ttlMs = ttlMs;
    this.#decode = decode;
    this.#onChange = onChange;
    this.#onInvalid = onInvalid;
  }

  /** Delivers the snapshot (one scan), then keeps watching. */
  async start(rescanMs: number): Promise<void> {
    await this.#scan();
    try {
      this.#watcher = fsWatch(this.#dir, { persistent: false }, () => this.#trigger());
      this.#watcher.on('error', () => { this.#watcher?.close(); this.#watcher = undefined; }); // the timer still sees every change
    } catch {
      this.#watcher = undefined;
    }
    this.#timer = setInterval(() => this.#trigger(), rescanMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#watcher?.close();
  }

  #trigger(): void {
    if (this.#stopped) return;
    if (this.#scanning) { this.#again = true; return; }
    this.#scanning = this.#scan()
      .catch((err: unknown) => publish({ type: 'watch-restart', backend: 'embedded', reason: `scan failed: ${errorMessage(err)}` }))
      .finally(() => {
        this.#scanning = undefined;
        if (this.#again) { this.#again = false; this.#trigger(); }
      });
  }

  async #scan(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(this.#dir, { recursive: true, mode: 0o700 }); // someone removed the directory: start over
      names = [];
    }
    const now = Date.now();
    const present = new Set<string>();
    for (const name of names) {
      if (this.#stopped) return;
      const key = await this.#examine(name, now).catch((err: unknown) => {
        if (err instanceof Unreadable) return name.slice(0, -RECORD_SUFFIX.length); // keep its last state
        throw err;
      });
      if (key !== undefined) present.add(key);
    }
    for (const [key, entry] of this.#known) {
      if (present.has(key)) continue;
      this.#known.delete(key);
      if (entry.delivered) this.#onChange({ op: 'delete', key });
    }
  }

  /** Looks at one directory entry; returns its key while it holds a live (or unreadable) record file. */
  async #examine(name: string, now: number): Promise<string | undefined> {
    if (name.startsWith('.')) {
      if (name.endsWith(TEMP_SUFFIX)) await this.#reapTemp(name, now);
      return undefined;
    }
    if (!name.endsWith(RECORD_SUFFIX)) return undefined;
    const key = name.slice(0, -RECORD_SUFFIX.length);
    const path = join(this.#dir, name);
    const info = await stat(path).catch(missingOrUnreadable);
    if (!info) return undefined;
    const version = `${info.ino}:${info.mtimeMs}:${info.size}`;
    const previous = this.#known.get(key);
    let entry = previous;
    if (entry?.version !== version) {
      const text = await readFile(path, 'utf8').catch(missingOrUnreadable);
      if (text === undefined) return undefined;
      entry = { version, mtimeMs: info.mtimeMs, delivered: false };
      try {
        entry.sealed = await this.#decode(key, text);
      } catch (err) {
        this.#onInvalid?.(key, err);
      }
      this.#known.set(key, entry);
    }
    // An owner that was SIGKILLed leaves its file behind; any process may remove it once clearly dead.
    const dead = entry.sealed ? !isFresh(entry.sealed.record, 2 * this.#ttlMs, now) : now - entry.mtimeMs > 2 * this.#ttlMs;
    if (dead && await this.#reap(name, key, entry.sealed ? 'stale' : 'corrupt')) {
      entry.delivered ||= previous?.delivered ?? false; // so the scan delivers the delete
      return undefined;
    }
    if (entry !== previous) this.#deliver(key, entry, previous);
    return key;
  }

  #deliver(key: string, entry: Known, previous: Known | undefined): void {
    if (entry.sealed) {
      const { record, granted, tag } = entry.sealed;
      this.#onChange({ op: 'put', key, record, granted, tag });
      entry.delivered = true;
    } else if (previous?.delivered) {
      this.#onChange({ op: 'delete', key });
    }
  }

  /** A writer's leftover temp file (it died between write and rename). */
  async #reapTemp(name: string, now: number): Promise<void> {
    const info = await stat(join(this.#dir, name)).catch(() => undefined);
    if (info && now - info.mtimeMs > 2 * this.#ttlMs) await this.#reap(name, name, 'temp');
  }

  async #reap(name: string, key: string, reason: 'stale' | 'corrupt' | 'temp'): Promise<boolean> {
    try {
      await unlink(join(this.#dir, name));
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
    publish({ type: 'reaped', backend: 'embedded', key, reason });
    return true;
  }
}

function missingOrUnreadable(err: NodeJS.ErrnoException): undefined {
  if (err.code !== 'ENOENT') throw new Unreadable(err.message, { cause: err });
  return undefined;
}
