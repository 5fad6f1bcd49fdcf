// The reaper: when instances leave the registry view, their pools, breakers, budgets and session owners go,
// once per burst of changes; what stays live is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordView, type RegistryRecord } from '../registry/index.ts';
import type { Identity } from './identity/index.ts';
import { PeerPools } from './transport/peers.ts';
import { startReaper } from './reaper.ts';
import { createResilienceState } from './resilience/state.ts';

const identity: Identity = { id: 'spiffe://t/agent/me', trustDomain: 't', certPem: '', keyPem: '', bundlePem: '', notAfter: new Date(Date.now() + 3_600_000) };
const breaker = { window: 10_000, volumeThreshold: 5, errorThresholdPercentage: 50, consecutiveFailures: 5, resetTimeout: 1000, maxResetTimeout: 30_000 };
const retry = { maxAttempts: 3, backoff: 25, maxBackoff: 1000, budgetRatio: 0.2, budgetPerSecond: 10 };

function agent(name: string, instance: string, port: number): RegistryRecord {
  const now = new Date().toISOString();
  return {
    kind: 'agent', name, instance, identity: `spiffe://t/agent/${name}`, endpoint: `https://127.0.0.1:${port}`,
    labels: {}, card: { name }, startedAt: now, heartbeatAt: now,
  };
}

test('state of instances and targets that left the registry is dropped after one debounced pass', async () => {
  const view = new RecordView({ ttlMs: 60_000 });
  const records = [agent('a', 'a1', 1001), agent('a', 'a2', 1002), agent('b', 'b1', 1003)];
  for (const r of records) view.apply({ op: 'put', key: `agents.${r.name}.${r.instance}`, record: r });
  const peers = new PeerPools(identity);
  const forgotten: string[] = [];
  const resilience = createResilienceState({ retry: () => retry, breaker: () => breaker }, {
    onRetry: () => undefined, onBreaker: () => undefined, onForget: (target, instance) => forgotten.push(`${target} ${instance}`),
  });
  for (const r of records) {
    peers.get(r.endpoint, r.identity);
    resilience.balancer(`agent/${r.name}`, r.name).pick([r], new Set());
    resilience.budget(`agent/${r.name}`, r.name);
  }
  const retained: string[][] = [];
  let passes = 0;
  let reaped: () => void = () => undefined;
  const done = new Promise<void>((resolve) => { reaped = resolve; });
  const reaper = startReaper({
    view, peers, resilience, delayMs: 10, localSessions: () => 0,
    mcp: { retain: (live) => { retained.push([...live.keys()]); }, sessions: () => 0 },
    federation: { retain: () => undefined, counts: () => ({ sessions: 0, upstreams: 0 }) },
    onReaped: () => { passes++; reaped(); },
  });
  try {
    const held = reaper.resources();
    assert.deepEqual([held.pools, held.targets, held.budgets, held.breakers], [3, 2, 2, 3]);
    view.apply({ op: 'delete', key: 'agents.a.a2' });
    view.apply({ op: 'delete', key: 'agents.b.b1' });
    const keepAlive = setInterval(() => undefined, 1000); // the reaper's timer is unref'd
    await done.finally(() => clearInterval(keepAlive));
    assert.equal(passes, 1, 'one pass for the burst of changes');
    assert.equal(retained.length, 1);
    const left = reaper.resources();
    assert.deepEqual([left.pools, left.targets, left.budgets, left.breakers], [1, 1, 1, 1]);
    assert.deepEqual(forgotten.sort(), ['agent/a a2', 'agent/b b1']);
    assert.deepEqual(retained[0], ['agent/a']);
  } finally {
    reaper.close();
    resilience.close();
    await peers.close();
    view.close();
  }
});
