// Sidecar lifecycle with real processes: a SIGKILLed sidecar vanishes from the others' view within the
// TTL; a SIGTERMed one vanishes at once, lets its in-flight call finish and exits 0; /readyz tells.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientFactory } from '@a2a-js/sdk/client';
import type { StreamResponse } from '@a2a-js/sdk';
import { message, serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor, streamingExecutor, createGate } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, waitForAgentGone, type TestMesh } from './support/mesh.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

for (const backend of ['nats', 'embedded'] as const) {
  describe(`sidecar lifecycle (${backend} registry)`, () => {
    const TTL_MS = 2000;
    let mesh: TestMesh;
    let observer: SidecarProcess;
    const agents: AgentServer[] = [];

    before(async () => {
      mesh = await createTestMesh({ backend, ttl: `${TTL_MS}ms` });
      observer = await mesh.sidecar('observer');
    });
    after(async () => {
      await mesh?.close();
      await Promise.allSettled(agents.map((a) => a.close()));
    });

    test('/readyz is 200 once the registry is synced and the agent registered', async () => {
      const res = await fetch(`${observer.admin}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ready', reasons: [] });
      assert.equal((await fetch(`${observer.admin}/healthz`)).status, 200);
    });

    test('a SIGKILLed sidecar vanishes from the others within the TTL', async () => {
      const agent = await serveAgent({ name: 'doomed', executor: echoExecutor() });
      agents.push(agent);
      const doomed = await mesh.sidecar('doomed', { agent: { url: agent.url } });
      await waitForAgent(observer, 'doomed');
      const killedAt = Date.now();
      await doomed.stop('SIGKILL');
      await waitForAgentGone(observer, 'doomed', TTL_MS * 3);
      const gone = Date.now() - killedAt;
      // The record's last heartbeat is at most ttl/3 old when killed; it is stale TTL after that heartbeat.
      assert.ok(gone <= TTL_MS + 1000, `vanished after ${gone} ms, TTL is ${TTL_MS} ms`);
    });

    test('a SIGTERMed sidecar vanishes at once, finishes its in-flight call and exits 0', async () => {
      const gate = createGate();
      const agent = await serveAgent({ name: 'leaving', executor: streamingExecutor({ chunks: 3, gate }) });
      agents.push(agent);
      const leaving = await mesh.sidecar('leaving', { agent: { url: agent.url } });
      await waitForAgent(observer, 'leaving');
      const client = await new ClientFactory().createFromUrl(`${observer.outbound}/a2a/leaving/`);
      const stream = client.sendMessageStream({ tenant: '', message: message('user', 'go'), configuration: undefined, metadata: undefined });
      const events: StreamResponse[] = [];
      const first = await stream.next();
      if (first.value) events.push(first.value);
      const exited = leaving.stop('SIGTERM');
      // Deregistration comes first: the record is gone well before any TTL could expire it.
      const goneAfter = await waitForAgentGone(observer, 'leaving', TTL_MS);
      assert.ok(goneAfter < TTL_MS, `gone after ${goneAfter} ms`);
      gate.open();
      for await (const event of stream) events.push(event);
      const last = events.at(-1)?.payload;
      assert.equal(last?.$case, 'statusUpdate');
      assert.equal(last.$case === 'statusUpdate' && last.value.status?.state, 3 /* COMPLETED */);
      assert.equal(events.filter((e) => e.payload?.$case === 'artifactUpdate').length, 3);
      assert.equal(await exited, 0);
    });
  });
}
