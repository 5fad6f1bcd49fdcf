// The embedded single-host backend: one JSON file per key ({dir}/{key}.json) in a directory every
// process on the host shares. Writes are atomic (temp file + rename), deletes unlink; watchers rescan
// on fs.watch events and on a short unref'd timer. No server, no lock files, no process of its own.
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { MeshError } from '../sdk/errors.ts';
import { throwIfAborted } from './abort.ts';
import { errorMessage } from './diagnostics.ts';
import { DirectoryWatch, RECORD_SUFFIX, TEMP_SUFFIX } from './directory-watch.ts';
import { recordCodec, type RecordCodec } from './record-codec.ts';
import { recordKey } from './record.ts';
import type { RegistryBackend } from './types.ts';

export interface EmbeddedBackendOptions {
  /** The directory the processes share (created 0700 if missing). */
  dir: string;
  /** Records are fresh for ttlMs; files stale beyond 2×ttlMs (owner killed) are removed by any process. */
  ttlMs: number;
  /** The safety-net rescan period; default ttl/10 within [50 ms, 250 ms]. */
  rescanMs?: number;
  signal?: AbortSignal;
  /** How values are written and read (signed and verified in a sidecar); plain validated JSON by default. */
  codec?: RecordCodec;
}

export async function openEmbeddedBackend(options: EmbeddedBackendOptions): Promise<RegistryBackend> {
  const { dir, ttlMs } = options;
  const rescanMs = options.rescanMs ?? Math.min(250, Math.max(50, Math.floor(ttlMs / 10)));
  throwIfAborted(options.signal, 'opening the embedded registry');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new MeshError('REGISTRY_UNAVAILABLE', `cannot use the registry directory ${dir} (registry.dir): ${errorMessage(err)}`, { cause: err });
  }
  const pathOf = (key: string): string => join(dir, `${key}${RECORD_SUFFIX}`);
  const watches = new Set<DirectoryWatch>();
  const codec = options.codec ?? recordCodec();

  return {
    kind: 'embedded',
    connected: () => true,
    onConnectionChange: () => () => undefined,
    async put(record, { signal } = {}) {
      throwIfAborted(signal, 'registry put');
      const key = recordKey(record);
      const tmp = join(dir, `.${key}.${randomUUID()}${TEMP_SUFFIX}`);
      await writeFile(tmp, await codec.encode(record), { flag: 'wx' });
      try {
        await rename(tmp, pathOf(key));
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
    },
    async delete(key, { signal } = {}) {
      throwIfAborted(signal, 'registry delete');
      await unlink(pathOf(key)).catch(ignoreMissing);
    },
    async watch(onChange, { signal, onInvalid }) {
      throwIfAborted(signal, 'registry watch');
      const watch = new DirectoryWatch(dir, ttlMs, codec.decode, onChange, onInvalid);
      await watch.start(rescanMs);
      watches.add(watch);
      signal.addEventListener('abort', () => { watches.delete(watch); watch.stop(); }, { once: true });
      if (signal.aborted) watch.stop();
    },
    async close() {
      for (const watch of watches) watch.stop();
      watches.clear();
    },
  };
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
