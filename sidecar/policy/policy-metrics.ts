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

/** One decisions series: its labels as prom-client keeps them and the decisions not yet handed to it. */
interface DecisionSeries {
  readonly labels: { direction: Direction; decision: DecisionOutcome };
  pending: number;
}

export function createPolicyMetrics(registry: Registry): PolicyMetrics {
  // Decisions are counted in plain numbers on the request path (a check on each side of every call) and
  // handed to prom-client when /metrics is read (its collect hook), as metrics.ts does for requests:
  // prom-client hashes and validates the labels on every inc(), bound child or not.
  const series = {
    outbound: { allow: decisionSeries('outbound', 'allow'), deny: decisionSeries('outbound', 'deny'), audit_deny: decisionSeries('outbound', 'audit_deny') },
    inbound: { allow: decisionSeries('inbound', 'allow'), deny: decisionSeries('inbound', 'deny'), audit_deny: decisionSeries('inbound', 'audit_deny') },
  } satisfies Record<Direction, Record<DecisionOutcome, DecisionSeries>>;
  /** Series counted since the last scrape, in the order first counted (prom-client prints series in the order it first saw them). */
  const dirty = new Set<DecisionSeries>();
  const flush = (): void => {
    for (const s of dirty) {
      decisions.inc(s.labels, s.pending);
      s.pending = 0;
    }
    dirty.clear();
  };
  const version = new Gauge({ name: 'agentmesh_policy_version', help: 'Version of the mesh policy in force (0: none, every call allowed)', registers: [registry] });
  const decisions = new Counter({ name: 'agentmesh_policy_decisions_total', help: 'Policy decisions by direction and outcome (audit_deny: denied in audit mode, let through)', labelNames: ['direction', 'decision'] as const, registers: [registry], collect: flush });
  const loadErrors = new Counter({ name: 'agentmesh_policy_load_errors_total', help: 'Policy versions that could not be read or validated (the last good one stays)', registers: [registry] });
  version.set(0);
  return {
    version: (value) => version.set(value),
    decision: (direction, outcome) => {
      const s = series[direction][outcome];
      s.pending++;
      dirty.add(s);
    },
    loadError: () => loadErrors.inc(),
  };
}

function decisionSeries(direction: Direction, decision: DecisionOutcome): DecisionSeries {
  return { labels: { direction, decision }, pending: 0 };
}
