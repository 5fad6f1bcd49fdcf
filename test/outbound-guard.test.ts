// The outbound listener trusts its host and only its host: browser-style requests with a foreign or
// `null` Origin, a foreign Host (however disguised) or cross-site Fetch Metadata get 403 on every route
// and reach no agent and no MCP server; the same requests from the host go through. Real processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor, type Counted } from './fixtures/agents.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import { waitFor } from './support/wait.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';

let sent = 0;
/** A fresh message id each time: the receiving sidecar deduplicates SendMessage by message id. */
const message = () => ({ messageId: `g${++sent}`, role: 'ROLE_USER', parts: [{ text: 'hi' }] });
const SEND = () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: message() } });
const REST_SEND = () => JSON.stringify({ message: message() });
const INIT = () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'a2a-version': '1.0' };

/** Every route of the outbound listener, as a request an attacker's page could make. */
const ROUTES = [
  { name: 'agent card', method: 'GET', path: '/a2a/target/.well-known/agent-card.json' },
  { name: 'A2A JSON-RPC', method: 'POST', path: '/a2a/target', body: SEND },
  { name: 'A2A REST', method: 'POST', path: '/a2a/target/message:send', body: REST_SEND },
  { name: 'registry agents', method: 'GET', path: '/registry/agents' },
  { name: 'registry mcp', method: 'GET', path: '/registry/mcp' },
  { name: 'MCP pass-through', method: 'POST', path: '/mcp/gtools', body: INIT },
  { name: 'federated MCP', method: 'POST', path: '/mcp', body: INIT },
  { name: 'unknown route', method: 'GET', path: '/nothing-here' },
] as const;

