// A2A through the mesh: a standard @a2a-js/sdk client on sidecar A's route reaches an agent behind
// sidecar B (real sidecar processes, real nats-server, real mTLS) and gets what it gets directly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ClientFactory, ClientFactoryOptions, type Client } from '@a2a-js/sdk/client';
import { Role, TaskState, type Message, type StreamResponse } from '@a2a-js/sdk';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor, largeReplyExecutor, streamingExecutor, slowExecutor, createGate } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

function userMessage(text: string, taskId = ''): Message {
  return {
    messageId: randomUUID(), role: Role.ROLE_USER, taskId, contextId: '', metadata: undefined, extensions: [], referenceTaskIds: [],
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
  };
}

function textOf(result: unknown): string {
  return JSON.stringify(result, (k, v: unknown) => (k === 'messageId' || k === 'id' || k === 'contextId' || k === 'taskId' || k === 'timestamp' ? '·' : v));
}

const rest = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, { preferredTransports: ['HTTP+JSON'] }));
const jsonrpc = new ClientFactory();

describe('A2A through two sidecars', () => {
  let mesh: TestMesh;
  let caller: SidecarProcess;
  const gate = createGate();
  const agents: AgentServer[] = [];

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats' });
    const echo = await serveAgent({ name: 'echo', skills: [{ id: 'echo', tags: ['test'] }], executor: echoExecutor() });
    const stream = await serveAgent({ name: 'streamer', executor: streamingExecutor({ chunks: 3, gate }) });
    const slow = await serveAgent({ name: 'slow', executor: slowExecutor() });
    const large = await serveAgent({ name: 'large', executor: largeReplyExecutor() });
    agents.push(echo, stream, slow, large);
    await mesh.sidecar('echo', { agent: { url: echo.url } });
    await mesh.sidecar('streamer', { agent: { url: stream.url } });
    await mesh.sidecar('slow', { agent: { url: slow.url } });
    await mesh.sidecar('large', { agent: { url: large.url } });
    caller = await mesh.sidecar('caller');
    for (const name of ['echo', 'streamer', 'slow', 'large']) await waitForAgent(caller, name);
  });
  after(async () => {
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
  });

  test('the card route rewrites every interface to the sidecar', async () => {
    const res = await fetch(`${caller.outbound}/a2a/echo/.well-known/agent-card.json`);
    assert.equal(res.status, 200);
    const card = await res.json() as { name: string; supportedInterfaces: { url: string; protocolBinding: string }[] };
    assert.equal(card.name, 'echo');
    assert.ok(card.supportedInterfaces.length >= 2);
    for (const i of card.supportedInterfaces) assert.equal(i.url, `${caller.outbound}/a2a/echo`);
  });

  for (const [binding, factory] of [['JSON-RPC', jsonrpc], ['REST', rest]] as const) {
    describe(binding, () => {
      let viaMesh: Client;
      let direct: Client;
      before(async () => {
        viaMesh = await factory.createFromUrl(`${caller.outbound}/a2a/echo/`);
        direct = await factory.createFromUrl(agents[0]?.url ?? '');
      });

      test('SendMessage returns what a direct call returns', async () => {
        const a = await viaMesh.sendMessage({ tenant: '', message: userMessage('hello mesh'), configuration: undefined, metadata: undefined });
        const b = await direct.sendMessage({ tenant: '', message: userMessage('hello mesh'), configuration: undefined, metadata: undefined });
        assert.equal(textOf(a), textOf(b));
        assert.match(textOf(a), /hello mesh/);
      });

      test('a 3 MB answer arrives whole (back-pressure through both sidecars)', async () => {
        const size = 3 * 1024 * 1024;
        const client = await factory.createFromUrl(`${caller.outbound}/a2a/large/`);
        const answer = await client.sendMessage({ tenant: '', message: userMessage(String(size)), configuration: undefined, metadata: undefined });
        const text = JSON.stringify(answer).match(/x{1000,}/)?.[0] ?? '';
        assert.equal(text.length, size);
      });

      test('SendStreamingMessage delivers events one by one, the first before the agent finishes', async () => {
        const client = await factory.createFromUrl(`${caller.outbound}/a2a/streamer/`);
        const events: StreamResponse[] = [];
        gate.reset();
        for await (const event of client.sendMessageStream({ tenant: '', message: userMessage('go'), configuration: undefined, metadata: undefined })) {
          events.push(event);
          // The agent is blocked on the gate until the caller has seen an event: only a pass-through stream gets here.
          if (events.length === 1) gate.open();
        }
        const kinds = events.map((e) => e.payload?.$case);
        assert.equal(kinds[0], 'task');
        assert.equal(kinds.filter((k) => k === 'artifactUpdate').length, 3);
        const last = events.at(-1)?.payload;
        assert.equal(last?.$case, 'statusUpdate');
        assert.equal(last.$case === 'statusUpdate' && last.value.status?.state, TaskState.TASK_STATE_COMPLETED);
      });

      test('GetTask, ListTasks, CancelTask and SubscribeToTask reach the owning agent', async () => {
        const client = await factory.createFromUrl(`${caller.outbound}/a2a/slow/`);
        const stream = client.sendMessageStream({ tenant: '', message: userMessage('work'), configuration: undefined, metadata: undefined });
        const first = await stream.next();
        assert.equal(first.value?.payload?.$case, 'task');
        const taskId = first.value.payload.$case === 'task' ? first.value.payload.value.id : '';
        const got = await client.getTask({ tenant: '', id: taskId, historyLength: undefined });
        assert.equal(got.id, taskId);
        const listed = await client.listTasks({ tenant: '', contextId: '', status: 0, pageSize: 50, pageToken: '', historyLength: undefined, statusTimestampAfter: undefined, includeArtifacts: false });
        assert.ok(listed.tasks.some((t) => t.id === taskId));
        const resubscribed = client.resubscribeTask({ tenant: '', id: taskId });
        const firstResub = await resubscribed.next();
        assert.ok(firstResub.value, 'SubscribeToTask yields the current task');
        const canceled = await client.cancelTask({ tenant: '', id: taskId, metadata: undefined });
        assert.equal(canceled.status?.state, TaskState.TASK_STATE_CANCELED);
        for await (const _ of stream) { /* drains to the terminal event */ }
        for await (const _ of resubscribed) { /* ends at CANCELED */ }
      });
    });
  }
});
