// The policy without NATS, on real processes: a sidecar with no policy allows every call and says so;
// `policy apply` on the embedded registry reaches the sidecars of this host; `policy.file` is reloaded
// when it changes, a broken edit keeps the last good version, and a broken file refuses start-up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { runCli, startSidecarProcess, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const TD = 'mesh.test';

async function sendCode(sidecar: SidecarProcess): Promise<number | undefined> {
  const res = await fetch(`${sidecar.outbound}/a2a/echo`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }] } } }),
  });
  const body = await res.json() as { error?: { code: number } };
  return body.error?.code;
}

interface PolicyState { version: number | null; source: string; lastError?: string }
async function policyState(sidecar: SidecarProcess): Promise<PolicyState> {
  return (await (await fetch(`${sidecar.admin}/api/state`)).json() as { policy: PolicyState }).policy;
}

describe('policy on the embedded registry and from policy.file', () => {
  let mesh: TestMesh;
  let dir: string;
  let agent: AgentServer;
  let echo: SidecarProcess;
  let caller: SidecarProcess;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded', trustDomain: TD });
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-policy-file-'));
    agent = await serveAgent({ name: 'echo', executor: echoExecutor() });
    echo = await mesh.sidecar('echo', { agent: { url: agent.url } });
    caller = await mesh.sidecar('caller');
    await waitForAgent(caller, 'echo');
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a policy every call is allowed, and the sidecar says so at start-up', async () => {
    assert.equal(await sendCode(caller), undefined);
    assert.equal((await policyState(echo)).version, null);
    await waitFor('the start-up line about no policy', () => echo.output().includes('no mesh policy: every caller with a mesh certificate may call every agent, method and tool'), 5000);
  });

  test('policy apply on the embedded registry reaches the sidecars of this host', async () => {
    const file = join(dir, 'deny.yaml');
    writeFileSync(file, stringify({ default: 'deny', rules: [{ name: 'nobody', from: { identity: `spiffe://${TD}/agent/nobody` }, to: { agent: 'echo' } }] }));
    const cliConfig = join(dir, 'cli.yaml');
    writeFileSync(cliConfig, stringify({ registry: mesh.registry, identity: await mesh.pki.issue(`spiffe://${TD}/admin`) }));
    const run = await runCli(['policy', 'apply', file, '--config', cliConfig]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /policy version 1 applied to .*-policy\/current\.json \(enforce, default deny, 1 rules\)/);
    await waitFor('version 1 on both sidecars', async () => (await Promise.all([echo, caller].map(policyState))).every((s) => s.version === 1), 5000);
    assert.equal(await sendCode(caller), -32060);
  });

  test("the policy's limits reach the rate limiter of the receiving sidecar", async () => {
    const file = join(dir, 'limits.yaml');
    writeFileSync(file, stringify({
      default: 'deny',
      rules: [{ name: 'caller-echoes', from: { identity: `spiffe://${TD}/agent/caller` }, to: { agent: 'echo' } }],
      limits: [{ name: 'one-a-minute', from: { identity: `spiffe://${TD}/agent/caller` }, to: { agent: 'echo' }, rate: '1/m', burst: 1 }],
    }));
    const run = await runCli(['policy', 'apply', file, '--config', join(dir, 'cli.yaml'), '--json']);
    assert.equal(run.code, 0, run.stderr);
    const { version } = JSON.parse(run.stdout) as { version: number };
    await waitFor('the limits policy on both sidecars', async () => (await Promise.all([echo, caller].map(policyState))).every((s) => s.version === version), 5000);
    assert.equal(await sendCode(caller), undefined);
    const res = await fetch(`${caller.outbound}/a2a/echo`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'again' }] } } }),
    });
    const body = await res.json() as { error?: { code: number; message: string } };
    assert.equal(body.error?.code, -32065);
    assert.match(body.error?.message ?? '', /one-a-minute/);
  });

  test('policy.file: reloaded when it changes; a broken edit keeps the last good version', async () => {
    const file = join(dir, 'local.yaml');
    writeFileSync(file, 'default: allow\n');
    const identity = await mesh.pki.issue(`spiffe://${TD}/agent/local`);
    const local = await startSidecarProcess({ registry: mesh.registry, identity, policy: { file } });
    try {
      await waitForAgent(local, 'echo');
      assert.equal((await policyState(local)).version, 1);
      // Its own policy allows, but echo's sidecar (registry policy: default deny) refuses: the receiver decides.
      assert.equal(await sendCode(local), -32060);
      writeFileSync(file, stringify({ default: 'deny', rules: [{ name: 'none', action: 'deny', to: { agent: 'echo' } }] }));
      await waitFor('version 2 from the edited file', async () => (await policyState(local)).version === 2, 5000);
      const res = await fetch(`${local.outbound}/a2a/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: {} }) });
      const denied = await res.json() as { error: { code: number; message: string; data: { rule?: string } } };
      assert.equal(denied.error.code, -32060);
      assert.equal(denied.error.data.rule, 'none'); // the calling sidecar refused it itself, naming its rule
      writeFileSync(file, 'rules: [ { name: broken, to: { agent: echo, methods: [Nope] } } ]\n');
      // (A half-written file may be seen first, as an empty document: wait for the whole one.)
      const state = await waitFor('the broken edit seen', async () => {
        const s = await policyState(local);
        return /rules\.0\.to\.methods\.0: unknown A2A method 'Nope'/.test(s.lastError ?? '') ? s : undefined;
      }, 5000);
      assert.equal(state.version, 2);
      const metrics = await (await fetch(`${local.admin}/metrics`)).text();
      // At least once: an editor's write may be seen half done (an empty file) before the whole broken text.
      assert.ok(Number(/^agentmesh_policy_load_errors_total (\d+)$/m.exec(metrics)?.[1]) >= 1, 'load errors counted');
      assert.equal(/^agentmesh_policy_version (\d+)$/m.exec(metrics)?.[1], '2');
    } finally {
      await local.stop('SIGKILL');
    }
  });

  test('a policy.file that does not validate refuses start-up, naming the key and the path', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'mode: sometimes\n');
    const identity = await mesh.pki.issue(`spiffe://${TD}/agent/bad`);
    const config = join(dir, 'bad-sidecar.yaml');
    writeFileSync(config, stringify({ registry: mesh.registry, identity, policy: { file }, listen: { outbound: '127.0.0.1:0', inbound: '127.0.0.1:0', admin: '127.0.0.1:0' } }));
    const run = await runCli(['sidecar', '--config', config]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /CONFIG_INVALID: invalid policy policy\.file .*bad\.yaml:\n {2}mode: /);
  });
});
