// `/mcp/{server}` is a transparent MCP proxy: an MCP SDK client on sidecar A reaches
// @modelcontextprotocol/server-everything behind sidecar B (real processes, mTLS) and gets what it gets
// when connected directly — tools, resources, prompts, progress, logging, sampling, elicitation, cancel.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { startEverything, type Everything } from './support/everything.ts';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import { waitFor } from './support/wait.ts';
import type { SidecarProcess } from './support/sidecar-process.ts';

async function connectClient(url: string): Promise<Client> {
  const client = new Client({ name: 'mesh-test', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
    model: 'test-model', role: 'assistant', stopReason: 'endTurn',
    content: { type: 'text', text: `sampled: ${JSON.stringify(request.params.messages[0]?.content)}` },
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada', color: 'blue', email: 'ada@example.com', age: 36, score: 50 } }));
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

describe('MCP through /mcp/{server}', () => {
  let mesh: TestMesh;
  let everything: Everything;
  let caller: SidecarProcess;
  let tools: SidecarProcess;
  let viaMesh: Client;
  let direct: Client;

  before(async () => {
    everything = await startEverything();
    mesh = await createTestMesh({ backend: 'nats' });
    tools = await mesh.sidecar('tools', { mcp: { servers: [{ name: 'everything', url: everything.url }] } });
    caller = await mesh.sidecar('caller');
    await waitFor('everything in the registry', async () => {
      const body = await (await fetch(`${caller.outbound}/registry/mcp`)).json() as { servers: { name: string }[] };
      return body.servers.some((s) => s.name === 'everything');
    }, 20_000);
    viaMesh = await connectClient(`${caller.outbound}/mcp/everything`);
    direct = await connectClient(everything.url);
  });
  after(async () => {
    await Promise.allSettled([viaMesh?.close(), direct?.close()]);
    await mesh?.close();
    await everything?.stop();
  });

  test('lists and calls tools', async () => {
    const [a, b] = await Promise.all([viaMesh.listTools(), direct.listTools()]);
    assert.deepEqual(a.tools.map((t) => t.name).sort(), b.tools.map((t) => t.name).sort());
    assert.ok(a.tools.some((t) => t.name === 'get-sum'));
    const sum = await viaMesh.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } });
    assert.deepEqual(sum, await direct.callTool({ name: 'get-sum', arguments: { a: 20, b: 22 } }));
    assert.match(JSON.stringify(sum), /42/);
  });

  test('reads resources', async () => {
    const [a, b] = await Promise.all([viaMesh.listResources(), direct.listResources()]);
    assert.deepEqual(a, b);
    const uri = a.resources[0]?.uri ?? '';
    assert.deepEqual(await viaMesh.readResource({ uri }), await direct.readResource({ uri }));
  });

  test('gets prompts', async () => {
    const [a, b] = await Promise.all([viaMesh.listPrompts(), direct.listPrompts()]);
    assert.deepEqual(a, b);
    assert.deepEqual(await viaMesh.getPrompt({ name: 'simple-prompt' }), await direct.getPrompt({ name: 'simple-prompt' }));
  });

  test('receives progress notifications', async () => {
    const progress: Progress[] = [];
    const result = await viaMesh.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: (p) => progress.push(p) });
    assert.equal(progress.length, 3);
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3]);
    assert.match(JSON.stringify(result), /completed/i);
  });

  test('receives logging notifications', async () => {
    const messages: unknown[] = [];
    viaMesh.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { messages.push(n.params); });
    await viaMesh.setLoggingLevel('debug');
    await viaMesh.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    try {
      await waitFor('a logging notification through the mesh', () => messages.length > 0, 15_000);
    } finally {
      await viaMesh.callTool({ name: 'toggle-simulated-logging', arguments: {} });
    }
  });

  test('answers a sampling request from the server', async () => {
    const result = await viaMesh.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'hello from the mesh', maxTokens: 10 } });
    assert.match(JSON.stringify(result), /sampled: .*hello from the mesh/);
  });

  test('answers an elicitation request from the server', async () => {
    const result = await viaMesh.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    assert.match(JSON.stringify(result), /Ada/);
  });

  test('cancels a running call', async () => {
    const controller = new AbortController();
    const progress: Progress[] = [];
    const call = viaMesh.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => { progress.push(p); if (progress.length === 1) controller.abort(new Error('user gave up')); },
    });
    await assert.rejects(call, /user gave up|abort/i);
    // The session is still usable after the cancellation.
    assert.match(JSON.stringify(await viaMesh.callTool({ name: 'echo', arguments: { message: 'after cancel' } })), /after cancel/);
  });

  test('an unknown server is a 404 naming it', async () => {
    const res = await fetch(`${caller.outbound}/mcp/nowhere`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }) });
    assert.equal(res.status, 404);
    assert.match(JSON.stringify(await res.json()), /MCP server 'nowhere' not found/);
  });

  test('a disallowed Origin or Host is refused with 403', async () => {
    const init = { method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) };
    const evil = await fetch(`${caller.outbound}/mcp/everything`, { ...init, headers: { 'content-type': 'application/json', origin: 'https://evil.example' } });
    assert.equal(evil.status, 403);
    assert.match(JSON.stringify(await evil.json()), /Origin 'https:\/\/evil\.example' is not a loopback http\(s\) origin/);
    const fedEvil = await fetch(`${caller.outbound}/mcp`, { ...init, headers: { 'content-type': 'application/json', origin: 'http://attacker.test:8080' } });
    assert.equal(fedEvil.status, 403);
    const local = await fetch(`${caller.outbound}/mcp/everything`, { ...init, headers: { 'content-type': 'application/json', origin: 'http://localhost:6274' } });
    assert.notEqual(local.status, 403);
    // A rebound DNS name reaches the loopback listener with a foreign Host header.
    const url = new URL(caller.outbound);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/mcp/everything', method: 'POST', headers: { host: `attacker.test:${url.port}`, 'content-type': 'application/json' } }, (res) => { res.resume(); resolve(res.statusCode); });
      req.on('error', reject);
      req.end(init.body);
    });
    assert.equal(status, 403);
  });

  test('a body over the limit is refused with 413', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(5 * 1024 * 1024) } });
    const res = await fetch(`${caller.outbound}/mcp/everything`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(res.status, 413);
  });

  test('metrics name MCP methods alike on both sides, and a client closing its GET stream is no error', async () => {
    await viaMesh.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    // A session of our own with a GET (listen) stream, closed by us once both sidecars pass it on.
    const url = `${caller.outbound}/mcp/everything`;
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'metrics-test', version: '1' } } }) });
    const session = init.headers.get('mcp-session-id') ?? '';
    await init.text();
    assert.ok(session, 'a session id');
    await (await fetch(url, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
    const stream = httpRequest(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': session } });
    stream.on('error', () => undefined);
    const head = await new Promise<import('node:http').IncomingMessage>((resolve) => stream.once('response', resolve).end());
    assert.equal(head.statusCode, 200);
    head.on('error', () => undefined);
    stream.destroy();
    const metrics = async (sidecar: SidecarProcess) => (await (await fetch(`${sidecar.admin}/metrics`)).text());
    const callerId = `spiffe://${mesh.trustDomain}/agent/caller`;
    const getStream = (direction: string, who: string) => new RegExp(`agentmesh_requests_total\\{direction="${direction}",target="mcp/everything",method="MCP GET",caller="${who}",code="200"\\} [1-9]`);
    await waitFor('both sides to count the closed GET stream', async () =>
      getStream('outbound', '-').test(await metrics(caller)) && getStream('inbound', callerId).test(await metrics(tools)), 10_000);
    const [out, inb] = [await metrics(caller), await metrics(tools)];
    assert.match(out, /agentmesh_requests_total\{direction="outbound",target="mcp\/everything",method="tools\/call",caller="-",code="200"\} [1-9]/);
    assert.match(inb, new RegExp(`agentmesh_requests_total\\{direction="inbound",target="mcp/everything",method="tools/call",caller="${callerId}",code="200"\\} [1-9]`));
    for (const text of [out, inb]) assert.doesNotMatch(text, /agentmesh_request_errors_total\{[^}]*method="MCP GET"/);
  });
});
