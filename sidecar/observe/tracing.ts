// Starts tracing when telemetry.enabled is true, loading OpenTelemetry only then (off costs an
// `undefined` check per call). The exporter posts OTLP/HTTP JSON to telemetry.endpoint.
import type { SidecarConfig } from '../config.ts';
import type { CallTracer } from './call-trace.ts';

export async function startTracing(config: SidecarConfig, resource: Record<string, string>): Promise<CallTracer | undefined> {
  const telemetry = config.telemetry;
  if (!telemetry.enabled) return undefined;
  const { createOtelTracer } = await import('./otel-tracer.ts');
  return createOtelTracer({ endpoint: telemetry.endpoint, sampling: telemetry.sampling, serviceName: telemetry.serviceName, resource });
}
