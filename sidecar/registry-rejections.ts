// Registry values the registry refused (its 'rejected' diagnostics events): counted in
// agentmesh_registry_rejected_total{reason} and logged at most once a minute per key and reason,
// since a forged record is refused again at each of its heartbeats.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { REGISTRY_CHANNEL, type RegistryEvent } from '../registry/index.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

const LOG_EVERY_MS = 60_000;
const MAX_TRACKED = 4096;

export function watchRegistryRejections(metrics: Metrics, log: Logger): () => void {
  /** key + reason → when it was last logged and how many were not logged since. */
  const logged = new Map<string, { at: number; suppressed: number }>();
  const onEvent = (message: unknown): void => {
    const event = message as RegistryEvent;
    if (event.type !== 'rejected') return;
    metrics.registryRejected(event.reason);
    const id = `${event.reason} ${event.key}`;
    const now = Date.now();
    const seen = logged.get(id);
    if (seen && now - seen.at < LOG_EVERY_MS) {
      seen.suppressed++;
      return;
    }
    if (logged.size >= MAX_TRACKED) logged.clear();
    logged.set(id, { at: now, suppressed: 0 });
    const level = event.reason === 'mcp_name_conflict' ? 'error' : 'warn';
    log[level]({ key: event.key, reason: event.reason, error: event.error, ...(seen?.suppressed ? { repeatedSinceLastLog: seen.suppressed } : {}) },
      'ignored a registry record');
  };
  subscribe(REGISTRY_CHANNEL, onEvent);
  return () => { unsubscribe(REGISTRY_CHANNEL, onEvent); };
}
