import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { Pool } from '../transport/undici.ts';
import { PROTOCOL_VERSIONS, openHttpToolSession, readEvents, toolsPage } from './http-tool-session.ts';

test('the protocol versions are the MCP SDK client\'s', () => {
  assert.equal(PROTOCOL_VERSIONS[0], LATEST_PROTOCOL_VERSION);
  assert.deepEqual([...PROTOCOL_VERSIONS].sort(), [...SUPPORTED_PROTOCOL_VERSIONS].sort());
});

test('SSE events split anywhere, CRLF included, are read as whole messages', async () => {
  const text = 'id: 7\r\ndata: {"jsonrpc":"2.0",\r\ndata: "method":"a"}\r\n\r\n: comment\n\ndata:{"id":1,"result":{}}\n\n';
  const chunks = [...Buffer.from(text)].map((b) => Buffer.from([b])); // one byte per chunk
  const seen: unknown[] = [];
  const ids: string[] = [];
  await readEvents(Readable.from(chunks), (m) => { seen.push(m); }, (id) => ids.push(id));
  assert.deepEqual(seen, [{ jsonrpc: '2.0', method: 'a' }, { id: 1, result: {} }]);
  assert.deepEqual(ids, ['7']);
});

test('a tools/list result without a tools array, or with a nameless tool, is refused', () => {
  assert.throws(() => toolsPage({}), /without a tools array/);
  assert.throws(() => toolsPage({ tools: [{ inputSchema: {} }] }), /without a name/);
  assert.deepEqual(toolsPage({ tools: [{ name: 't', inputSchema: { type: 'object' } }], nextCursor: 'c' }), { tools: [{ name: 't', inputSchema: { type: 'object' } }], nextCursor: 'c' });
});

/** A Streamable HTTP server by hand: answers initialize as JSON, tools/list as SSE with a ping request first, two pages. */
async function fakeServer(version: string) {
  const seen: { method: string; rpc?: string; session: string | undefined; protocol: string | undefined }[] = [];
  let stream: ServerResponse | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const session = req.headers['mcp-session-id'] as string | undefined;
    const protocol = req.headers['mcp-protocol-version'] as string | undefined;
    if (req.method === 'GET') {
      seen.push({ method: 'GET', session, protocol });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      stream = res;
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const m = JSON.parse(body) as { id?: number; method?: string; params?: { cursor?: string }; result?: unknown };
      seen.push({ method: 'POST', rpc: m.method ?? `answer ${String(m.id)}`, session, protocol });
      if (m.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: version, capabilities: { tools: { listChanged: true } }, serverInfo: { name: 'fake', version: '1' } } }));
      } else if (m.method === 'tools/list') {
        const page = m.params?.cursor === 'p2'
          ? { tools: [{ name: 'b', inputSchema: { type: 'object' } }] }
          : { tools: [{ name: 'a', inputSchema: { type: 'object' } }], nextCursor: 'p2' };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: {"jsonrpc":"2.0","id":"srv-1","method":"ping"}\n\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: page })}\n\n`);
      } else if (m.method === 'ping') {
        // An SSE answer whose stream stays open after the answer.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: m.id, result: {} })}\n\n`);
      } else {
        res.writeHead(202).end();
      }
    });
  });
  let closedSockets = 0;
  server.on('connection', (socket) => socket.on('close', () => { closedSockets++; }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  return {
    url, seen, closedSockets: () => closedSockets, notify: () => stream?.write('id: e1\ndata: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n'),
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

test('a session initializes, lists pages, answers the server\'s ping, pings (answer on a stream left open), and hears list_changed on the GET stream', async () => {
  const fake = await fakeServer('2025-06-18');
  const pool = new Pool(fake.url.origin, { connections: 4 });
  try {
    const session = await openHttpToolSession({ url: fake.url, pool, clientName: 'test' });
    assert.equal(session.listChanged, true);
    const first = await session.listTools(undefined);
    assert.deepEqual(first.tools.map((t) => t.name), ['a']);
    assert.equal(first.nextCursor, 'p2');
    assert.deepEqual((await session.listTools('p2')).tools.map((t) => t.name), ['b']);
    await session.ping(2000);
    const changed = new Promise<void>((resolve) => { session.onToolsChanged = resolve; });
    const deadline = Date.now() + 5000;
    while (!fake.seen.some((s) => s.method === 'GET') && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    fake.notify();
    await changed;
    assert.equal(fake.closedSockets(), 0, 'answers read to their end leave every connection open for the next request');
    let closed = 0;
    session.onclose = () => { closed++; };
    await session.close();
    await session.close();
    assert.equal(closed, 1);
    const after = fake.seen.filter((s) => s.rpc !== 'initialize');
    assert.ok(after.every((s) => s.session === 's1' && s.protocol === '2025-06-18'), JSON.stringify(fake.seen));
    assert.ok(fake.seen.some((s) => s.rpc === 'notifications/initialized'));
    assert.ok(fake.seen.some((s) => s.rpc === 'answer srv-1'), 'the server\'s ping request was answered');
  } finally {
    await pool.destroy();
    await fake.close();
  }
});

test('a server with a protocol version the SDK client does not support is refused', async () => {
  const fake = await fakeServer('1999-01-01');
  const pool = new Pool(fake.url.origin, { connections: 2 });
  try {
    await assert.rejects(openHttpToolSession({ url: fake.url, pool, clientName: 'test' }), /protocol version is not supported: 1999-01-01/);
  } finally {
    await pool.close();
    await fake.close();
  }
});
