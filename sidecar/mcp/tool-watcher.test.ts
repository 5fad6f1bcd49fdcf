// The tool watcher against a real HTTP MCP server (node:http, by hand) whose tool list never ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from '../transport/undici.ts';
import { createLogger } from '../log.ts';
import { openHttpToolSession } from './http-tool-session.ts';
import { MAX_TOOLS, watchTools } from './tool-watcher.ts';

test('a server whose tools/list pages never end is given up on (and retried), not listed into memory without end', async (t) => {
  let initialized = 0;
  let listings = 0;
  let secondSession: () => void = () => undefined;
  const reconnected = new Promise<void>((resolve) => { secondSession = resolve; });
  const server = createServer((req, res) => {
    if (req.method !== 'POST') { res.writeHead(405).end(); return; }
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      const m = JSON.parse(body) as { id?: number; method?: string };
      if (m.method === 'initialize') {
        if (++initialized === 2) secondSession();
        res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'endless', version: '1' } } }));
      } else if (m.method === 'tools/list') {
        listings++;
        const tools = Array.from({ length: 100 }, (_, i) => ({ name: `t${listings}-${i}`, inputSchema: { type: 'object' } }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { tools, nextCursor: 'again' } }));
      } else {
        res.writeHead(202).end();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  const pool = new Pool(url.origin, { connections: 2 });
  const published: unknown[] = [];
  const watcher = watchTools({
    name: 'endless', log: createLogger('silent'), onTools: (tools) => published.push(tools), onDown: () => undefined,
    connect: () => openHttpToolSession({ url, pool, clientName: 'test' }),
  });
  t.after(async () => {
    await watcher.close();
    await pool.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => { server.close(() => resolve()); });
  });
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([reconnected, new Promise((_, reject) => { bound = setTimeout(() => reject(new Error(`no second session: still listing after ${listings} pages`)), 30_000); })])
    .finally(() => clearTimeout(bound));
  assert.ok(listings <= MAX_TOOLS / 100 + 1, `the first listing stopped at the cap (${listings} pages)`);
  assert.deepEqual(published, [], 'no partial list is published');
  assert.equal(watcher.tools(), undefined);
});
