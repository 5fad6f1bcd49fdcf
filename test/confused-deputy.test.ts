// The confused deputy, on real processes: user U may not call tool T; agent A may call T for itself; A
// called on U's behalf is denied T, and the same call for user V is allowed. The verified user travels in
// the signed chain, so the policy (DESIGN "Policy") at A's sidecar and at the tool's sidecar sees U, not A.
// `agentmesh explain` (the same engine, on the same document) is checked to agree with each outcome.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { wordCountDeputy } from './fixtures/agents.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { startTestIdp, type TestIdp } from './support/idp.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';
import { parseArgs } from '../sidecar/cli/args.ts';
import { callFromFlags, explain } from '../sidecar/cli/policy.ts';
import { CompiledPolicy } from '../sidecar/policy/policy-engine.ts';
import { parsePolicy } from '../sidecar/policy/policy-schema.ts';

const AUDIENCE = 'agentmesh-test';

describe('confused deputy', () => {
  let dir: string;
  let mesh: TestMesh;
  let idp: TestIdp;
  let front: SidecarProcess;
  let deputySidecar: SidecarProcess;
  let agent: AgentServer;
  let mcp: TestMcpServer;
  let enforced: CompiledPolicy;

  /** What `agentmesh explain` says about the tool call deputy makes (for `user`, or for itself). */
  function explained(user?: { sub: string; role: string }): { allowed: boolean; rule: string | undefined } {
    const flags = ['explain', '--from', `spiffe://${mesh.trustDomain}/agent/deputy`, '--to', 'mcp:stats', '--tool', 'word_count'];
    if (user) flags.push('--user', JSON.stringify(user), '--via', `spiffe://${mesh.trustDomain}/agent/front`);
    return explain(enforced, callFromFlags(parseArgs(flags, new Set(['json']))));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-deputy-'));
    mesh = await createTestMesh({ backend: 'embedded' });
    idp = await startTestIdp(dir, AUDIENCE);
    const td = mesh.trustDomain;
    // Applied before any workload starts; every sidecar loads the same document.
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, [
      'mode: enforce',
      'default: deny',
      'rules:',
      '  - name: interns-never-count-words',
      '    action: deny',
      '    from: { user: { claims: { role: intern } } }',
      '    to: { mcp: stats, tools: [word_count] }',
      '  - name: deputy-counts-words',
      `    from: { identity: "spiffe://${td}/agent/deputy" }`,
      '    to: { mcp: stats, tools: [word_count] }',
      '  - name: front-asks-deputy',
      `    from: { identity: "spiffe://${td}/agent/front" }`,
      '    to: { agent: deputy }',
    ].join('\n'));
    const policy = { policy: { file: policyFile } };
    enforced = new CompiledPolicy(parsePolicy(readFileSync(policyFile, 'utf8'), policyFile), 1);
    mcp = await serveTestMcp(['word_count']);
    agent = await serveAgent({ name: 'deputy', executor: wordCountDeputy(() => deputySidecar.outbound) });
    await mesh.sidecar('stats', { ...policy, mcp: { servers: [{ name: 'stats', url: mcp.url }] } });
    deputySidecar = await mesh.sidecar('deputy', { ...policy, agent: { url: agent.url } });
    front = await mesh.sidecar('front', {
      ...policy,
      auth: { jwt: { issuer: idp.issuer, audiences: [AUDIENCE], jwksFile: idp.jwksFile, algorithms: ['ES256'], claims: ['role'] } },
    });
    await waitForAgent(front, 'deputy');
    await waitFor('stats visible', async () => (await (await fetch(`${deputySidecar.outbound}/registry/mcp`)).text()).includes('"stats"'), 15_000);
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
    await mcp?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function ask(user: { sub: string; role: string }, text: string): Promise<string> {
    const res = await rawRequest(front.outbound, {
      method: 'POST', path: '/a2a/deputy/message:send',
      headers: { host: new URL(front.outbound).host, 'content-type': 'application/json', 'a2a-version': '1.0', authorization: `Bearer ${await idp.token(user)}` },
      body: JSON.stringify({ message: { messageId: `m-${Math.random()}`, role: 'ROLE_USER', parts: [{ text }] } }),
    });
    assert.equal(res.status, 200, res.body);
    return res.body;
  }

  test('A may call T for itself', async () => {
    assert.match(await ask({ sub: 'u', role: 'intern' }, 'tool-self'), /allowed: .*word_count/);
    assert.equal(explained().allowed, true); // explain agrees
  });

  test('A called on behalf of U (who may not call T) is denied T', async () => {
    assert.match(await ask({ sub: 'u', role: 'intern' }, 'tool'), /denied: .*interns-never-count-words/);
    assert.deepEqual(explained({ sub: 'u', role: 'intern' }), { ...explained({ sub: 'u', role: 'intern' }), allowed: false, rule: 'interns-never-count-words' });
  });

  test('the same call for V (who may) is allowed', async () => {
    assert.match(await ask({ sub: 'v', role: 'analyst' }, 'tool'), /allowed: .*word_count/);
    assert.equal(explained({ sub: 'v', role: 'analyst' }).allowed, true);
  });
});
