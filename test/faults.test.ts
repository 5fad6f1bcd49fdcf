// Fault injection on real processes: two instances of one agent behind their own sidecars; one is
// SIGKILLed mid-stream, one answers 503 to everything. Calls must keep working, never run twice,
// and GetTask must reach the instance that owns the task.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientFactory, type Client } from '@a2a-js/sdk/client';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { TaskState } from '@a2a-js/sdk';
import { message, newTask, serveAgent, statusUpdate, textOf, type AgentServer } from '../sdk/index.ts';
import { createGate } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

/** Counts executions per messageId; "stream" messages open a task that waits on the gate. */
function countingExecutor(seen: Map<string, number>, streaming: { open: number }, gate: ReturnType<typeof createGate>, onText: (text: string) => void): AgentExecutor {
  return {
    async execute(ctx: RequestContext, bus: ExecutionEventBus) {
      onText(textOf(ctx.userMessage.parts));
      const id = ctx.userMessage.messageId;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      const { taskId, contextId } = ctx;
      if (textOf(ctx.userMessage.parts) === 'stream') {
        streaming.open++;
        bus.publish(AgentEvent.task(newTask(taskId, contextId, [ctx.userMessage])));
        await gate.wait();
        bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_COMPLETED, 'done')));
      } else {
        bus.publish(AgentEvent.task(newTask(taskId, contextId, [ctx.userMessage])));
        bus.publish(AgentEvent.statusUpdate(statusUpdate(taskId, contextId, TaskState.TASK_STATE_COMPLETED, 'ok')));
      }
      bus.finished();
    },
    async cancelTask() { /* not used */ },
  };
}

