// The NATS JetStream KV backend: bucket max age = TTL, values validated both ways, reconnecting
// forever. The watch resumes from the last revision it saw if its consumer ever stops.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { MeshError } from '../sdk/index.ts';
import { decodeRecord, encodeRecord } from './codec.ts';
import { publish } from './diagnostics.ts';
import { recordKey } from './record.ts';
import type { RegistryBackend } from './types.ts';

export interface NatsBackendOptions {
  servers: string;
  bucket?: string;
  ttlMs: number;
  name?: string;
  /** Bound on the first connection attempt (later reconnects go on forever). */
  connectTimeoutMs?: number;
}

export async function openNatsBackend(options: NatsBackendOptions): Promise<RegistryBackend> {
  const bucket = options.bucket ?? 'agentmesh';
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.servers, name: options.name ?? 'agentmesh', maxReconnectAttempts: -1,
      reconnectTimeWait: 250, timeout: options.connectTimeoutMs ?? 5000, pingInterval: 5000,
    });
  } catch (err) {
    throw new MeshError('REGISTRY_UNAVAILABLE', `cannot connect to NATS at ${options.servers} (registry.nats): ${(err as Error).message}`, { cause: err });
  }
  let connected = true;
  const listeners: ((connected: boolean) => void)[] = [];
  const setConnected = (value: boolean): void => {
    if (value === connected) return;
    connected = value;
    publish({ type: value ? 'reconnect' : 'disconnect', backend: 'nats', server: options.servers });
    for (const l of listeners) l(value);
  };
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') setConnected(false);
      if (s.type === 'reconnect') setConnected(true);
    }
  })().catch(() => undefined);
  let kv: KV;
  try {
    kv = await new Kvm(nc).create(bucket, { history: 1, ttl: options.ttlMs });
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw new MeshError('REGISTRY_UNAVAILABLE', `cannot open KV bucket '${bucket}' on ${options.servers} (is JetStream enabled?): ${(err as Error).message}`, { cause: err });
  }

  return {
    kind: 'nats',
    connected: () => connected && !nc.isClosed(),
    onConnectionChange: (listener) => { listeners.push(listener); },
    async put(record) {
      await kv.put(recordKey(record), encodeRecord(record));
    },
    async delete(key) {
      await kv.delete(key);
    },
    async watch(onChange, { signal, onInvalid }) {
      let revision = 0;
      let markSynced: () => void = () => undefined;
      const synced = new Promise<void>((resolve) => { markSynced = resolve; });
      const initial = (await kv.status()).values;
      if (initial === 0) markSynced();
      const run = async (): Promise<void> => {
        const watcher = await kv.watch({ key: '>', ...(revision > 0 ? { resumeFromRevision: revision + 1 } : {}) });
        const stop = () => watcher.stop();
        signal.addEventListener('abort', stop, { once: true });
        try {
          for await (const e of watcher) {
            revision = Math.max(revision, e.revision);
            if (e.operation === 'PUT') {
              try {
                onChange({ op: 'put', key: e.key, record: decodeRecord(e.key, e.string()) });
              } catch (err) {
                onInvalid?.(e.key, err);
              }
            } else {
              onChange({ op: 'delete', key: e.key });
            }
            if (e.isUpdate || e.delta === 0) markSynced();
          }
        } finally {
          signal.removeEventListener('abort', stop);
        }
      };
      void (async () => {
        while (!signal.aborted && !nc.isClosed()) {
          try {
            await run();
          } catch (err) {
            publish({ type: 'watch-restart', backend: 'nats', error: (err as Error).message });
          }
          if (signal.aborted || nc.isClosed()) break;
          await new Promise((resolve) => setTimeout(resolve, 500).unref());
        }
      })();
      await Promise.race([synced, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    },
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
