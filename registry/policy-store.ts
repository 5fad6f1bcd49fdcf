// Where the mesh policy document is kept: key `current` of the KV bucket `{bucket}-policy` (NATS), or the
// file `{dir}/{bucket}-policy/current.json` (embedded, shared by the processes of one host). Stores an
// opaque, versioned text; the sidecar validates it. Watchers see each new version and keep the last one.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { MeshError } from '../sdk/errors.ts';
import type { KV } from '@nats-io/kv';
import type { NatsAccess } from './nats-access.ts';

/** One stored version of the policy. */
export interface StoredPolicy {
  version: number;
  /** The document as applied (YAML or JSON text). */
  text: string;
  /** ISO time of `policy apply`. */
  appliedAt: string;
}

const StoredPolicySchema = z.strictObject({
  version: z.number().int().min(1),
  text: z.string().max(1024 * 1024),
  appliedAt: z.string(),
});

export interface PolicyStore {
  /** Where it is kept, for messages (`nats KV agentmesh-policy`, a path). */
  readonly where: string;
  get(): Promise<StoredPolicy | undefined>;
  /** Stores `text` as the next version (compare-and-set against the version it read); returns it. */
  put(text: string): Promise<StoredPolicy>;
  /** Calls `onChange` with each version seen (the current one first), until close(). A stored value that cannot be read goes to `onError`. */
  watch(onChange: (policy: StoredPolicy) => void, onError: (err: unknown) => void): void;
  close(): Promise<void>;
}

export interface PolicyStoreOptions {
  nats?: string | string[];
  access?: NatsAccess;
  /** Embedded registry directory. */
  dir?: string;
  /** The registry bucket; the policy lives in `{bucket}-policy`. */
  bucket: string;
  name?: string;
  /** How often a watcher checks besides the push (NATS) or fs.watch (embedded); default 2 s. */
  pollMs?: number;
  /** NATS: fail instead of retrying when the server cannot be reached (commands, not sidecars). */
  once?: boolean;
}

const KEY = 'current';
const POLL_MS = 2000;

