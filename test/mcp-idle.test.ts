// Abandoned MCP sessions end (mcp.sessionIdleTimeout, real processes): a stdio session's process exits
// and its id then gets 404, also for the federated `/mcp`; a session with an open GET stream stays.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import { ROOT, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const STDIO = { name: 'text', command: [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/mcp-stdio-server.ts')], cwd: ROOT };
const IDLE = '1s';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function connect(url: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'idle-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

async function pidOf(client: Client, tool: string): Promise<number> {
  const result = await client.callTool({ name: tool, arguments: {} }) as { content: { text: string }[] };
  return Number(result.content[0]?.text);
}

/** A request naming the session, as a client coming back after the timeout would send it. */
async function statusFor(url: string, sessionId: string): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
  });
  await res.body?.cancel();
  return res.status;
}

describe('idle MCP sessions end', () => {
  let mesh: TestMesh;
  let owner: SidecarProcess;
  let caller: SidecarProcess;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    owner = await mesh.sidecar('textsvc', { mcp: { servers: [STDIO], sessionIdleTimeout: IDLE } });
    caller = await mesh.sidecar('caller', { mcp: { sessionIdleTimeout: IDLE } });
    await waitFor('text in the registry', async () => {
      const body = await (await fetch(`${caller.outbound}/registry/mcp`)).json() as { servers: { name: string }[] };
      return body.servers.some((s) => s.name === 'text');
    }, 30_000);
  });
  after(async () => {
    await mesh?.close();
  });

  test('an abandoned stdio session\'s process exits and its id gets 404; one with an open GET stream stays', async () => {
    // Opened first, and kept open: its GET stream keeps it from going idle.
    const kept = await connect(`${caller.outbound}/mcp/text`);
    const keptPid = await pidOf(kept.client, 'pid');
    const abandoned = await connect(`${caller.outbound}/mcp/text`);
    const abandonedPid = await pidOf(abandoned.client, 'pid');
    const sessionId = abandoned.transport.sessionId ?? '';
    assert.notEqual(keptPid, abandonedPid, 'each session has its own process');
    await abandoned.client.close(); // no DELETE: the client just goes away
    try {
      await waitFor(`process ${abandonedPid} of the abandoned session to exit`, () => !alive(abandonedPid), 20_000);
      assert.equal(await statusFor(`${caller.outbound}/mcp/text`, sessionId), 404);
      assert.ok(alive(keptPid), 'the session with an open GET stream keeps its process');
      assert.equal(await pidOf(kept.client, 'pid'), keptPid);
      const state = await (await fetch(`${owner.admin}/api/state`)).json() as { resources: { mcpSessions: { stdio: number } } };
      assert.equal(state.resources.mcpSessions.stdio, 1);
    } finally {
      await kept.transport.terminateSession().catch(() => undefined);
      await kept.client.close();
    }
  });

  test('an abandoned federated session gets 404 and the stdio process behind it exits', async () => {
    const federated = await connect(`${caller.outbound}/mcp`);
    const pid = await pidOf(federated.client, 'text__pid');
    const sessionId = federated.transport.sessionId ?? '';
    await federated.client.close();
    await waitFor(`process ${pid} behind the federated session to exit`, () => !alive(pid), 20_000);
    // Watched from the admin API: a request naming the session would itself count as use and keep it alive.
    const sessionsNow = async () => (await (await fetch(`${caller.admin}/api/state`)).json() as { resources: { mcpSessions: Record<string, number> } }).resources.mcpSessions;
    await waitFor('the federated session to end', async () => (await sessionsNow()).federated === 0, 30_000);
    assert.equal(await statusFor(`${caller.outbound}/mcp`, sessionId), 404);
    assert.deepEqual(await sessionsNow(), { outbound: 0, federated: 0, federatedUpstreams: 0, stdio: 0 });
  });
});