describe('two instances under faults', () => {
  let mesh: TestMesh;
  let caller: SidecarProcess;
  const agents: AgentServer[] = [];
  const sidecars: SidecarProcess[] = [];
  const seen = [new Map<string, number>(), new Map<string, number>()];
  const streaming = [{ open: 0 }, { open: 0 }];
  const lastText = ['', ''];
  const failing = [false, false];
  const gate = createGate();
  let client: Client;

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
    for (const i of [0, 1]) {
      const agent = await serveAgent({
        name: 'worker', executor: countingExecutor(seen[i] as Map<string, number>, streaming[i] as { open: number }, gate, (text) => { lastText[i] = text; }),
        configure: (app) => app.use((req, res, next) => {
          if (failing[i] && req.method === 'POST') res.status(503).json({ error: 'unavailable' });
          else next();
        }),
      });
      agents.push(agent);
      sidecars.push(await mesh.sidecar('worker', { agent: { url: agent.url, name: 'worker' }, instance: `w${i}` }));
    }
    caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'worker', 2);
    client = await new ClientFactory().createFromUrl(`${caller.outbound}/a2a/worker/`);
  });
  after(async () => {
    gate.open();
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
  });

  const send = (text: string) => client.sendMessage({ tenant: '', message: message('user', text), configuration: undefined, metadata: undefined });
  const executions = (i: number) => [...(seen[i]?.values() ?? [])].reduce((a, b) => a + b, 0);

  test('GetTask reaches the instance that owns the task, also after the caller\'s sidecar restarted', async () => {
    const ids: string[] = [];
    for (let n = 0; n < 10; n++) {
      const task = await send(`task ${n}`);
      ids.push('id' in task ? task.id : '');
    }
    assert.ok(executions(0) > 0 && executions(1) > 0, 'both instances took tasks');
    for (const id of ids) {
      const got = await client.getTask({ tenant: '', id, historyLength: undefined });
      assert.equal(got.id, id);
    }
    // The caller's sidecar restarts: a new process finds the owners in the shared store.
    await caller.stop('SIGTERM');
    caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'worker', 2);
    client = await new ClientFactory().createFromUrl(`${caller.outbound}/a2a/worker/`);
    for (const id of ids) {
      const got = await client.getTask({ tenant: '', id, historyLength: undefined });
      assert.equal(got.id, id);
    }
  });

  test('an instance answering 503 is ejected after a few calls and gets traffic again once it recovers', async (t) => {
    t.after(() => { failing[1] = false; });
    // A task owned by the instance about to fail: reading it is idempotent, so a 503 is retried.
    let owned = '';
    await waitFor('a task on w1', async () => {
      const task = await send('owned');
      owned = 'id' in task ? task.id : '';
      return owned !== '' && lastText[1] === 'owned';
    });
    failing[1] = true;
    await client.getTask({ tenant: '', id: owned, historyLength: undefined }).catch(() => undefined);
    const retried = (await (await fetch(`${caller.admin}/metrics`)).text()).split('\n').filter((l) => l.startsWith('agentmesh_retries_total')).join('\n');
    assert.match(retried, /agentmesh_retries_total\{target="agent\/worker",reason="HTTP 503"\} [1-9]/);
    let failedEarly = 0;
    let calls = 0;
    const breakerOf = async () => ((await (await fetch(`${caller.admin}/api/state`)).json()) as { breakers: Record<string, Record<string, { state: string }>> }).breakers['agent/worker']?.w1?.state;
    // Steady traffic until the failing instance is ejected (its breaker opens). A failure makes the
    // instance look slow to the balancer, so it is offered only the odd call (about one every 8 s while
    // its estimate decays): the five failures in a row that eject it take a while, but few calls.
    await waitFor('the failing instance to be ejected', async () => {
      const ok = await send(`eject ${calls}`).then(() => true, () => false);
      if (!ok && calls < 20) failedEarly++;
      calls++;
      return (await breakerOf()) === 'open';
    }, 120_000, 20);
    assert.ok(failedEarly <= 5, `${failedEarly} of the first 20 calls failed`);
    let lateFailures = 0;
    for (let n = 0; n < 20; n++) await send(`ejected ${n}`).catch(() => { lateFailures++; });
    assert.ok(lateFailures <= 1, `${lateFailures} of the next 20 calls failed (at most the half-open probe)`);
    failing[1] = false;
    const before = executions(1);
    await waitFor('the recovered instance to get traffic again', async () => {
      await send('probe').catch(() => undefined);
      return executions(1) > before;
    }, 40_000, 100);
    const metrics = (await (await fetch(`${caller.admin}/metrics`)).text()).split('\n').filter((l) => l.startsWith('agentmesh_breaker') || l.startsWith('agentmesh_retries')).join('\n');
    assert.match(metrics, /agentmesh_breaker_transitions_total\{target="agent\/worker",instance="w1",state="open"\} [1-9]/);
    assert.match(metrics, /agentmesh_breaker_transitions_total\{target="agent\/worker",instance="w1",state="close"\} [1-9]/);
  });

  test('one instance SIGKILLed with streams open: its streams end with an error, calls move to the survivor, nothing runs twice', async () => {
    gate.reset();
    const streams = Array.from({ length: 6 }, () => (async () => {
      const events: string[] = [];
      try {
        for await (const e of client.sendMessageStream({ tenant: '', message: message('user', 'stream'), configuration: undefined, metadata: undefined })) events.push(e.payload?.$case ?? '?');
        return { ok: true, events };
      } catch (err) {
        return { ok: false, events, error: (err as Error).message };
      }
    })());
    await waitFor('streams open on both instances', () => (streaming[0]?.open ?? 0) > 0 && (streaming[0]?.open ?? 0) + (streaming[1]?.open ?? 0) === 6, 10_000);
    const killedAt = Date.now();
    await sidecars[0]?.stop('SIGKILL');
    // Every stream on the killed instance ends with an error within 10 s (the others wait on the gate).
    const onKilled = streaming[0]?.open ?? 0;
    const settledCount = async () => (await Promise.all(streams.map((p) => Promise.race([p, Promise.resolve(undefined)])))).filter((r) => r !== undefined && !r.ok).length;
    await waitFor('the streams of the killed instance to end with an error', async () => (await settledCount()) >= onKilled, 10_000, 50);
    assert.ok(Date.now() - killedAt <= 10_000);
    let failed = 0;
    const total = 200;
    for (let n = 0; n < total; n++) await send(`after ${n}`).catch(() => { failed++; });
    gate.open();
    const results = await Promise.all(streams);
    const cut = results.filter((r) => !r.ok);
    assert.ok(cut.length > 0, 'some streams were on the killed instance');
    for (const r of cut) assert.ok(r.error && r.error.length > 0, 'a cut stream ends with an error, not a hang');
    assert.ok(results.filter((r) => r.ok).every((r) => r.events.at(-1) === 'statusUpdate'));
    assert.ok(failed <= total / 100, `${failed} of ${total} calls failed after the kill`);
    for (const counts of seen) for (const [id, n] of counts) assert.equal(n, 1, `message ${id} ran ${n} times`);

  });
});
