// Exactly-once SendMessage and fast failures, with real processes: two instances of one agent behind
// their own sidecars. One instance's sidecar is SIGKILLed under load while its agent keeps running: no
// message runs twice, few calls fail, and each failure names its message id. Then an instance answering
// every call with a fast 404 draws almost none of the traffic.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { ClientFactory, type Client } from '@a2a-js/sdk/client';
import { AgentEvent, type AgentExecutor, type ExecutionEventBus, type RequestContext } from '@a2a-js/sdk/server';
import { TaskState } from '@a2a-js/sdk';
import { message, newTask, serveAgent, statusUpdate, type AgentServer } from '../sdk/index.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

/** Counts executions per messageId; each takes `ms` of agent work, so calls are in flight when a sidecar dies. */
function countingExecutor(seen: Map<string, number>, busy: { now: number }, ms: number): AgentExecutor {
  return {
    async execute(ctx: RequestContext, bus: ExecutionEventBus) {
      const id = ctx.userMessage.messageId;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      busy.now++;
      try {
        bus.publish(AgentEvent.task(newTask(ctx.taskId, ctx.contextId, [ctx.userMessage])));
        await delay(ms); // the agent's own work
        bus.publish(AgentEvent.statusUpdate(statusUpdate(ctx.taskId, ctx.contextId, TaskState.TASK_STATE_COMPLETED, 'ok')));
      } finally {
        busy.now--;
      }
      bus.finished();
    },
    async cancelTask() { /* not used */ },
  };
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe('exactly-once SendMessage across instances', () => {
  let mesh: TestMesh;
  const agents: AgentServer[] = [];
  const sidecars: SidecarProcess[] = [];
  const seen = [new Map<string, number>(), new Map<string, number>()];
  const busy = [{ now: 0 }, { now: 0 }];
  let client: Client;

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
    for (const i of [0, 1]) {
      const agent = await serveAgent({ name: 'worker', executor: countingExecutor(seen[i] as Map<string, number>, busy[i] as { now: number }, 40) });
      agents.push(agent);
      sidecars.push(await mesh.sidecar('worker', { agent: { url: agent.url, name: 'worker' }, instance: `w${i}` }));
    }
    const caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'worker', 2);
    client = await new ClientFactory().createFromUrl(`${caller.outbound}/a2a/worker/`);
  });
  after(async () => {
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
  });

  test('one instance\'s sidecar SIGKILLed under load (its agent running on): no message runs twice, <= 1 % fail, each failure names its message id', async (t) => {
    const calls = 800;
    const concurrency = 8;
    const failures: { messageId: string; error: string }[] = [];
    let started = 0;
    let done = 0;
    const worker = async () => {
      while (started < calls) {
        started++;
        const m = message('user', `load ${started}`);
        try {
          await client.sendMessage({ tenant: '', message: m, configuration: undefined, metadata: undefined });
        } catch (err) {
          failures.push({ messageId: m.messageId, error: (err as Error).message });
        }
        done++;
      }
    };
    const load = Promise.all(Array.from({ length: concurrency }, worker));
    // Kill w0's sidecar while its agent is working on calls it took through that sidecar.
    await waitFor('calls in flight at w0 after a warm-up', () => done >= 100 && (busy[0]?.now ?? 0) >= 2, 30_000, 1);
    const inFlight = busy[0]?.now ?? 0;
    await sidecars[0]?.stop('SIGKILL');
    await load;

    for (const counts of seen) for (const [id, n] of counts) assert.equal(n, 1, `message ${id} ran ${n} times on one instance`);
    for (const [id] of seen[0] ?? []) assert.ok(!seen[1]?.has(id), `message ${id} ran on both instances`);
    assert.ok(failures.length <= calls / 100, `${failures.length} of ${calls} calls failed: ${JSON.stringify(failures.slice(0, 3))}`);
    for (const f of failures) {
      assert.ok(f.error.includes(f.messageId), `the failure names its message id: ${f.error}`);
      assert.match(f.error, /-32059|may have reached instance 'w0'/);
    }
    assert.ok(total(seen[0] as Map<string, number>) > 0 && total(seen[1] as Map<string, number>) > 0, 'both instances took calls');
    // Which calls were cut is a race; the record says how many there were.
    t.diagnostic(`${inFlight} executing at w0 when its sidecar died; ${failures.length} of ${calls} calls failed (OUTCOME_UNKNOWN)`);
  });
});

describe('fast failures are failures', () => {
  let mesh: TestMesh;
  const agents: AgentServer[] = [];
  const seen = [new Map<string, number>(), new Map<string, number>()];
  const hits = [0, 0];
  let failing = false;
  let client: Client;

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
    for (const i of [0, 1]) {
      const agent = await serveAgent({
        name: 'flaky', executor: countingExecutor(seen[i] as Map<string, number>, { now: 0 }, 10),
        // Once failing, instance 1 answers every call at once with a 404, as if its route were missing.
        configure: (app) => app.use((req, res, next) => {
          if (req.method !== 'POST') return next();
          hits[i] = (hits[i] ?? 0) + 1;
          if (i === 1 && failing) res.status(404).json({ error: 'not here' });
          else next();
        }),
      });
      agents.push(agent);
      await mesh.sidecar('flaky', { agent: { url: agent.url, name: 'flaky' }, instance: `f${i}` });
    }
    const caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'flaky', 2);
    client = await new ClientFactory().createFromUrl(`${caller.outbound}/a2a/flaky/`);
  });
  after(async () => {
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
  });

  test('of two instances, the one answering every call with a fast 404 gets <= 5 of the first 50 calls', async () => {
    // Warm connections to both first (a first call's TLS handshake would make the failing one look slow).
    await waitFor('calls on both instances', async () => {
      await client.sendMessage({ tenant: '', message: message('user', 'warm-up'), configuration: undefined, metadata: undefined });
      return (hits[0] ?? 0) >= 3 && (hits[1] ?? 0) >= 3;
    }, 30_000, 0);
    failing = true;
    hits[0] = hits[1] = 0;
    seen[0]?.clear();
    let failed = 0;
    for (let n = 0; n < 50; n++) {
      await client.sendMessage({ tenant: '', message: message('user', `call ${n}`), configuration: undefined, metadata: undefined }).catch(() => { failed++; });
    }
    assert.ok((hits[1] ?? 0) <= 5, `the failing instance got ${hits[1]} of the first 50 calls`);
    assert.equal(failed, hits[1], 'each call it got failed (its 404 is relayed), every other call succeeded');
    assert.equal(total(seen[0] as Map<string, number>), 50 - (hits[1] ?? 0));
  });
});