describe('the outbound listener guard', () => {
  let mesh: TestMesh;
  let agent: AgentServer;
  let executor: Counted;
  let mcp: TestMcpServer;
  let mcpCalls = 0;
  let caller: SidecarProcess;
  let port = '';

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    const ex = echoExecutor();
    executor = ex;
    agent = await serveAgent({ name: 'target', executor: ex });
    // Only calls forwarded by a sidecar carry x-agentmesh-caller; the tool watcher's own calls do not count.
    mcp = await serveTestMcp(['ping_tool'], { onRequest: (h) => { if (h['x-agentmesh-caller']) mcpCalls++; } });
    await mesh.sidecar('target', { agent: { url: agent.url } });
    await mesh.sidecar('gtools', { mcp: { servers: [{ name: 'gtools', url: mcp.url }] } });
    caller = await mesh.sidecar('browserhost');
    port = new URL(caller.outbound).port;
    await waitForAgent(caller, 'target');
    await waitFor('gtools in the registry', async () => (await (await fetch(`${caller.outbound}/registry/mcp`)).text()).includes('gtools'), 15_000);
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
    await mcp?.close();
  });

  const hostile = () => [
    { label: 'a foreign Origin', headers: { host: `127.0.0.1:${port}`, origin: 'https://evil.example' } },
    { label: 'Origin null', headers: { host: `127.0.0.1:${port}`, origin: 'null' } },
    { label: 'a foreign Host', headers: { host: `evil.example:${port}` } },
    { label: 'a Host with userinfo', headers: { host: '127.0.0.1:1@evil.example' } },
    { label: 'a rebound name with a loopback-looking prefix', headers: { host: `127.0.0.1.evil.example:${port}` } },
    { label: 'cross-site Fetch Metadata without Origin', headers: { host: `localhost:${port}`, 'sec-fetch-site': 'cross-site' } },
  ];

  test('every route refuses every browser-style request with 403, and nothing reaches an agent or MCP server', async () => {
    const before = { agent: executor.executions, mcp: mcpCalls };
    for (const route of ROUTES) {
      for (const { label, headers } of hostile()) {
        const res = await rawRequest(caller.outbound, { method: route.method, path: route.path, headers: { ...JSON_HEADERS, ...headers }, ...('body' in route ? { body: route.body() } : {}) });
        assert.equal(res.status, 403, `${route.name} with ${label}: ${res.body}`);
        assert.match(res.body, /FORBIDDEN/, `${route.name} with ${label}`);
        assert.match(res.body, /acts as the local agent/);
      }
    }
    assert.equal(executor.executions, before.agent, 'no A2A call reached the agent');
    assert.equal(mcpCalls, before.mcp, 'no MCP request reached the server');
  });

  test('the same requests from the host itself go through (loopback Host, loopback or no Origin)', async () => {
    const before = { agent: executor.executions, mcp: mcpCalls };
    for (const headers of [{ host: `127.0.0.1:${port}` }, { host: `localhost:${port}`, origin: 'http://localhost:5173' }, { host: `[::1]:${port}`, 'sec-fetch-site': 'same-origin' }]) {
      for (const route of ROUTES) {
        const res = await rawRequest(caller.outbound, { method: route.method, path: route.path, headers: { ...JSON_HEADERS, ...headers }, ...('body' in route ? { body: route.body() } : {}) });
        assert.notEqual(res.status, 403, `${route.name} with ${JSON.stringify(headers)}: ${res.body}`);
      }
    }
    assert.equal(executor.executions, before.agent + 6, 'JSON-RPC and REST sends reached the agent three times each');
    assert.ok(mcpCalls > before.mcp, 'the MCP initialize reached the server');
  });

  test('a Unix-socket outbound listener: mode 0600, A2A and the federated MCP route work, a stale socket is replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentmesh-sock-'));
    try {
      const socket = join(dir, 'outbound.sock');
      const config = { listen: { outbound: `unix:${socket}`, inbound: '127.0.0.1:0', admin: '127.0.0.1:0' } };
      const first = await mesh.sidecar('unixcaller', config);
      assert.equal(first.outbound, `unix:${socket}`);
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      await waitFor('target visible over the socket', async () => (await rawRequest(first.outbound, { path: '/registry/agents?name=target', headers: { host: 'localhost' } })).body.includes('"target"'), 15_000);
      const sent = await rawRequest(first.outbound, { method: 'POST', path: '/a2a/target', headers: { ...JSON_HEADERS, host: 'localhost' }, body: SEND() });
      assert.equal(sent.status, 200, sent.body);
      assert.match(sent.body, /echo: hi/);
      // The federated /mcp server calls the sidecar's own /mcp/{server} route: over the socket too.
      const dispatcher = new Agent({ connect: { socketPath: socket } });
      const viaSocket = ((url: string | URL, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher })) as unknown as FetchLike;
      const client = new Client({ name: 'unix-test', version: '1' });
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL('http://localhost/mcp'), { fetch: viaSocket }));
        const result = await client.callTool({ name: 'gtools__ping_tool', arguments: { text: 'over unix' } });
        assert.match(JSON.stringify(result), /ping_tool:over unix/);
      } finally {
        await client.close();
        await dispatcher.close();
      }
      // A crashed sidecar leaves its socket file behind; the next one replaces it.
      await first.stop('SIGKILL');
      assert.ok(statSync(socket).isSocket());
      const second = await mesh.sidecar('unixcaller', config);
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      assert.equal((await rawRequest(second.outbound, { path: '/registry/mcp', headers: { host: 'localhost' } })).status, 200);
      await second.stop();
      // A path that holds something else is never replaced.
      const plain = join(dir, 'not-a-socket');
      writeFileSync(plain, 'keep me');
      const identity = await mesh.pki.issue(`spiffe://${mesh.trustDomain}/agent/unixbad`);
      const run = await runCli(['sidecar', '--listen.outbound', `unix:${plain}`, '--listen.inbound', '127.0.0.1:0', '--listen.admin', '127.0.0.1:0',
        '--registry.dir', String(mesh.registry.dir), ...Object.entries(identity).flatMap(([k, v]) => [`--identity.${k}`, v])]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /listen\.outbound: unix:.*not-a-socket exists and is not a socket/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