export function decodeStoredPolicy(raw: string): StoredPolicy {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new MeshError('REGISTRY_RECORD_INVALID', 'the stored policy is not JSON', { cause: err });
  }
  const parsed = StoredPolicySchema.safeParse(value);
  if (!parsed.success) throw new MeshError('REGISTRY_RECORD_INVALID', `the stored policy is malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export async function openPolicyStore(options: PolicyStoreOptions): Promise<PolicyStore> {
  return options.nats ? openNatsPolicyStore({ ...options, nats: options.nats }) : openFilePolicyStore(options);
}

async function openNatsPolicyStore(options: PolicyStoreOptions & { nats: string | string[] }): Promise<PolicyStore> {
  const [{ connect }, { openBucket }, { natsAccessOptions }] = await Promise.all([
    import('@nats-io/transport-node'), import('./nats-bucket.ts'), import('./nats-connect.ts')]);
  const bucket = `${options.bucket}-policy`;
  const access = await natsAccessOptions(options.nats, options.access);
  const nc = await connect({ ...access, name: options.name ?? 'agentmesh-policy', timeout: 5000, maxReconnectAttempts: options.once ? 0 : -1 })
    .catch((err: unknown) => { throw new MeshError('REGISTRY_UNAVAILABLE', `cannot connect to NATS (registry.nats) for the policy: ${(err as Error).message}`, { cause: err }); });
  let kv: KV;
  try {
    // No max age: a policy stays until replaced (each value carries its version).
    kv = await openBucket(nc, bucket, 0, 1, options.access?.replicas);
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err instanceof MeshError ? err : new MeshError('REGISTRY_UNAVAILABLE', `cannot open KV bucket '${bucket}': ${(err as Error).message}`, { cause: err });
  }
  let closed = false;
  const stops: (() => void)[] = [];
  const read = async (): Promise<{ policy: StoredPolicy | undefined; revision: number }> => {
    const entry = await kv.get(KEY);
    if (!entry || entry.operation !== 'PUT') return { policy: undefined, revision: entry?.revision ?? 0 };
    return { policy: decodeStoredPolicy(entry.string()), revision: entry.revision };
  };
  return {
    where: `NATS KV bucket '${bucket}'`,
    async get() { return (await read()).policy; },
    async put(text) {
      const { policy, revision } = await read();
      const next: StoredPolicy = { version: (policy?.version ?? 0) + 1, text, appliedAt: new Date().toISOString() };
      const value = JSON.stringify(next);
      try {
        if (revision === 0) await kv.create(KEY, value);
        else await kv.update(KEY, value, revision);
      } catch (err) {
        throw new MeshError('REGISTRY_UNAVAILABLE', `the policy changed while it was being applied; apply again (${(err as Error).message})`, { cause: err });
      }
      return next;
    },
    watch(onChange, onError) {
      let last = 0;
      const deliver = (raw: string) => {
        try {
          const policy = decodeStoredPolicy(raw);
          if (policy.version <= last) return;
          last = policy.version;
          onChange(policy);
        } catch (err) {
          onError(err);
        }
      };
      // The push path: a KV watcher (restarted when it ends, e.g. after NATS was away).
      void (async () => {
        while (!closed) {
          try {
            const watcher = await kv.watch({ key: KEY });
            stops.push(() => watcher.stop());
            for await (const e of watcher) if (e.operation === 'PUT') deliver(e.string());
          } catch {
            // NATS away: the registry's own diagnostics say so; the last policy stays, and the watch starts again.
          }
          if (!closed) await new Promise((resolve) => setTimeout(resolve, 500).unref());
        }
      })();
      // The safety net: a read every pollMs, so a watcher silently lost during an outage costs seconds, not forever.
      const timer = setInterval(() => {
        kv.get(KEY).then((e) => { if (e && e.operation === 'PUT') deliver(e.string()); }, () => undefined);
      }, options.pollMs ?? POLL_MS);
      timer.unref();
      stops.push(() => clearInterval(timer));
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const stop of stops) stop();
      await nc.drain().catch(() => nc.close());
    },
  };
}

async function openFilePolicyStore(options: PolicyStoreOptions): Promise<PolicyStore> {
  const dir = join(options.dir ?? '.', `${options.bucket}-policy`);
  const file = join(dir, `${KEY}.json`);
  const stops: (() => void)[] = [];
  const get = async (): Promise<StoredPolicy | undefined> => {
    let raw: string;
    try {
      raw = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return decodeStoredPolicy(raw);
  };
  return {
    where: file,
    get,
    async put(text) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const next: StoredPolicy = { version: ((await get().catch(() => undefined))?.version ?? 0) + 1, text, appliedAt: new Date().toISOString() };
      const tmp = join(dir, `.${randomUUID()}.tmp`);
      await writeFile(tmp, JSON.stringify(next), { mode: 0o600 });
      await rename(tmp, file);
      return next;
    },
    watch(onChange, onError) {
      stops.push(watchFile(file, async () => {
        const policy = await get();
        return policy && { key: policy.version, value: policy };
      }, onChange, onError, options.pollMs ?? POLL_MS));
    },
    async close() {
      for (const stop of stops.splice(0)) stop();
    },
  };
}

/**
 * Calls `onChange` when `read` yields a new key: at once, then on fs.watch events of the file's folder and
 * every `pollMs` (a stat first, so an unchanged file is not re-read). Returns the stop function.
 */
export function watchFile<T>(path: string, read: () => Promise<{ key: number | string; value: T } | undefined>,
  onChange: (value: T) => void, onError: (err: unknown) => void, pollMs: number): () => void {
  let lastKey: number | string | undefined;
  let lastStat = '';
  let running = false;
  let again = false;
  let stopped = false;
  const check = async (): Promise<void> => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = true;
    try {
      const s = await stat(path).catch(() => undefined);
      const signature = s ? `${s.ino}:${s.mtimeMs}:${s.size}` : 'none';
      if (signature !== lastStat) {
        lastStat = signature;
        const found = await read();
        if (found && found.key !== lastKey) {
          lastKey = found.key;
          onChange(found.value);
        }
      }
    } catch (err) {
      onError(err);
    } finally {
      running = false;
      if (again && !stopped) { again = false; void check(); }
    }
  };
  void check();
  let watcher: FSWatcher | undefined;
  try {
    watcher = fsWatch(join(path, '..'), { persistent: false }, () => { void check(); });
    watcher.on('error', () => { watcher?.close(); watcher = undefined; });
  } catch {
    watcher = undefined; // the folder may not exist yet: the timer sees it appear
  }
  const timer = setInterval(() => { void check(); }, pollMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    watcher?.close();
  };
}
