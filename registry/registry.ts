// The registry facade a sidecar opens: picks the backend (NATS when configured, embedded otherwise),
// feeds the in-memory view from its watch, and owns this process's announcements.
import { MeshError } from '../sdk/index.ts';
import { announce, type AnnouncedRecord, type Announcement } from './announcer.ts';
import { publish } from './diagnostics.ts';
import { openEmbeddedBackend } from './embedded-backend.ts';
import { openNatsBackend } from './nats-backend.ts';
import type { RegistryBackend, RegistryView } from './types.ts';
import { RecordView } from './view.ts';

export interface RegistryOptions {
  /** NATS server URL(s); the embedded backend is used when absent. */
  nats?: string;
  bucket?: string;
  ttlMs: number;
  /** Embedded backend: the shared directory. */
  dir?: string;
  /** Connection name shown by the NATS server. */
  name?: string;
  onInvalid?: (key: string, err: unknown) => void;
}

export interface Registry extends RegistryView, AsyncDisposable {
  readonly backend: 'nats' | 'embedded';
  announce(record: AnnouncedRecord): Promise<Announcement>;
  /** True once the initial snapshot is loaded. */
  synced(): boolean;
  /** True while the backend is reachable. */
  connected(): boolean;
  /** Withdraws announcements, stops the watch, closes the backend. Idempotent. */
  close(): Promise<void>;
  readonly closed: Promise<void>;
}

export async function openRegistry(options: RegistryOptions): Promise<Registry> {
  let backend: RegistryBackend;
  if (options.nats) {
    backend = await openNatsBackend({ servers: options.nats, ttlMs: options.ttlMs, ...(options.bucket ? { bucket: options.bucket } : {}), ...(options.name ? { name: options.name } : {}) });
  } else if (options.dir) {
    backend = await openEmbeddedBackend({ dir: options.dir, ttlMs: options.ttlMs });
  } else {
    throw new MeshError('CONFIG_INVALID', 'registry: set registry.nats for NATS, or registry.dir for the embedded registry');
  }
  const view = new RecordView(options.ttlMs);
  backend.onConnectionChange((connected) => view.setConnected(connected));
  const stop = new AbortController();
  const announcements = new Set<Announcement>();
  const onInvalid = (key: string, err: unknown): void => {
    publish({ type: 'invalid', key, error: err instanceof Error ? err.message : String(err) });
    options.onInvalid?.(key, err);
  };
  let synced = false;
  try {
    await backend.watch((change) => view.apply(change), { signal: stop.signal, onInvalid });
    synced = true;
  } catch (err) {
    stop.abort();
    await backend.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => { resolveClosed = resolve; });
  const close = () => (closing ??= (async () => {
    try {
      await Promise.allSettled([...announcements].map((a) => a.withdraw()));
    } finally {
      stop.abort();
      view.close();
      await backend.close().catch(() => undefined);
      resolveClosed();
    }
  })());
  return {
    backend: backend.kind,
    agents: (q) => view.agents(q),
    agentInstances: (n) => view.agentInstances(n),
    mcpServers: () => view.mcpServers(),
    mcpInstances: (s) => view.mcpInstances(s),
    onChange: (l) => view.onChange(l),
    async announce(record) {
      const a = await announce(backend, record, {
        ttlMs: options.ttlMs,
        onError: (err) => publish({ type: 'watch-restart', backend: backend.kind, error: `heartbeat failed: ${(err as Error).message}` }),
      });
      announcements.add(a);
      return {
        key: a.key,
        update: (patch) => a.update(patch),
        withdraw: async () => { announcements.delete(a); await a.withdraw(); },
      };
    },
    synced: () => synced,
    connected: () => backend.connected(),
    close,
    closed,
    [Symbol.asyncDispose]: close,
  };
}
