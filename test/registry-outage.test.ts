// The mesh through a registry outage, with real sidecar processes: while nats-server is down, calls
// between known agents keep working from each sidecar's cache; once it is back, an agent registered
// afterwards is visible to every sidecar and /readyz is ready again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { connectMesh, serveAgent } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';

test('calls keep working while nats-server is down, and registration resumes after it returns', async (t) => {
  const mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
  const echo = await serveAgent({ name: 'echo', executor: echoExecutor() });
  t.after(async () => { await mesh.close(); await echo.close(); });
  await mesh.sidecar('echo', { agent: { url: echo.url } });
  const caller = await mesh.sidecar('caller');
  await waitForAgent(caller, 'echo');
  const client = connectMesh({ url: caller.outbound });
  const nats = mesh.nats;
  assert.ok(nats);

  await nats.stop();
  await waitFor('the caller to report the registry unreachable', async () => (await fetch(`${caller.admin}/readyz`)).status === 503);
  const outageEnds = Date.now() + 20_000;
  let calls = 0;
  // 20 s — more than six TTLs without heartbeats: the cache must keep routing all the while.
  while (Date.now() < outageEnds) {
    assert.match(JSON.stringify(await client.send('echo', `during ${calls}`)), new RegExp(`echo: during ${calls}`));
    calls++;
    await delay(250);
  }
  assert.ok(calls > 40);

  await nats.restart();
  await waitFor('the caller to be ready again', async () => (await fetch(`${caller.admin}/readyz`)).status === 200, 20_000);
  const late = await serveAgent({ name: 'late', executor: echoExecutor() });
  t.after(() => late.close());
  await mesh.sidecar('late', { agent: { url: late.url } });
  await waitForAgent(caller, 'late');
  assert.match(JSON.stringify(await client.send('late', 'hello')), /echo: hello/);
  assert.match(JSON.stringify(await client.send('echo', 'after')), /echo: after/);
});
