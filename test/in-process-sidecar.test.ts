// Two sidecars in this test's process (startSidecar on port 0, embedded registry, test PKI): a call
// crosses outbound → mTLS → inbound → a real A2A agent, and the agent sees the caller's SPIFFE identity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectMesh, isMeshError, serveAgent, textOf } from '../sdk/index.ts';
import { callerExecutor } from './fixtures/agents.ts';
import { createTestPki } from './support/certs.ts';
import { startTestSidecar } from './support/in-process-sidecar.ts';
import { waitFor } from './support/wait.ts';

test('in-process sidecars route a call over mTLS and withdraw the agent on close', async (t) => {
  const pki = await createTestPki({ trustDomain: 'inproc.test' });
  const registryDir = mkdtempSync(join(tmpdir(), 'agentmesh-inproc-'));
  t.after(async () => { await pki.close(); rmSync(registryDir, { recursive: true, force: true }); });
  const agent = await serveAgent({ name: 'who', executor: callerExecutor() });
  t.after(() => agent.close());
  const who = await startTestSidecar({ name: 'who', pki, registryDir, config: { agent: { url: agent.url } } });
  t.after(() => who.close());
  await using caller = await startTestSidecar({ name: 'caller', pki, registryDir });

  assert.equal(who.identity, 'spiffe://inproc.test/agent/who');
  assert.match(caller.outbound, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(new URL(caller.outbound).port, '0');
  const mesh = connectMesh({ url: caller.outbound });
  await waitFor('agent who visible to the caller', async () => (await mesh.agents({ name: 'who' })).length === 1);

  const reply = await mesh.send('who', 'who am I?');
  const parts = 'parts' in reply ? reply.parts : reply.status?.message?.parts;
  assert.equal(textOf(parts), 'spiffe://inproc.test/agent/caller');

  const ready = await fetch(`${who.admin}/readyz`);
  assert.equal(ready.status, 200);

  await who.close();
  await who.close(); // idempotent
  await waitFor('agent who withdrawn', async () => (await mesh.agents({ name: 'who' })).length === 0);
  // (A cached client surfaces the sidecar's JSON-RPC error as the a2a-js transport error, not a MeshError.)
  await assert.rejects(mesh.send('who', 'still there?'), (err: unknown) => isMeshError(err, 'AGENT_NOT_FOUND') && /agent 'who' not found/.test(err.message));
});
