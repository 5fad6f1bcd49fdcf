// The registry's trust model on real processes (nats-server, sidecars, agents): a sidecar cannot
// announce a name its identity does not own, a record forged with a valid certificate gets no traffic,
// a replayed older record is ignored, and deleting or purging with a plain NATS client removes no one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { jetstreamManager } from '@nats-io/jetstream';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { createRecordSigner, type AgentRecord } from '../registry/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { serveTestMcp } from './fixtures/mcp-http-server.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';

const SEND = (text: string) => JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'SendMessage',
  params: { message: { messageId: `m-${Math.random()}`, role: 'ROLE_USER', parts: [{ text }] } },
});

/** One call to `agent` through `sidecar`; resolves with the HTTP status. */
async function call(sidecar: SidecarProcess, agent: string): Promise<number> {
  const res = await fetch(`${sidecar.outbound}/a2a/${agent}`, { method: 'POST', body: SEND('hi'), headers: { 'content-type': 'application/json', 'a2a-version': '1.0' } });
  await res.arrayBuffer();
  return res.status;
}

async function rejected(sidecar: SidecarProcess, reason: string): Promise<number> {
  const text = await (await fetch(`${sidecar.admin}/metrics`)).text();
  return Number(new RegExp(`^agentmesh_registry_rejected_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

async function instances(sidecar: SidecarProcess, agent: string): Promise<string[]> {
  const body = await (await fetch(`${sidecar.outbound}/registry/agents?name=${agent}`)).json() as { agents: { instances: { instance: string }[] }[] };
  return (body.agents[0]?.instances ?? []).map((i) => i.instance).sort();
}

describe('registry trust (nats registry, real processes)', () => {
  let mesh: TestMesh;
  let nc: NatsConnection;
  let kv: KV;
  let bucket: string;
  let beta: SidecarProcess;
  let mallory: SidecarProcess;
  let caller: SidecarProcess;
  const betaExecutor = echoExecutor();
  const malloryExecutor = echoExecutor();
  const agents: AgentServer[] = [];

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', ttl: '3s' });
    const [betaAgent, malloryAgent] = [await serveAgent({ name: 'beta', executor: betaExecutor }), await serveAgent({ name: 'mallory', executor: malloryExecutor })];
    agents.push(betaAgent, malloryAgent);
    beta = await mesh.sidecar('beta', { agent: { url: betaAgent.url }, instance: 'b1' });
    mallory = await mesh.sidecar('mallory', { agent: { url: malloryAgent.url } });
    caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'beta');
    await waitForAgent(caller, 'mallory');
    bucket = String(mesh.registry.bucket);
    nc = await connect({ servers: mesh.nats?.url ?? '' });
    kv = await new Kvm(nc).open(bucket);
  });
  after(async () => {
    await nc?.close();
    await mesh?.close();
    await Promise.allSettled(agents.map((a) => a.close()));
  });

  test('a sidecar with mallory\'s certificate cannot announce beta: exit 1 naming both', async () => {
    const url = agents[1]?.url ?? '';
    // (The policy is read first, since its registrations may grant the name: its log lines may come before.)
    await assert.rejects(mesh.sidecar('mallory', { agent: { url, name: 'beta' } }),
      /sidecar exited with 1:\n(?:agentmesh: dist\/ is older[^\n]*\n)?(?:\{[^\n]*\}\n)*agentmesh: IDENTITY_INVALID: agent\.name 'beta' is not owned by this sidecar's identity spiffe:\/\/mesh\.test\/agent\/mallory: it belongs to spiffe:\/\/mesh\.test\/agent\/beta[^\n]*\n$/);
    // Nor when the name comes from the agent's card rather than the config.
    const cardSaysBeta = await serveAgent({ name: 'beta', executor: echoExecutor() });
    agents.push(cardSaysBeta);
    await assert.rejects(mesh.sidecar('mallory', { agent: { url: cardSaysBeta.url } }), /IDENTITY_INVALID: agent\.name 'beta' is not owned/);
  });

  test('a record for beta written into NATS by hand with mallory\'s identity, endpoint and signature gets 0 of 50 calls', async (t) => {
    const files = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/mallory`);
    const signer = createRecordSigner(() => ({ id: `spiffe://${mesh.trustDomain}/agent/mallory`, certPem: readFileSync(files.cert, 'utf8'), keyPem: readFileSync(files.key, 'utf8') }));
    const startedAt = new Date().toISOString();
    const forged = (): AgentRecord => ({
      kind: 'agent', name: 'beta', instance: 'forged', identity: `spiffe://${mesh.trustDomain}/agent/mallory`, endpoint: mallory.inbound,
      labels: {}, card: { name: 'beta', skills: [] }, startedAt, heartbeatAt: new Date().toISOString(),
    });
    const before = await rejected(caller, 'name_not_owned');
    const put = async (): Promise<void> => { await kv.put('agents.beta.forged', await signer.sign(forged())); };
    await put();
    // Mallory heart-beats her record like a sidecar (every TTL/3), so it is fresh throughout the calls.
    const heartbeat = setInterval(() => { put().catch(() => undefined); }, 1000);
    heartbeat.unref();
    t.after(() => clearInterval(heartbeat));
    await waitFor('the caller to refuse the forged record', async () => (await rejected(caller, 'name_not_owned')) > before);
    assert.deepEqual(await instances(caller, 'beta'), ['b1']);
    const [betaBefore, malloryBefore] = [betaExecutor.executions, malloryExecutor.executions];
    const statuses = await Promise.all(Array.from({ length: 50 }, () => call(caller, 'beta')));
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(malloryExecutor.executions - malloryBefore, 0, 'mallory got none');
    assert.equal(betaExecutor.executions - betaBefore, 50, 'the real beta got them all');
    clearInterval(heartbeat);
    await kv.delete('agents.beta.forged');
  });

  test('a replayed older, validly signed record of beta is ignored', async () => {
    const url = agents[0]?.url ?? '';
    const second = await mesh.sidecar('beta', { agent: { url }, instance: 'b2' });
    await waitForAgent(caller, 'beta', 2);
    const old = await kv.get('agents.beta.b2');
    assert.ok(old?.operation === 'PUT');
    const value = old.string();
    assert.equal(await second.stop('SIGTERM'), 0);
    await waitFor('b2 withdrawn at the caller', async () => (await instances(caller, 'beta')).join() === 'b1', 3000);
    const before = await rejected(caller, 'replay');
    await kv.put('agents.beta.b2', value);
    await waitFor('the caller to refuse the replay', async () => (await rejected(caller, 'replay')) > before);
    assert.deepEqual(await instances(caller, 'beta'), ['b1'], 'the withdrawn instance did not come back');
    for (let i = 0; i < 10; i++) assert.equal(await call(caller, 'beta'), 200);
  });

  test('deleting beta\'s key and purging the bucket with a plain NATS client leaves beta callable without a gap', async () => {
    const replaysBefore = await rejected(beta, 'replay');
    let stop = false;
    const statuses: number[] = [];
    const seen: string[] = [];
    const load = (async () => {
      while (!stop) {
        statuses.push(await call(caller, 'beta'));
        seen.push((await instances(caller, 'beta')).join());
      }
    })();
    try {
      await waitFor('calls under way', () => statuses.length >= 5);
      const key = 'agents.beta.b1';
      await kv.delete(key);
      await kv.purge(key);
      await (await jetstreamManager(nc)).streams.purge(`KV_${bucket}`);
      assert.equal(await kv.get(key), null, 'the bucket is empty');
      const mark = statuses.length;
      await waitFor('beta\'s next heartbeat in the bucket', async () => (await kv.get(key))?.operation === 'PUT', 5000);
      await waitFor('calls after the heartbeat', () => statuses.length >= mark + 5);
    } finally {
      stop = true;
      await load;
    }
    assert.ok(statuses.length >= 10, `${statuses.length} calls`);
    assert.deepEqual(new Set(statuses), new Set([200]), 'every call succeeded');
    assert.deepEqual(new Set(seen), new Set(['b1']), 'beta never left the caller\'s view');
    assert.equal(await rejected(beta, 'replay'), replaysBefore, 'beta\'s own heartbeats after the purge are not taken for replays');
  });

  test('agentmesh ca grant gives mallory the name gamma; a grant she signs herself is refused at start-up', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-grant-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'ca.pem'), mesh.pki.ca.certPem);
    writeFileSync(join(dir, 'ca-key.pem'), mesh.pki.ca.keyPem, { mode: 0o600 });
    const id = `spiffe://${mesh.trustDomain}/agent/mallory`;
    const out = join(dir, 'gamma.jwt');
    const granted = await runCli(['ca', 'grant', '--dir', dir, '--identity', id, '--agent', 'gamma', '--mcp', 'g1,g2', '--out', out]);
    assert.equal(granted.code, 0, granted.stderr);
    const gamma = await serveAgent({ name: 'gamma', executor: echoExecutor() });
    agents.push(gamma);
    const files = await mesh.pki.issue(id);
    await mesh.sidecar('mallory', { agent: { url: gamma.url }, identity: { ...files, grants: [out] } });
    await waitForAgent(caller, 'gamma');
    assert.equal(await call(caller, 'gamma'), 200);
    // The same grant signed with mallory's own key: not from a CA in the bundle.
    writeFileSync(join(dir, 'ca-key.pem'), readFileSync(files.key, 'utf8'));
    const selfMade = join(dir, 'self.jwt');
    assert.equal((await runCli(['ca', 'grant', '--dir', dir, '--identity', id, '--agent', 'beta', '--out', selfMade])).code, 0);
    await assert.rejects(mesh.sidecar('mallory', { agent: { url: gamma.url, name: 'beta' }, identity: { ...files, grants: [selfMade] } }),
      /CONFIG_INVALID: identity\.grants\[0\] \([^)]*self\.jwt\): the grant is not signed by a CA in the trust bundle/);
  });

  test('two identities fronting one MCP server name: neither is served, loudly, until one leaves', async (t) => {
    const [one, two] = [await serveTestMcp(['t']), await serveTestMcp(['t'])];
    t.after(() => Promise.allSettled([one.close(), two.close()]));
    const listed = async () => ((await (await fetch(`${caller.outbound}/registry/mcp`)).json()) as { servers: { name: string; instances: { identity: string }[] }[] })
      .servers.find((s) => s.name === 'shared')?.instances.map((i) => i.identity) ?? [];
    await mesh.sidecar('alpha', { mcp: { servers: [{ name: 'shared', url: one.url }] } });
    await waitFor('shared listed', async () => (await listed()).length === 1);
    const before = await rejected(caller, 'mcp_name_conflict');
    const second = await mesh.sidecar('mallory', { mcp: { servers: [{ name: 'shared', url: two.url }] } });
    await waitFor('the conflict counted at the caller', async () => (await rejected(caller, 'mcp_name_conflict')) > before);
    assert.deepEqual(await listed(), [], 'not listed while two identities claim it');
    const res = await fetch(`${caller.outbound}/mcp/shared`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    assert.equal(res.status, 404, 'not balanced across the two');
    assert.match(second.output() + caller.output(), /MCP server name 'shared' is claimed by spiffe:\/\/mesh\.test\/agent\/alpha and spiffe:\/\/mesh\.test\/agent\/mallory/);
    assert.equal(await second.stop('SIGTERM'), 0);
    await waitFor('alpha\'s server served again', async () => (await listed()).join() === `spiffe://${mesh.trustDomain}/agent/alpha`);
  });
});
