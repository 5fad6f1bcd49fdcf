// No leaks, with real processes: 1,000 instances of an agent join and leave the registry (NATS KV) under
// light load through a calling sidecar; afterwards its pools, breakers, targets and open handles are back
// to the baseline and its RSS is within 10 MB of it.
// @serial: run alone (scripts/run-tests.mjs), its figures are timings and memory of whole processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { openRegistry, type AgentRecord, type Announcement, type Registry } from '../registry/index.ts';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';
import { startSidecarProcess, type SidecarProcess } from './support/sidecar-process.ts';
import { meshSigning } from './support/record-signing.ts';

const INSTANCES = 1000;
const BATCH = 100;
const MB = 1024 * 1024;

interface Resources {
  pools: number;
  targets: number;
  budgets: number;
  breakers: number;
  activeHandles: Record<string, number> & { total: number };
  memory: { rss: number; heapTotal: number; external: number };
}

/** One HTTP exchange on its own connection (Connection: close), so no keep-alive socket outlives it. */
function exchange(url: string, method: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: body ? { 'content-type': 'application/json', 'a2a-version': '1.0' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function resources(sidecar: SidecarProcess): Promise<Resources> {
  const { text } = await exchange(`${sidecar.admin}/api/state`, 'GET');
  return (JSON.parse(text) as { resources: Resources }).resources;
}

async function instancesSeen(sidecar: SidecarProcess, agent: string): Promise<number> {
  const { text } = await exchange(`${sidecar.outbound}/registry/agents?name=${agent}`, 'GET');
  return (JSON.parse(text) as { agents: { instances: unknown[] }[] }).agents[0]?.instances.length ?? 0;
}

describe('1,000 instances join and leave', () => {
  let mesh: TestMesh;
  let agent: AgentServer;
  let target: SidecarProcess;
  let caller: SidecarProcess;
  let writer: Registry;
  let real: AgentRecord;
  const failures: string[] = [];
  let calls = 0;

  /** `n` SendMessage calls through the caller, `concurrency` at a time; every one must be answered by the agent. */
  async function load(n: number, concurrency: number): Promise<void> {
    let left = n;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (left-- > 0) {
        const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }] } } });
        const { status, text } = await exchange(`${caller.outbound}/a2a/target`, 'POST', body);
        calls++;
        if (status !== 200 || !text.includes('echo: hi')) failures.push(`${status} ${text.slice(0, 200)}`);
      }
    }));
  }

  /** Announces instances [from, to) of 'target', each at its own loopback address on the real inbound port. */
  async function join(from: number, to: number): Promise<Announcement[]> {
    const port = new URL(real.endpoint).port;
    return Promise.all(Array.from({ length: to - from }, (_, k) => {
      const i = from + k;
      return writer.announce({
        kind: 'agent', name: 'target', instance: `extra${i}`, identity: real.identity,
        endpoint: `https://127.1.${Math.floor(i / 250)}.${(i % 250) + 1}:${port}`, labels: {}, card: real.card,
      });
    }));
  }

  async function churn(from: number, to: number, requests: number): Promise<number> {
    const joined = await join(from, to);
    await waitFor(`${to - from} extra instances at the caller`, async () => (await instancesSeen(caller, 'target')) > to - from, 15_000);
    await load(requests, 2);
    const held = (await resources(caller)).pools;
    await Promise.all(joined.map((a) => a.withdraw()));
    return held;
  }

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', ttl: '30s' });
    agent = await serveAgent({ name: 'target', executor: echoExecutor() });
    // The inbound listener answers on all of 127.0.0.0/8, so each extra instance can have its own endpoint (and pool).
    target = await mesh.sidecar('target', {
      agent: { url: agent.url }, advertise: '127.0.0.1',
      listen: { outbound: '127.0.0.1:0', inbound: '0.0.0.0:0', admin: '127.0.0.1:0' },
    });
    // The young generation's size follows the load history (up to 2 × 16 MB by default), which is no leak
    // but would swamp a 10 MB bound; it is held at 4 MB here, as README suggests where memory matters.
    caller = await startSidecarProcess(
      { registry: mesh.registry, identity: await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/caller`) },
      { nodeArgs: ['--max-semi-space-size=4'] },
    );
    await waitForAgent(caller, 'target');
    const { text } = await exchange(`${caller.outbound}/registry/agents?name=target`, 'GET');
    const listed = (JSON.parse(text) as { agents: { card: AgentRecord['card']; instances: AgentRecord[] }[] }).agents[0];
    assert.ok(listed?.instances[0]);
    real = { ...listed.instances[0], card: listed.card };
    const { registry } = mesh as unknown as { registry: { nats: string; bucket: string } };
    // Records are signed: the writer signs the extra instances with a certificate of the real agent's identity.
    const { signer, verifier } = meshSigning(mesh.pki.ca, mesh.trustDomain);
    writer = await openRegistry({ nats: registry.nats, bucket: registry.bucket, ttlMs: 30_000, name: 'leaks-test-writer', signer, verifier });
  });
  after(async () => {
    await writer?.close();
    await caller?.stop('SIGKILL');
    await mesh?.close();
    await agent?.close();
  });

  test('pools, breakers, targets and open handles return to the baseline; RSS ends within 10 MB of it', async (t) => {
    // Warm-up of the same shape as what is measured (two batches), so the baseline is a warmed-up sidecar:
    // calls, new pools and reaping have run and the heap has grown to its working size.
    await load(100, 2);
    await churn(0, BATCH, 80);
    await churn(BATCH, 2 * BATCH, 80);
    await waitFor('the warm-up instances gone at the caller', async () => (await instancesSeen(caller, 'target')) === 1, 15_000);
    await load(50, 2);
    // The baseline: the warm-up's state dropped and the count of open handles steady between two readings.
    let last = -1;
    const baseline = await waitFor('the warm-up state dropped', async () => {
      const r = await resources(caller);
      const steady = r.activeHandles.total === last;
      last = r.activeHandles.total;
      return r.pools === 1 && r.breakers === 1 && steady ? r : undefined;
    }, 15_000, 250);

    let peak = 0;
    for (let from = 2 * BATCH; from < 2 * BATCH + INSTANCES; from += BATCH) {
      peak = Math.max(peak, await churn(from, from + BATCH, 80));
    }
    await waitFor('every extra instance gone at the caller', async () => (await instancesSeen(caller, 'target')) === 1, 15_000);
    await load(50, 2);
    assert.deepEqual(failures, [], 'every call during the churn was answered');
    assert.ok(peak >= BATCH / 3, `the load spread over the joined instances (peak pools ${peak})`);

    const settled = await waitFor('pools, breakers, targets and handles back to the baseline', async () => {
      const r = await resources(caller);
      const back = r.pools === baseline.pools && r.breakers === baseline.breakers && r.targets === baseline.targets
        && r.budgets === baseline.budgets && r.activeHandles.total <= baseline.activeHandles.total;
      return back ? r : undefined;
    }, 20_000).catch(async (err: unknown) => {
      assert.fail(`${(err as Error).message}\nbaseline: ${JSON.stringify(baseline)}\nnow: ${JSON.stringify(await resources(caller))}`);
    });
    // Polled slowly: V8 gives memory back once the sidecar is quiet.
    const rss = await waitFor('RSS within 10 MB of the baseline', async () => {
      const r = await resources(caller);
      return r.memory.rss <= baseline.memory.rss + 10 * MB ? r.memory.rss : undefined;
    }, 30_000, 500).catch(async (err: unknown) => {
      const now = (await resources(caller)).memory;
      const mb = (m: Resources['memory']) => `RSS ${(m.rss / MB).toFixed(1)} MB (heap ${(m.heapTotal / MB).toFixed(1)} MB)`;
      assert.fail(`${(err as Error).message}: baseline ${mb(baseline.memory)}, now ${mb(now)}`);
    });
    t.diagnostic(`calls ${calls}, peak pools ${peak}, handles ${baseline.activeHandles.total} → ${settled.activeHandles.total}, RSS ${(baseline.memory.rss / MB).toFixed(1)} → ${(rss / MB).toFixed(1)} MB (heap ${(baseline.memory.heapTotal / MB).toFixed(1)} → ${(settled.memory.heapTotal / MB).toFixed(1)} MB)`);
  });
});
