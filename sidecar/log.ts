// The sidecar's structured logger (pino, JSON lines on stdout). Only the sidecar logs; sdk/ and
// registry/ publish diagnostics_channel events, which are bridged here.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Logs registry diagnostics (invalid records, disconnects) through the sidecar's logger. */
export function bridgeDiagnostics(log: Logger): () => void {
  const channel = 'agentmesh:registry';
  const onMessage = (message: unknown): void => {
    const event = (message ?? {}) as { type?: string };
    const level = event.type === 'invalid' || event.type === 'disconnect' ? 'warn' : 'info';
    log[level]({ registry: message }, `registry ${event.type ?? 'event'}`);
  };
  subscribe(channel, onMessage);
  return () => { unsubscribe(channel, onMessage); };
}
