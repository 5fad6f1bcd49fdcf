// The policy's Prometheus series, registered in the sidecar's metrics registry: the version in force,
// decisions by direction and outcome (allow, deny, audit_deny: denied but let through), and load errors.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Direction } from '../request-context.ts';

export type DecisionOutcome = 'allow' | 'deny' | 'audit_deny';

export interface PolicyMetrics {
  version(value: number): void;
  decision(direction: Direction, outcome: DecisionOutcome): void;
  loadError(): void;
}

export function createPolicyMetrics(registry: Registry): PolicyMetrics {
  const version = new Gauge({ name: 'agentmesh_policy_version', help: 'Version of the mesh policy in force (0: none, every call allowed)', registers: [registry] });
  const decisions = new Counter({ name: 'agentmesh_policy_decisions_total', help: 'Policy decisions by direction and outcome (audit_deny: denied in audit mode, let through)', labelNames: ['direction', 'decision'] as const, registers: [registry] });
  const loadErrors = new Counter({ name: 'agentmesh_policy_load_errors_total', help: 'Policy versions that could not be read or validated (the last good one stays)', registers: [registry] });
  // Bound once: prom-client hashes labels on every inc() otherwise.
  const children = new Map<string, { inc(): void }>();
  for (const d of ['outbound', 'inbound'] as const) for (const o of ['allow', 'deny', 'audit_deny'] as const) children.set(`${d} ${o}`, decisions.labels(d, o));
  version.set(0);
  return {
    version: (value) => version.set(value),
    decision: (direction, outcome) => children.get(`${direction} ${outcome}`)?.inc(),
    loadError: () => loadErrors.inc(),
  };
}
