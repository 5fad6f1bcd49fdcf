// resilience.meshDedup with two in-process sidecars fronting two instances of one agent (embedded
// registry, so the record lives in files beside it): a SendMessage a client resends to the other
// instance itself is refused there with OUTCOME_UNKNOWN naming the first instance, and runs once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestPki, type IdentityFiles, type TestPki } from './support/certs.ts';
import { startTestSidecar, type TestSidecar } from './support/in-process-sidecar.ts';

const send = (messageId: string) => JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'SendMessage',
  params: { message: { messageId, role: 'ROLE_USER', parts: [{ text: 'once' }] } },
});

describe('the mesh-wide SendMessage dedup record', () => {
  let pki: TestPki;
  let dir: string;
  const agents: AgentServer[] = [];
  const executors = [echoExecutor(), echoExecutor()];
  const sidecars: TestSidecar[] = [];
  const clients: Agent[] = [];

  before(async () => {
    pki = await createTestPki({ trustDomain: 'dedup.test' });
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-dedup-'));
    for (const i of [0, 1]) {
      const agent = await serveAgent({ name: 'once', executor: executors[i] as ReturnType<typeof echoExecutor> });
      agents.push(agent);
      sidecars.push(await startTestSidecar({ name: 'once', pki, registryDir: dir, config: { agent: { url: agent.url, name: 'once' }, instance: `i${i}`, resilience: { meshDedup: true } } }));
    }
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(sidecars.map((s) => s.close()));
    await Promise.allSettled(agents.map((a) => a.close()));
    await pki?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A client holding a mesh certificate, calling an inbound listener directly (as a caller's sidecar does). */
  async function caller(name: string) {
    const files: IdentityFiles = await pki.issue(`spiffe://dedup.test/agent/${name}`);
    const dispatcher = new Agent({ connect: { ca: readFileSync(files.bundle, 'utf8'), cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8'), checkServerIdentity: () => undefined } });
    clients.push(dispatcher);
    return async (i: number, messageId: string) => {
      const res = await undiciFetch(`${sidecars[i]?.inbound}/a2a/once`, { method: 'POST', body: send(messageId), dispatcher, headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
      return await res.json() as { result?: unknown; error?: { code: number; message: string; data: Record<string, unknown> } };
    };
  }

  test('a message resent to the other instance is refused there, naming the first; it runs once', async () => {
    const call = await caller('client-a');
    const first = await call(0, 'm-1');
    assert.ok(first.result !== undefined, JSON.stringify(first));
    assert.equal(executors[0]?.executions, 1);
    const again = await call(1, 'm-1');
    assert.equal(again.error?.code, -32059);
    assert.equal(again.error?.data.code, 'OUTCOME_UNKNOWN');
    assert.deepEqual([again.error?.data.messageId, again.error?.data.instance], ['m-1', 'i0']);
    assert.match(again.error?.message ?? '', /message 'm-1' was already accepted by instance 'i0'/);
    assert.equal(executors[1]?.executions, 0, 'the other instance never ran it');
    // The same instance still answers a resend with the first outcome (local dedup), not an error.
    const resent = await call(0, 'm-1');
    assert.deepEqual(resent.result, first.result);
    assert.equal(executors[0]?.executions, 1);
  });

  test('the record is per caller and per message: other ids and other callers run', async () => {
    const a = await caller('client-b');
    const b = await caller('client-c');
    assert.ok((await a(1, 'm-2')).result !== undefined);
    assert.ok((await b(0, 'm-2')).result !== undefined, 'another caller may use the same message id');
    assert.equal(executors[1]?.executions, 1);
  });
});
