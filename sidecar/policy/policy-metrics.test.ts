import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Registry } from 'prom-client';
import { createPolicyMetrics, type DecisionOutcome } from './policy-metrics.ts';
import type { Direction } from '../request-context.ts';

/** The series as prom-client's own metrics count them (what policy-metrics.ts did before it counted in plain numbers). */
function reference() {
  const registry = new Registry();
  const version = new Gauge({ name: 'agentmesh_policy_version', help: 'Version of the mesh policy in force (0: none, every call allowed)', registers: [registry] });
  const decisions = new Counter({ name: 'agentmesh_policy_decisions_total', help: 'Policy decisions by direction and outcome (audit_deny: denied in audit mode, let through)', labelNames: ['direction', 'decision'] as const, registers: [registry] });
  const loadErrors = new Counter({ name: 'agentmesh_policy_load_errors_total', help: 'Policy versions that could not be read or validated (the last good one stays)', registers: [registry] });
  version.set(0);
  return {
    registry,
    version: (value: number) => version.set(value),
    decision: (direction: Direction, outcome: DecisionOutcome) => decisions.labels(direction, outcome).inc(),
    loadError: () => loadErrors.inc(),
  };
}

test('the policy series print as prom-client\'s own counters would, line for line, across scrapes', async () => {
  const ours = new Registry();
  const metrics = createPolicyMetrics(ours);
  const theirs = reference();
  const both = { decision: (d: Direction, o: DecisionOutcome) => { metrics.decision(d, o); theirs.decision(d, o); } };
  const same = async (when: string) => {
    assert.equal(await ours.metrics(), await theirs.registry.metrics(), when);
    const values = async (registry: Registry) => (await registry.getSingleMetric('agentmesh_policy_decisions_total')?.get())?.values;
    assert.deepEqual(await values(ours), await values(theirs.registry), `get() (the dashboard reads it), ${when}`);
  };
  await same('before any decision');
  // Series first counted in an order unlike the declaration order: prom-client prints them in the order it first saw them.
  both.decision('inbound', 'deny');
  both.decision('outbound', 'audit_deny');
  both.decision('inbound', 'deny');
  both.decision('outbound', 'allow');
  await same('first scrape');
  await same('a second scrape adds nothing');
  for (let i = 0; i < 5; i++) both.decision('outbound', 'allow');
  both.decision('inbound', 'allow');
  both.decision('inbound', 'audit_deny');
  metrics.version(3);
  theirs.version(3);
  metrics.loadError();
  theirs.loadError();
  await same('after more decisions, a version and a load error');
  const text = await ours.metrics();
  assert.match(text, /^agentmesh_policy_decisions_total\{direction="outbound",decision="allow"\} 6$/m);
  assert.match(text, /^agentmesh_policy_decisions_total\{direction="inbound",decision="deny"\} 2$/m);
  assert.match(text, /^agentmesh_policy_version 3$/m);
});
