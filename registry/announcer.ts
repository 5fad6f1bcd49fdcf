// Announces this process's own records: the first put is awaited, then a heartbeat re-puts each
// record every ttl/3 with a fresh heartbeatAt; withdraw() deletes it (graceful shutdown).
import { recordKey, type RegistryRecord } from './record.ts';
import type { RegistryBackend } from './types.ts';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type AnnouncedRecord = DistributiveOmit<RegistryRecord, 'startedAt' | 'heartbeatAt'>;
export type AnnouncementPatch = Partial<Pick<RegistryRecord, 'labels'>> & { card?: Record<string, unknown> & { name: string }; tools?: Extract<RegistryRecord, { kind: 'mcp' }>['tools'] };

export interface Announcement {
  readonly key: string;
  update(patch: AnnouncementPatch): Promise<void>;
  withdraw(): Promise<void>;
}

export async function announce(
  backend: RegistryBackend,
  record: AnnouncedRecord,
  options: { ttlMs: number; onError: (err: unknown) => void },
): Promise<Announcement> {
  const startedAt = new Date().toISOString();
  let current = { ...record, startedAt, heartbeatAt: startedAt } as RegistryRecord;
  let withdrawn = false;
  const key = recordKey(current);
  const put = async (): Promise<void> => {
    if (withdrawn) return;
    current = { ...current, heartbeatAt: new Date().toISOString() };
    await backend.put(current);
  };
  await put();
  // Back from an outage: re-put at once rather than waiting for the next heartbeat.
  backend.onConnectionChange((connected) => { if (connected) put().catch(options.onError); });
  const timer = setInterval(() => { put().catch(options.onError); }, Math.max(100, Math.floor(options.ttlMs / 3)));
  timer.unref();
  return {
    key,
    async update(patch) {
      current = { ...current, ...patch } as RegistryRecord;
      await put();
    },
    async withdraw() {
      if (withdrawn) return;
      withdrawn = true;
      clearInterval(timer);
      await backend.delete(key);
    },
  };
}
