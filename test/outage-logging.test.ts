// No blind errors and no log floods through a NATS outage, with real sidecar processes: the NATS
// disconnect and reconnect reach the sidecar's log, and a task-affinity store that fails on every call
// is logged once when it starts failing and once when it recovers (with the count), not once per call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serveAgent } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

interface LogLine { level: number; msg: string; failures?: number; server?: string }

function logLines(sidecar: SidecarProcess): LogLine[] {
  return sidecar.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

/** A GetTask for a task this sidecar has not seen: the caller's sidecar asks the affinity store who owns it. */
async function getTask(sidecar: SidecarProcess, agent: string, id: string): Promise<unknown> {
  const res = await fetch(`${sidecar.outbound}/a2a/${agent}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id } }),
  });
  return res.json();
}

test('a NATS outage is logged as disconnect/reconnect, and per-call store failures once per state change', async (t) => {
  const mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
  const echo = await serveAgent({ name: 'echo', executor: echoExecutor() });
  t.after(async () => { await mesh.close(); await echo.close(); });
  const own = await mesh.sidecar('echo', { agent: { url: echo.url }, log: { level: 'info' } });
  const caller = await mesh.sidecar('caller', { log: { level: 'info' } });
  await waitForAgent(caller, 'echo');
  const nats = mesh.nats;
  assert.ok(nats);
  const count = (msg: RegExp) => logLines(caller).filter((l) => msg.test(l.msg)).length;

  await nats.stop();
  await waitFor('the disconnect in the caller\'s log', () => count(/lost the NATS connection/) > 0);
  const calls = 60;
  for (let i = 0; i < calls; i++) assert.match(JSON.stringify(await getTask(caller, 'echo', `outage-${i}`)), /"error"/);
  await waitFor('the affinity store failure in the log', () => count(/^task affinity store failing/) > 0, 15_000);

  await nats.restart();
  await waitFor('the reconnect in the caller\'s log', () => count(/NATS connection is back/) > 0, 20_000);
  await waitFor('the affinity store to recover', async () => {
    await getTask(caller, 'echo', `after-${Date.now()}`);
    return count(/^task affinity store recovered after \d+ failures?$/) > 0;
  }, 20_000);

  const affinityLines = logLines(caller).filter((l) => l.msg.startsWith('task affinity store'));
  assert.ok(affinityLines.length <= 3, `at most a few affinity store lines for ${calls} failing calls, got ${JSON.stringify(affinityLines)}`);
  t.diagnostic(`affinity store lines: ${JSON.stringify(affinityLines.map((l) => [l.msg, l.failures]))}`);
  const recovered = affinityLines.find((l) => l.msg.includes('recovered'));
  assert.ok((recovered?.failures ?? 0) >= 1);
  const heartbeatLines = logLines(own).filter((l) => l.msg.startsWith('registry heartbeat'));
  t.diagnostic(`heartbeat lines: ${JSON.stringify(heartbeatLines.map((l) => [l.msg, l.failures]))}`);
  assert.ok(heartbeatLines.length <= 3, `heartbeat failures logged once per outage, got ${JSON.stringify(heartbeatLines)}`);
  assert.equal(count(/lost the NATS connection/), 1);
  assert.equal(count(/NATS connection is back/), 1);
});
