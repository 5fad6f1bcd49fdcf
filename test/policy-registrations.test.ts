// The policy's `registrations` feed the registry's name binding, on real processes over NATS: an identity
// without a grant for a name cannot start a sidecar announcing it (exit 1, naming both) and readers ignore
// its records; after `agentmesh policy apply` with a registration for it, readers admit it at once and it
// serves calls; a version without the registration makes readers drop it, before its TTL could.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import { openRegistry, type Registry } from '../registry/index.ts';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { meshSigning } from './support/record-signing.ts';
import { agentRecord } from './support/registry-records.ts';
import { createTestMesh, waitForAgent, waitForAgentGone, type TestMesh } from './support/mesh.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const TD = 'mesh.test';
const IMPOSTOR = `spiffe://${TD}/agent/impostor`;
/** Far longer than a policy takes to apply (5 s): whatever happens sooner is the rebind, not a heartbeat or expiry. */
const TTL = '60s';
const APPLIES_WITHIN_MS = 12_000;

function policyText(registrations: unknown[]): string {
  return stringify({ mode: 'enforce', default: 'allow', registrations, rules: [] });
}

async function rejectedNotOwned(sidecar: SidecarProcess): Promise<number> {
  const metrics = await (await fetch(`${sidecar.admin}/metrics`)).text();
  return Number(/^agentmesh_registry_rejected_total\{[^}]*reason="name_not_owned"[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
}

describe('policy registrations bind names (NATS)', () => {
  let mesh: TestMesh;
  let dir: string;
  let cliConfig: string;
  let agent: AgentServer;
  let front: SidecarProcess;
  let writer: Registry | undefined;

  async function apply(text: string): Promise<void> {
    const file = join(dir, `policy-${randomUUID()}.yaml`);
    writeFileSync(file, text);
    const run = await runCli(['policy', 'apply', file, '--config', cliConfig, '--json']);
    assert.equal(run.code, 0, run.stderr);
  }

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', trustDomain: TD, ttl: TTL });
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-registrations-'));
    cliConfig = join(dir, 'admin.yaml');
    writeFileSync(cliConfig, stringify({ registry: mesh.registry, identity: await mesh.pki.issue(`spiffe://${TD}/admin`) }));
    await apply(policyText([])); // before any workload starts
    agent = await serveAgent({ name: 'helper', executor: echoExecutor() });
    front = await mesh.sidecar('front');
  });
  after(async () => {
    await writer?.close();
    await mesh?.close();
    await agent?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a grant: the sidecar exits 1 naming the name and its identity; readers ignore its records', async () => {
    await assert.rejects(mesh.sidecar('impostor', { agent: { url: agent.url, name: 'helper' } }),
      /sidecar exited with 1:[\s\S]*agent\.name 'helper' is not owned by this sidecar's identity spiffe:\/\/mesh\.test\/agent\/impostor/);
    // A record for the name signed by that identity, written past any sidecar.
    const ttlMs = 60_000;
    writer = await openRegistry({ nats: mesh.nats?.url ?? '', bucket: String(mesh.registry.bucket), ttlMs, name: 'registrations-writer', signer: meshSigning(mesh.pki.ca, TD).signer });
    const before = await rejectedNotOwned(front);
    await writer.announce({ ...agentRecord('helper', 'raw'), identity: IMPOSTOR });
    await waitFor('front refuses the record', async () => (await rejectedNotOwned(front)) > before, 10_000);
    const listed = await (await fetch(`${front.outbound}/registry/agents?name=helper`)).json() as { agents: unknown[] };
    assert.deepEqual(listed.agents, []);
  });

  test('after policy apply with a registration: readers admit the record it refused, and a sidecar with the name starts and serves calls', async () => {
    await apply(policyText([{ identity: IMPOSTOR, agents: ['helper'] }]));
    // Admitted from the value refused earlier, not at the writer's next heartbeat (20 s away).
    await waitForAgent(front, 'helper');
    await writer?.close(); // withdraws its record (a signed tombstone)
    writer = undefined;
    await waitForAgentGone(front, 'helper', 10_000);

    const impostor = await mesh.sidecar('impostor', { agent: { url: agent.url, name: 'helper' } });
    assert.equal((await (await fetch(`${impostor.admin}/api/state`)).json() as { agent: string }).agent, 'helper');
    await waitForAgent(front, 'helper');
    const res = await fetch(`${front.outbound}/a2a/helper`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }] } } }),
    });
    const body = await res.json() as { result?: unknown; error?: unknown };
    assert.equal(body.error, undefined, JSON.stringify(body));
    assert.match(JSON.stringify(body.result), /echo: hi/);
  });

  test('a version without the registration makes readers drop the name before its TTL would', async () => {
    const before = await rejectedNotOwned(front);
    await apply(policyText([]));
    const took = await waitForAgentGone(front, 'helper', APPLIES_WITHIN_MS);
    assert.ok(took < APPLIES_WITHIN_MS);
    assert.ok(await rejectedNotOwned(front) > before, 'the drop is counted as a name_not_owned rejection');
    const res = await fetch(`${front.outbound}/a2a/helper`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: { messageId: randomUUID(), role: 'ROLE_USER', parts: [{ text: 'hi' }] } } }),
    });
    const body = await res.json() as { error?: { code: number } };
    assert.equal(body.error?.code, -32050); // AGENT_NOT_FOUND
  });
});
