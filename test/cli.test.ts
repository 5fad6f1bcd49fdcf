// The CLI as a user runs it against a local sidecar: `agents`, `tools` and `call`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { streamingExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { ROOT, runCli, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

describe('agentmesh agents | tools | call', () => {
  let mesh: TestMesh;
  let local: SidecarProcess;
  let agent: AgentServer;
  let env: Record<string, string>;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    agent = await serveAgent({ name: 'writer', skills: [{ id: 'summarize', tags: ['text'] }], executor: streamingExecutor({ chunks: 2 }) });
    await mesh.sidecar('writer', {
      agent: { url: agent.url, labels: { team: 'docs' } },
      mcp: { servers: [{ name: 'text', command: [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/mcp-stdio-server.ts')], cwd: ROOT }] },
    });
    local = await mesh.sidecar('me');
    await waitForAgent(local, 'writer');
    await waitFor('the text MCP server', async () => ((await (await fetch(`${local.outbound}/registry/mcp`)).json()) as { servers: unknown[] }).servers.length === 1, 20_000);
    env = { AGENTMESH_URL: local.outbound };
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
  });

  test('agents lists what the registry holds, filtered by skill', async () => {
    const table = await runCli(['agents'], { env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /NAME\s+INSTANCES\s+SKILLS\s+IDENTITY/);
    assert.match(table.stdout, /writer\s+1\s+summarize\s+spiffe:\/\/mesh\.test\/agent\/writer/);
    const json = await runCli(['agents', '--skill', 'text', '--json'], { env });
    const parsed = JSON.parse(json.stdout) as { name: string; labels: Record<string, string> }[];
    assert.deepEqual(parsed.map((a) => [a.name, a.labels.team]), [['writer', 'docs']]);
    const none = await runCli(['agents', '--skill', 'cooking'], { env });
    assert.match(none.stdout, /no agent has the skill 'cooking' \(1 agent registered/);
    const typo = await runCli(['agents', '--skill', 'summarise'], { env });
    assert.match(typo.stdout, /no agent has the skill 'summarise' \(did you mean 'summarize'\?\)/);
  });

  test('tools lists MCP servers and their tools under their federated names', async () => {
    const out = await runCli(['tools'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /text__reverse\s+text\s+1\s+pinned\s+Reverses text/); // INTEGRITY: pinned at first use
    const json = JSON.parse((await runCli(['tools', '--json'], { env })).stdout) as { name: string; tools: { name: string }[] }[];
    assert.deepEqual(json[0]?.tools.map((t) => t.name).sort(), ['crash', 'pid', 'reverse']);
  });

  test('call streams the result of a message through the local sidecar', async () => {
    const out = await runCli(['call', 'writer', 'hello', 'there'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /task \S+ submitted/);
    assert.match(out.stdout, /chunk 1/);
    assert.match(out.stdout, /\[completed\] done/);
  });

  test('call --json prints each stream event as JSON; tap shows the call live', async () => {
    const tap = runCli(['tap', '--json', '--count', '1', '--method', 'SendStreamingMessage', '--admin', local.admin]);
    await waitFor('the tap client connected', async () => ((await (await fetch(`${local.admin}/api/state`)).json()) as { tap: { clients: number } }).tap.clients === 1);
    const out = await runCli(['call', 'writer', 'hello', '--json'], { env });
    assert.equal(out.code, 0, out.stderr);
    const events = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { $case: string });
    assert.ok(events.some((e) => e.$case === 'task'));
    const tapped = await tap;
    assert.equal(tapped.code, 0, tapped.stderr);
    const event = JSON.parse(tapped.stdout) as { method: string; target: string; status: number; requestId: string };
    assert.equal(event.method, 'SendStreamingMessage');
    assert.equal(event.target, 'agent/writer');
    assert.equal(event.status, 200);
    assert.match(event.requestId, /^[0-9a-f-]{36}$/);
  });

  test('errors name the problem and exit non-zero', async () => {
    const typo = await runCli(['call', 'writr', 'hi'], { env });
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /AGENT_NOT_FOUND: agent 'writr' not found in the mesh \(did you mean 'writer'\?\)/);
    const unknown = await runCli(['call', 'nobody', 'hi'], { env });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /AGENT_NOT_FOUND: agent 'nobody' not found/);
    const down = await runCli(['agents'], { env: { AGENTMESH_URL: 'http://127.0.0.1:9' } });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /SIDECAR_UNREACHABLE: cannot reach the agentmesh sidecar at http:\/\/127\.0\.0\.1:9/);
  });
});
