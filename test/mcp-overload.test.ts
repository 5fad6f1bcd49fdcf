// Overload protection for a local MCP server, with real processes: a caller over its share of the
// server (its calls running and queued while another caller waits) gets 429 + Retry-After at once,
// and the other caller is served first when a slot frees, ahead of the busy caller's queued calls.
// @serial: run alone (scripts/run-tests.mjs), its figures are timings and memory of whole processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Pool } from 'undici';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

/** A stateless Streamable HTTP MCP server: `hold` waits until released one by one, `echo` answers at once. */
async function serveHeldMcp() {
  const held: (() => void)[] = [];
  let open = false;
  const app = createMcpExpressApp({ host: '127.0.0.1' });
  app.post('/mcp', async (req, res) => {
    const mcp = new McpServer({ name: 'held', version: '1.0.0' });
    mcp.registerTool('hold', { description: 'waits until the test releases it' }, async () => {
      if (!open) await new Promise<void>((resolve) => held.push(resolve));
      return { content: [{ type: 'text', text: 'released' }] };
    });
    mcp.registerTool('echo', { description: 'answers at once' }, async () => ({ content: [{ type: 'text', text: 'echo' }] }));
    const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true }) // stateless: no session id;
    res.on('close', () => { void transport.close(); void mcp.close(); });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  const http: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`,
    get waiting() { return held.length; },
    releaseOne() { held.shift()?.(); },
    /** Releases every held call and lets later ones through at once. */
    open() {
      open = true;
      for (const r of held.splice(0)) r();
    },
    async close() {
      await new Promise((resolve) => { http.close(resolve); http.closeAllConnections(); });
    },
  };
}

interface McpAnswer {
  status: number;
  retryAfter: string | undefined;
  code: number | undefined;
  text: string | undefined;
}

let ids = 0;
/** One tools/call through a caller sidecar's `/mcp/held` route. */
async function callTool(pool: Pool, tool: string): Promise<McpAnswer> {
  const res = await pool.request({
    path: '/mcp/held', method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++ids, method: 'tools/call', params: { name: tool, arguments: {} } }),
  });
  const body = await res.body.json() as { result?: { content?: { text?: string }[] }; error?: { code: number } };
  return {
    status: res.statusCode, retryAfter: typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined,
    code: body.error?.code, text: body.result?.content?.[0]?.text,
  };
}

describe('MCP server admission (real processes)', () => {
  let mesh: TestMesh;
  let server: Awaited<ReturnType<typeof serveHeldMcp>>;
  let tools: SidecarProcess;
  const pools: Pool[] = [];

  before(async () => {
    server = await serveHeldMcp();
    mesh = await createTestMesh({ backend: 'embedded', ttl: '30s' });
    // A fixed limit of 2 calls at the server, so the share per caller is 1 while two callers are active.
    tools = await mesh.sidecar('tools', { mcp: { servers: [{ name: 'held', url: server.url }] }, limits: { concurrency: { initial: 2, min: 2, max: 2 }, queue: 10 } });
  });
  after(async () => {
    server?.open();
    await Promise.allSettled(pools.map((p) => p.destroy()));
    await mesh?.close();
    await server?.close();
  });

  test('a caller over its share of an MCP server gets 429 + Retry-After at once while another caller is served', async () => {
    const greedy = await mesh.sidecar('greedy');
    const modest = await mesh.sidecar('modest');
    for (const s of [greedy, modest]) {
      await waitFor('MCP server held visible', async () => (await (await fetch(`${s.outbound}/registry/mcp`)).text()).includes('"held"'), 20_000);
    }
    const greedyPool = new Pool(greedy.outbound, { connections: null });
    const modestPool = new Pool(modest.outbound, { connections: null });
    pools.push(greedyPool, modestPool);
    const admission = async () => {
      const state = await (await fetch(`${tools.admin}/api/state`)).json() as { overload: { mcp: Record<string, { inflight: number; queued: number; rejected: Record<string, number> }> } };
      return state.overload.mcp.held;
    };

    // The busy caller fills the limit (2 calls held at the server) and queues 2 more; alone, it may.
    const greedyCalls = Array.from({ length: 4 }, () => callTool(greedyPool, 'hold'));
    await waitFor('2 calls running and 2 queued', async () => server.waiting === 2 && (await admission())?.queued === 2);
    // The other caller arrives: its call is queued (nothing is free) and the busy caller is over its share.
    const modestCall = callTool(modestPool, 'echo');
    await waitFor('the other caller queued', async () => (await admission())?.queued === 3);
    const started = performance.now();
    const over = await callTool(greedyPool, 'hold');
    const refusedInMs = performance.now() - started;
    assert.deepEqual({ status: over.status, code: over.code, retryAfter: over.retryAfter }, { status: 429, code: -32062, retryAfter: '1' }, JSON.stringify(over));
    assert.equal(server.waiting, 2, 'the refused call never reached the server');
    assert.ok(refusedInMs < 5000, `refused in ${refusedInMs.toFixed(0)} ms, not after a wait`);

    // One slot frees: the other caller's call goes first, ahead of the busy caller's two queued calls.
    server.releaseOne();
    const served = await modestCall;
    assert.deepEqual({ status: served.status, text: served.text }, { status: 200, text: 'echo' });
    const after = await admission();
    assert.ok(after, 'the server has an admission state');
    assert.equal(after.rejected['caller-share'], 1);
    assert.equal(after.queued, 1, 'one of the busy caller\'s calls is still queued (the other took the slot the echo freed)');

    server.open();
    const done = await Promise.all(greedyCalls);
    assert.deepEqual(done.map((a) => [a.status, a.text]), Array.from({ length: 4 }, () => [200, 'released']));
  });
});
