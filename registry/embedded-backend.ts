// The embedded single-host backend: one JSON file per key in a directory that every process on the
// host shares. Writes are atomic (temp file + rename); watchers rescan on fs.watch events and on a
// short timer, so a change reaches every process even where fs.watch is unreliable.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { decodeRecord, encodeRecord } from './codec.ts';
import { isFresh, recordKey, type RegistryRecord } from './record.ts';
import type { RegistryBackend, RegistryChange } from './types.ts';

const SUFFIX = '.json';

export async function openEmbeddedBackend(options: { dir: string; ttlMs: number; rescanMs?: number }): Promise<RegistryBackend> {
  const { dir, ttlMs } = options;
  const rescanMs = options.rescanMs ?? Math.min(250, Math.max(50, Math.floor(ttlMs / 10)));
  await mkdir(dir, { recursive: true });
  const pathOf = (key: string) => join(dir, `${key}${SUFFIX}`);

  return {
    kind: 'embedded',
    connected: () => true,
    onConnectionChange: () => undefined,
    async put(record) {
      const key = recordKey(record);
      const tmp = join(dir, `.${key}.${randomUUID()}.tmp`);
      await writeFile(tmp, encodeRecord(record));
      await rename(tmp, pathOf(key));
    },
    async delete(key) {
      await unlink(pathOf(key)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
    async watch(onChange, { signal, onInvalid }) {
      /** What this watcher has delivered: key → file version (mtime and size) and whether it was valid. */
      const seen = new Map<string, string>();
      let scanning: Promise<void> | undefined;
      let again = false;
      const scan = async (): Promise<void> => {
        const names = await readdir(dir).catch(() => [] as string[]);
        const present = new Set<string>();
        for (const name of names) {
          if (!name.endsWith(SUFFIX) || name.startsWith('.')) continue;
          const key = name.slice(0, -SUFFIX.length);
          present.add(key);
          const info = await stat(join(dir, name)).catch(() => undefined);
          if (!info) continue;
          const version = `${info.mtimeMs}:${info.size}:${info.ino}`;
          if (seen.get(key) === version) continue;
          seen.set(key, version);
          const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
          if (text === undefined) continue;
          let record: RegistryRecord;
          try {
            record = decodeRecord(key, text);
          } catch (err) {
            onInvalid?.(key, err);
            continue;
          }
          // An owner that was SIGKILLed leaves its file behind; anyone may reap it once clearly dead.
          if (!isFresh(record, 2 * ttlMs)) {
            await unlink(join(dir, name)).catch(() => undefined);
            continue;
          }
          onChange({ op: 'put', key, record });
        }
        for (const key of [...seen.keys()]) {
          if (!present.has(key)) {
            seen.delete(key);
            onChange({ op: 'delete', key } satisfies RegistryChange);
          }
        }
      };
      const trigger = (): void => {
        if (signal.aborted) return;
        if (scanning) { again = true; return; }
        scanning = scan().finally(() => {
          scanning = undefined;
          if (again) { again = false; trigger(); }
        });
      };
      await scan();
      let watcher: FSWatcher | undefined;
      try {
        watcher = fsWatch(dir, { persistent: false }, trigger);
        watcher.on('error', () => undefined);
      } catch {
        watcher = undefined; // the timer below still catches every change
      }
      const timer = setInterval(trigger, rescanMs);
      timer.unref();
      signal.addEventListener('abort', () => {
        clearInterval(timer);
        watcher?.close();
      }, { once: true });
    },
    async close() { /* nothing held open */ },
  };
}
