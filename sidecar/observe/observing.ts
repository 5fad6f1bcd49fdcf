// One sidecar's observation parts, started and stopped together: the tracer (telemetry.enabled), the
// access log (log.access), the tap, and the call observer the listeners call.
import type { SidecarConfig } from '../config.ts';
import { redactUrl } from '../rotation.ts';
import type { Logger } from '../log.ts';
import { createCallObserver, type CallObserver } from './call-observer.ts';
import type { TracerStats } from './call-trace.ts';
import { Tap } from './tap.ts';
import { startTracing } from './tracing.ts';

export interface Observing {
  readonly observer: CallObserver;
  readonly tap: Tap;
  /** The tracer's counters (queued, exported, dropped spans); undefined while tracing is off. */
  tracing(): TracerStats | undefined;
  /** Ends tap streams and flushes buffered spans. Idempotent. */
  close(): Promise<void>;
}

export async function startObserving(config: SidecarConfig, log: Logger, self: { instance: string; identity: string }): Promise<Observing> {
  const tracer = await startTracing(config, { 'service.instance.id': self.instance, 'agentmesh.identity': self.identity }, log);
  if (tracer) log.info({ endpoint: redactUrl(config.telemetry.endpoint), sampling: config.telemetry.sampling }, 'tracing on');
  const tap = new Tap();
  let closing: Promise<void> | undefined;
  return {
    observer: createCallObserver({ tracer, accessLog: config.log.access, log, tap }),
    tap,
    tracing: () => tracer?.stats(),
    close: () => (closing ??= (async () => {
      tap.close();
      await tracer?.close();
    })()),
  };
}
