// The OpenTelemetry side of tracing, imported only when telemetry.enabled is true: a tracer provider of
// its own (nothing global), W3C trace context in and out, a client span per outbound call and a server
// span per inbound call with A2A/MCP attributes, batched to an OTLP/HTTP (JSON) endpoint.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { CallEvent } from './call-event.ts';
import type { CallTrace, CallTracer } from './call-trace.ts';

export interface OtelTracerOptions {
  /** The OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces. */
  endpoint: string;
  /** 0–1: the share of new traces recorded; a caller's sampled flag is followed. */
  sampling: number;
  serviceName: string;
  /** Resource attributes naming this sidecar. */
  resource: Record<string, string>;
}

type Carrier = Readonly<Record<string, string | string[] | undefined>>;
const getter: TextMapGetter<Carrier> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};
const setter: TextMapSetter<Record<string, string>> = { set: (carrier, key, value) => { carrier[key] = value; } };

export function createOtelTracer(options: OtelTracerOptions): CallTracer {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, ...options.resource }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampling) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: options.endpoint }), { scheduledDelayMillis: 1000 })],
  });
  const tracer = provider.getTracer('agentmesh');
  const propagator = new W3CTraceContextPropagator();
  let closing: Promise<void> | undefined;
  return {
    begin(ctx, headers) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, getter);
      const span = tracer.startSpan(ctx.direction, { kind: ctx.direction === 'outbound' ? SpanKind.CLIENT : SpanKind.SERVER }, parent);
      const out: Record<string, string> = {};
      propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, setter);
      const handle: CallTrace = {
        traceId: span.spanContext().traceId,
        headers: Object.freeze(out),
        end(event: CallEvent) {
          if (!span.isRecording()) return;
          span.updateName(event.target ? `${event.method} ${event.target}` : event.method);
          span.setAttributes(attributesOf(event));
          if (event.status === 0 || event.status >= 500 || event.error !== undefined) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: event.error ?? (event.status === 0 ? 'cut' : `HTTP ${event.status}`) });
          }
          span.end();
        },
      };
      return handle;
    },
    close: () => (closing ??= provider.shutdown().catch(() => undefined)),
  };
}

function attributesOf(event: CallEvent): Attributes {
  const attributes: Attributes = {
    'rpc.system': event.target?.startsWith('mcp/') === true || event.method.startsWith('MCP') ? 'mcp' : 'a2a',
    'rpc.method': event.method,
    'agentmesh.request_id': event.requestId,
    'agentmesh.direction': event.direction,
    'agentmesh.retries': event.retries,
    'agentmesh.hops': event.hops,
    'http.response.status_code': event.status,
  };
  if (event.target !== undefined) attributes['agentmesh.target'] = event.target;
  if (event.caller !== undefined) attributes['agentmesh.caller'] = event.caller;
  if (event.taskId !== undefined) attributes['a2a.task_id'] = event.taskId;
  if (event.contextId !== undefined) attributes['a2a.context_id'] = event.contextId;
  if (event.tool !== undefined) attributes['mcp.tool.name'] = event.tool;
  if (event.decision !== undefined) attributes['agentmesh.policy.decision'] = event.decision;
  if (event.error !== undefined) attributes['error.type'] = event.error;
  return attributes;
}
