// A dead local agent is not advertised, with real sidecar processes: when the agent stops answering
// (its sidecar keeps running) another sidecar stops seeing it and its own /readyz names why; an agent
// started again on the same port is announced again, with the card it serves now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectMesh, serveAgent } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, waitForAgentGone } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';

test('an agent that stops answering is withdrawn and /readyz says why; restarted, it is back', async (t) => {
  const mesh = await createTestMesh({ backend: 'embedded', ttl: '30s' });
  t.after(() => mesh.close());
  const name = `health-${Math.random().toString(36).slice(2, 8)}`;
  let agent = await serveAgent({ name, executor: echoExecutor() });
  t.after(() => agent.close());
  const port = Number(new URL(agent.url).port);
  const own = await mesh.sidecar(name, {
    agent: { url: agent.url, healthInterval: '200ms', healthTimeout: '500ms', healthThreshold: 2 },
  });
  const caller = await mesh.sidecar('caller');
  await waitForAgent(caller, name);
  assert.equal((await fetch(`${own.admin}/readyz`)).status, 200);

  await agent.close();
  // The TTL is 30 s: only the withdrawal can make it vanish this soon.
  await waitForAgentGone(caller, name, 10_000);
  const res = await fetch(`${own.admin}/readyz`);
  assert.equal(res.status, 503);
  const body = await res.json() as { reasons: string[] };
  const reason = body.reasons.find((r) => r.includes(`'${name}'`));
  assert.ok(reason, `a reason naming the agent in ${JSON.stringify(body)}`);
  assert.match(reason, /not answering: \d+ failed card reads in a row, last: .*ECONNREFUSED/);

  agent = await serveAgent({ name, executor: echoExecutor(), port, description: 'restarted' });
  await waitForAgent(caller, name);
  await waitFor('readyz 200 again', async () => (await fetch(`${own.admin}/readyz`)).status === 200);
  const listed = await (await fetch(`${caller.outbound}/registry/agents?name=${name}`)).json() as { agents: { description?: string; card?: { description?: string } }[] };
  assert.match(JSON.stringify(listed), /restarted/);
  assert.match(JSON.stringify(await connectMesh({ url: caller.outbound }).send(name, 'again')), /echo: again/);
});
