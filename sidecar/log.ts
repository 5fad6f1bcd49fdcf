// The sidecar's structured logger (pino, JSON lines on stdout). Only the sidecar logs; sdk/ and
// registry/ publish diagnostics_channel events, which are bridged here.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { pino, type Logger } from 'pino';
import { REGISTRY_CHANNEL, type RegistryEvent } from '../registry/index.ts';
import { FailureLog } from './log-once.ts';

export type { Logger };

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}

/**
 * Logs registry diagnostics (invalid records, NATS disconnects and reconnects, failed heartbeats)
 * through the sidecar's logger; a heartbeat that keeps failing is logged once per outage with a count.
 * `own` keeps another sidecar's events out when one process runs several: its NATS connection name
 * and its instance (the last segment of its record keys). Returns the unsubscribe function.
 */
export function bridgeDiagnostics(log: Logger, own: { connection: string; instance: string }): () => void {
  const heartbeats = new Map<string, FailureLog>();
  const keySuffix = `.${own.instance}`;
  const onMessage = (message: unknown): void => {
    const event = message as RegistryEvent;
    if ((event.type === 'disconnect' || event.type === 'reconnect' || event.type === 'jetstream-unavailable' || event.type === 'jetstream-available') && event.connection !== own.connection) return;
    if ((event.type === 'heartbeat-failed' || event.type === 'heartbeat-recovered') && !event.key.endsWith(keySuffix)) return;
    switch (event.type) {
      case 'disconnect':
        log.warn({ registry: event.backend, server: event.server }, 'registry: lost the NATS connection; routing from the cached view while it reconnects');
        return;
      case 'reconnect':
        log.info({ registry: event.backend, server: event.server }, 'registry: NATS connection is back');
        return;
      case 'jetstream-unavailable':
        log.warn({ registry: event.backend, error: event.error }, 'registry: JetStream does not answer (no quorum?); registry writes fail, routing from the cached view');
        return;
      case 'jetstream-available':
        log.info({ registry: event.backend }, 'registry: JetStream answers again');
        return;
      case 'heartbeat-failed': {
        let failures = heartbeats.get(event.key);
        if (!failures) heartbeats.set(event.key, failures = new FailureLog(log.child({ key: event.key }), { what: 'registry heartbeat' }));
        failures.failure(event.error);
        return;
      }
      case 'heartbeat-recovered':
        heartbeats.get(event.key)?.success();
        heartbeats.delete(event.key);
        return;
      case 'rejected':
        return; // counted and logged, at most once a minute per key and reason, by registry-rejections.ts
      case 'watch-restart':
        log.info({ registry: event.backend, reason: event.reason }, 'registry watch restarted');
        return;
      case 'reaped':
        log.debug({ registry: event.backend, key: event.key, reason: event.reason }, 'registry: removed a stale file');
        return;
      default:
        event satisfies never;
    }
  };
  subscribe(REGISTRY_CHANNEL, onMessage);
  return () => { unsubscribe(REGISTRY_CHANNEL, onMessage); };
}
