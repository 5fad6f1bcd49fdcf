// No credential crosses a hop: authorization, cookie, proxy-authorization, x-api-key and the names in the
// calling sidecar's hop.dropHeaders never arrive at the next agent or MCP server (A2A JSON-RPC, A2A REST,
// MCP pass-through), while ordinary headers do. Real sidecar processes, a real agent and MCP server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import { waitFor } from './support/wait.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

const CREDENTIALS = {
  authorization: 'Bearer user-token', cookie: 'session=abc', 'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
  'x-api-key': 'sk-secret', 'x-tenant-token': 'configured-secret',
};
const MESSAGE = (id: string) => ({ messageId: id, role: 'ROLE_USER', parts: [{ text: 'hi' }] });

describe('credential headers are dropped before the first hop', () => {
  let mesh: TestMesh;
  let agent: AgentServer;
  let mcp: TestMcpServer;
  let caller: SidecarProcess;
  /** Headers of every request the agent and the MCP server received from a sidecar. */
  const arrived: Record<string, string | string[] | undefined>[] = [];

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    agent = await serveAgent({
      name: 'keeper', executor: echoExecutor(),
      configure: (app) => app.use((req, _res, next) => { if (req.headers['x-agentmesh-caller']) arrived.push({ ...req.headers }); next(); }),
    });
    mcp = await serveTestMcp(['t'], { onRequest: (h) => { if (h['x-agentmesh-caller']) arrived.push({ ...h }); } });
    await mesh.sidecar('keeper', { agent: { url: agent.url }, mcp: { servers: [{ name: 'vault', url: mcp.url }] } });
    caller = await mesh.sidecar('spender', { hop: { dropHeaders: ['X-Tenant-Token'] } });
    await waitForAgent(caller, 'keeper');
    await waitFor('vault visible', async () => (await (await fetch(`${caller.outbound}/registry/mcp`)).text()).includes('"vault"'), 15_000);
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
    await mcp?.close();
  });

  test('none of them arrives over A2A JSON-RPC, A2A REST or MCP; other headers do', async () => {
    const headers = { ...CREDENTIALS, 'x-keep-me': 'visible', 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'a2a-version': '1.0' };
    const calls = [
      { path: '/a2a/keeper', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: MESSAGE('c1') } }) },
      { path: '/a2a/keeper/message:send', body: JSON.stringify({ message: MESSAGE('c2') }) },
      { path: '/mcp/vault', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) },
    ];
    for (const call of calls) {
      const before = arrived.length;
      const res = await rawRequest(caller.outbound, { method: 'POST', path: call.path, headers: { ...headers, host: new URL(caller.outbound).host }, body: call.body });
      assert.equal(res.status, 200, `${call.path}: ${res.body}`);
      const received = arrived.slice(before);
      assert.ok(received.length > 0, `${call.path}: nothing arrived`);
      for (const h of received) {
        for (const name of Object.keys(CREDENTIALS)) assert.equal(h[name], undefined, `${call.path}: ${name} arrived`);
        assert.equal(h['x-keep-me'], 'visible', `${call.path}: an ordinary header was lost`);
      }
    }
  });
});
