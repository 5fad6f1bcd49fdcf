// A small key/value store with a TTL for sidecar state that must outlive a sidecar restart (task →
// instance affinity): a NATS JetStream KV bucket of its own, or files in the embedded registry's
// directory. Values are short strings; keys are made KV-safe here.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { NatsAccess } from './nats-access.ts';

export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  /** Stores `value` only if `key` holds nothing live; true when this call created it. */
  create(key: string, value: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * NATS KV keys allow [-/_=.a-zA-Z0-9]; anything else is base64url-encoded behind a `=` prefix (a key
 * NATS accepts; `~`, used before, is refused by NATS). A key that itself starts with `=` is encoded too.
 */
export function safeKey(key: string): string {
  return /^[-_.a-zA-Z0-9/][-_=.a-zA-Z0-9/]{0,199}$/.test(key) && !key.startsWith('.') && !key.endsWith('.') ? key : `=${Buffer.from(key).toString('base64url')}`;
}

export async function openKeyValueStore(options: { nats?: string | string[]; access?: NatsAccess; dir?: string; bucket: string; ttlMs: number; name?: string }): Promise<KeyValueStore> {
  if (options.nats) {
    // The NATS client loads only when it is used: an embedded registry never needs it.
    const [{ connect }, { openBucket }, { natsAccessOptions }] = await Promise.all([
      import('@nats-io/transport-node'), import('./nats-bucket.ts'), import('./nats-connect.ts')]);
    const access = await natsAccessOptions(options.nats, options.access);
    const nc: NatsConnection = await connect({ ...access, name: options.name ?? 'agentmesh-kv', maxReconnectAttempts: -1, timeout: 5000 });
    let kv: KV;
    try {
      kv = await openBucket(nc, options.bucket, options.ttlMs, 1, options.access?.replicas);
    } catch (err) {
      await nc.close();
      throw err;
    }
    return {
      async get(key) {
        const entry = await kv.get(safeKey(key));
        return entry && entry.operation === 'PUT' ? entry.string() : undefined;
      },
      async put(key, value) { await kv.put(safeKey(key), value); },
      async create(key, value) {
        try {
          await kv.create(safeKey(key), value);
          return true;
        } catch (err) {
          // Taken: the key holds a live value. Anything else (NATS down, no permission) is an error.
          if ((await kv.get(safeKey(key)).catch(() => null))?.operation === 'PUT') return false;
          throw err;
        }
      },
      async close() { await nc.drain().catch(() => nc.close()); },
    };
  }
  const dir = join(options.dir ?? '.', options.bucket);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = (key: string) => join(dir, `${safeKey(key).replace(/\//g, '_')}.json`);
  const store: KeyValueStore = {
    async get(key) {
      try {
        const { value, at } = JSON.parse(await readFile(file(key), 'utf8')) as { value: string; at: number };
        return Date.now() - at < options.ttlMs ? value : undefined;
      } catch {
        return undefined;
      }
    },
    async put(key, value) {
      const tmp = join(dir, `.${randomUUID()}.tmp`);
      await writeFile(tmp, JSON.stringify({ value, at: Date.now() }));
      await rename(tmp, file(key));
    },
    async create(key, value) {
      const record = JSON.stringify({ value, at: Date.now() });
      try {
        await writeFile(file(key), record, { flag: 'wx' });
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await store.get(key) !== undefined) return false;
        // An expired record: replaced (one host, so a rare race between two creators is accepted).
        await store.put(key, value);
        return true;
      }
    },
    async close() { /* nothing held open */ },
  };
  return store;
}
