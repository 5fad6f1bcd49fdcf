// Starts tracing when telemetry.enabled is true, loading the tracer only then (off costs an `undefined`
// check per call). The tracer exports OTLP/HTTP JSON to telemetry.endpoint.
import type { SidecarConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { CallTracer } from './call-trace.ts';

export async function startTracing(config: SidecarConfig, resource: Record<string, string>, log: Logger): Promise<CallTracer | undefined> {
  const telemetry = config.telemetry;
  if (!telemetry.enabled) return undefined;
  const { createTracer } = await import('./tracer.ts');
  return createTracer({ endpoint: telemetry.endpoint, sampling: telemetry.sampling, serviceName: telemetry.serviceName, resource, log });
}
