// EdgeRates: edges per caller → target from the sidecar's own counters, with rates between samples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from '../metrics.ts';
import { EdgeRates } from './edges.ts';

test('outbound edges start at this agent, inbound at the verified caller; errors, rate and latency per edge', async () => {
  const metrics = createMetrics();
  const rates = new EdgeRates(metrics.registry, () => 'planner');
  assert.deepEqual(await rates.edges(1_000), []);
  metrics.observe('outbound', 'agent/echo', 'SendMessage', '-', 200, 0.004);
  metrics.observe('outbound', 'agent/echo', 'GetTask', '-', 503, 0.02);
  metrics.observe('inbound', 'agent/planner', 'SendMessage', 'spiffe://td/agent/boss', 200, 0.001);
  const first = await rates.edges(2_000);
  const out = first.find((e) => e.direction === 'outbound');
  assert.deepEqual({ ...out }, { direction: 'outbound', from: 'planner', to: 'agent/echo', requests: 2, errors: 1, rate: 2 / 1, meanMs: 12, p95Ms: 25 });
  const inbound = first.find((e) => e.direction === 'inbound');
  assert.equal(inbound?.from, 'spiffe://td/agent/boss');
  assert.equal(inbound?.requests, 1);
  for (let i = 0; i < 4; i++) metrics.observe('outbound', 'agent/echo', 'SendMessage', '-', 200, 0.004);
  const later = await rates.edges(4_000);
  // Against the oldest sample of the last minute (t=1s: no calls): 6 calls in 3 s.
  assert.equal(later.find((e) => e.direction === 'outbound')?.rate, 2);
});

test('a rate needs a sample at least a second old', async () => {
  const metrics = createMetrics();
  const rates = new EdgeRates(metrics.registry, () => 'me');
  metrics.observe('outbound', 'mcp/text', 'MCP tools/call', '-', 200, 0.002);
  assert.equal((await rates.edges(10_000))[0]?.rate, null);
  assert.equal((await rates.edges(10_500))[0]?.rate, null);
  assert.equal((await rates.edges(11_000))[0]?.rate, 0);
});
