// Prometheus series for overload protection, read from the limiter's snapshot when /metrics is scraped
// (nothing is counted on the request path): the adaptive limit, calls in flight, queued, open streams,
// rejections by reason, and the calling side's pending calls per target.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AdmissionSnapshot } from './admission.ts';
import type { PendingLimit } from './pending-limit.ts';

export interface OverloadSources {
  /** The local agent's name and its admission state, once it has one. */
  admission: () => { agent: string; snapshot: AdmissionSnapshot } | undefined;
  pending: PendingLimit;
}

export function registerOverloadMetrics(registry: Registry, sources: OverloadSources): void {
  const agentGauge = (name: string, help: string, read: (s: AdmissionSnapshot) => number) => new Gauge({
    name, help, labelNames: ['agent'] as const, registers: [registry],
    collect() {
      this.reset();
      const a = sources.admission();
      if (a) this.set({ agent: a.agent }, read(a.snapshot));
    },
  });
  agentGauge('agentmesh_overload_limit', 'The adaptive concurrency limit of the local agent', (s) => s.limit);
  agentGauge('agentmesh_overload_inflight', 'Calls in flight to the local agent (streams not included)', (s) => s.inflight);
  agentGauge('agentmesh_overload_queued', 'Calls waiting for the local agent', (s) => s.queued);
  agentGauge('agentmesh_overload_streams', 'Open streams to the local agent', (s) => s.streams);
  agentGauge('agentmesh_overload_latency_seconds', 'The local agent\'s smoothed latency as the limiter sees it', (s) => s.rttMs / 1000);
  const seen = new Map<string, number>();
  new Counter({
    name: 'agentmesh_overload_rejections_total', help: 'Calls refused by overload protection, by side, target and reason',
    labelNames: ['direction', 'target', 'reason'] as const, registers: [registry],
    collect() {
      const add = (direction: string, target: string, reason: string, total: number) => {
        const key = `${direction} ${target} ${reason}`;
        const delta = total - (seen.get(key) ?? 0);
        if (delta > 0) this.inc({ direction, target, reason }, delta);
        seen.set(key, total);
      };
      const a = sources.admission();
      if (a) for (const [reason, n] of Object.entries(a.snapshot.rejected)) if (n > 0) add('inbound', a.agent, reason, n);
      for (const [target, n] of Object.entries(sources.pending.snapshot().rejected)) add('outbound', target, 'pending', n);
    },
  });
  new Gauge({
    name: 'agentmesh_overload_pending', help: 'Calls pending at this sidecar per target (limits.pendingPerTarget)',
    labelNames: ['target'] as const, registers: [registry],
    collect() {
      this.reset();
      for (const [target, n] of Object.entries(sources.pending.snapshot().pending)) this.set({ target }, n);
    },
  });
}
