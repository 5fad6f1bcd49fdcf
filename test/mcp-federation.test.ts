// The federated `/mcp` endpoint and stdio servers: tools of servers on other sidecars under
// `{server}__{tool}`, list_changed when the mesh's tool set changes, clear errors for unknown or vanished
// tools, and a stdio server launched by a sidecar that is restarted when it crashes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { connectMesh } from '../sdk/index.ts';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import { ROOT, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

const STDIO = { name: 'text', command: [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/mcp-stdio-server.ts')], cwd: ROOT };

async function registered(sidecar: SidecarProcess, names: string[]): Promise<void> {
  await waitFor(`MCP servers ${names.join(', ')} at ${sidecar.outbound}`, async () => {
    const body = await (await fetch(`${sidecar.outbound}/registry/mcp`)).json() as { servers: { name: string }[] };
    return names.every((n) => body.servers.some((s) => s.name === n));
  }, 30_000);
}

const text = (result: unknown) => JSON.stringify(result);

describe('federated /mcp and stdio servers', () => {
  let mesh: TestMesh;
  let caller: SidecarProcess;
  const servers: TestMcpServer[] = [];

  before(async () => {
    mesh = await createTestMesh({ backend: 'nats', ttl: '2s' });
    const alpha = await serveTestMcp(['add', 'mul']);
    servers.push(alpha);
    await mesh.sidecar('alpha', { mcp: { servers: [{ name: 'alpha', url: alpha.url }] } });
    await mesh.sidecar('textsvc', { mcp: { servers: [STDIO] } });
    caller = await mesh.sidecar('caller');
    await registered(caller, ['alpha', 'text']);
  });
  after(async () => {
    await mesh?.close();
    await Promise.allSettled(servers.map((s) => s.close()));
  });

  test('lists the tools of servers on two other sidecars as {server}__{tool} and calls them', async () => {
    const client = await connectMesh({ url: caller.outbound }).mcp();
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['alpha__add', 'alpha__mul', 'text__crash', 'text__pid', 'text__reverse']);
      assert.match(text(await client.callTool({ name: 'alpha__add', arguments: { text: 'x' } })), /add:x/);
      assert.match(text(await client.callTool({ name: 'text__reverse', arguments: { text: 'mesh' } })), /hsem/);
    } finally {
      await client.close();
    }
  });

  test('a server joining raises tools/list_changed and its tools appear; one leaving makes them vanish', async () => {
    const changes: Tool[][] = [];
    const client = new Client({ name: 't', version: '1' }, { listChanged: { tools: { debounceMs: 0, onChanged: (err, tools) => { if (!err && tools) changes.push(tools); } } } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${caller.outbound}/mcp`)));
    try {
      const gamma = await serveTestMcp(['ping']);
      servers.push(gamma);
      const joiner = await mesh.sidecar('gamma', { mcp: { servers: [{ name: 'gamma', url: gamma.url }] } });
      await waitFor('list_changed with gamma', () => changes.some((list) => list.some((t) => t.name === 'gamma__ping')), 20_000);
      assert.match(text(await client.callTool({ name: 'gamma__ping', arguments: { text: 'pong' } })), /ping:pong/);

      gamma.addTool('extra');
      await waitFor('list_changed after the server changed its own list', () => changes.some((list) => list.some((t) => t.name === 'gamma__extra')), 20_000);

      await joiner.stop('SIGTERM');
      await waitFor('gamma tools gone', () => changes.at(-1)?.every((t) => !t.name.startsWith('gamma__')), 20_000);
      const gone = await client.callTool({ name: 'gamma__ping', arguments: {} }).then(text, (err: Error) => err.message);
      assert.match(gone, /unknown tool 'gamma__ping': MCP server 'gamma' is not in the mesh/);
    } finally {
      await client.close();
    }
  });

  test('an unknown tool is an MCP error naming it', async () => {
    const client = await connectMesh({ url: caller.outbound }).mcp();
    try {
      await assert.rejects(client.callTool({ name: 'alpha__divide', arguments: {} }), /unknown tool 'alpha__divide': MCP server 'alpha' has no tool 'divide'/);
      await assert.rejects(client.callTool({ name: 'nonsense', arguments: {} }), /unknown tool 'nonsense'/);
      await assert.rejects(client.callTool({ name: 'alpha__ad', arguments: {} }), /has no tool 'ad' \(did you mean 'alpha__add'\?\)/);
    } finally {
      await client.close();
    }
  });

  test('a stdio server launched by a sidecar is reachable from another sidecar, and restarted after a crash', async () => {
    const client = await connectMesh({ url: caller.outbound }).mcp('text');
    try {
      assert.match(text(await client.callTool({ name: 'reverse', arguments: { text: 'stdio' } })), /oidts/);
      const before = text(await client.callTool({ name: 'pid', arguments: {} }));
      await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), /exited while handling this request/);
      const after = await waitFor('the restarted server answers', async () => text(await client.callTool({ name: 'pid', arguments: {} })), 15_000);
      assert.notEqual(after, before, 'a new process answers');
      assert.match(text(await client.callTool({ name: 'reverse', arguments: { text: 'again' } })), /niaga/);
    } finally {
      await client.close();
    }
  });

  test('an unreachable server is left out of the listing; the others are still listed', async () => {
    const alpha = servers[0];
    await alpha?.close();
    const client = await connectMesh({ url: caller.outbound }).mcp();
    try {
      await waitFor('alpha left out', async () => (await client.listTools()).tools.every((t) => !t.name.startsWith('alpha__')), 20_000);
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('text__reverse'), names.join(','));
    } finally {
      await client.close();
    }
  });

  test('the federated listing is paginated', async () => {
    const bulk = await serveTestMcp(Array.from({ length: 130 }, (_, i) => `t${String(i).padStart(3, '0')}`));
    servers.push(bulk);
    const owner = await mesh.sidecar('bulk', { mcp: { servers: [{ name: 'bulk', url: bulk.url }] } });
    await registered(caller, ['bulk']);
    const client = await connectMesh({ url: caller.outbound }).mcp();
    try {
      const first = await client.listTools();
      assert.equal(first.tools.length, 100);
      assert.ok(first.nextCursor);
      const second = await client.listTools({ cursor: first.nextCursor });
      const all = [...first.tools, ...second.tools].map((t) => t.name).filter((n) => n.startsWith('bulk__'));
      assert.equal(new Set(all).size, 130);
      await assert.rejects(client.listTools({ cursor: 'bogus!' }), /invalid cursor/);
    } finally {
      await client.close();
      await owner.stop('SIGTERM');
    }
  });
});
