// An MCP session belongs to the identity that opened it: through real sidecars, a second caller identity
// that uses, listens on or deletes the first one's Mcp-Session-Id gets 404 (MCP_SESSION_NOT_FOUND) and never
// reaches the server, while the owner's session goes on. For an HTTP upstream and a stdio one.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { serveTestMcp, type TestMcpServer } from './fixtures/mcp-http-server.ts';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import { rawRequest } from './support/raw-http.ts';
import { waitFor } from './support/wait.ts';
import { ROOT, type SidecarProcess } from './support/sidecar-process.ts';

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
const CALL = (tool: string, args: Record<string, string>) => JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: tool, arguments: args } });

describe('MCP sessions are bound to the identity that opened them', () => {
  let mesh: TestMesh;
  let upstream: TestMcpServer;
  /** Session ids that reached the HTTP upstream, with the caller identity the sidecar verified. */
  const seen: { session: string; caller: string }[] = [];
  let alice: SidecarProcess;
  let bob: SidecarProcess;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    upstream = await serveTestMcp(['note'], {
      onRequest: (h) => { if (typeof h['mcp-session-id'] === 'string') seen.push({ session: h['mcp-session-id'], caller: String(h['x-agentmesh-caller']) }); },
    });
    await mesh.sidecar('owner', {
      mcp: { servers: [
        { name: 'notes', url: upstream.url },
        { name: 'text', command: [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/mcp-stdio-server.ts')], cwd: ROOT },
      ] },
    });
    [alice, bob] = await Promise.all([mesh.sidecar('alice'), mesh.sidecar('bob')]);
    for (const s of [alice, bob]) {
      await waitFor('both MCP servers visible', async () => {
        const body = await (await fetch(`${s.outbound}/registry/mcp`)).text();
        return body.includes('"notes"') && body.includes('"text"');
      }, 20_000);
    }
  });
  after(async () => {
    await mesh?.close();
    await upstream?.close();
  });

  for (const { server, tool, args, expect } of [
    { server: 'notes', tool: 'note', args: { text: 'mine' }, expect: /note:mine/ },
    { server: 'text', tool: 'reverse', args: { text: 'abc' }, expect: /cba/ },
  ]) {
    test(`${server}: another identity gets 404 on POST, GET and DELETE; the owner's session goes on`, async () => {
      const client = new Client({ name: 'alice', version: '1' });
      const transport = new StreamableHTTPClientTransport(new URL(`${alice.outbound}/mcp/${server}`));
      await client.connect(transport);
      try {
        const session = transport.sessionId;
        assert.ok(session, 'the server opened a session');
        assert.match(JSON.stringify(await client.callTool({ name: tool, arguments: args })), expect);
        const hijack = { ...HEADERS, 'mcp-session-id': session };
        for (const attempt of [
          { method: 'POST', body: CALL(tool, args) },
          { method: 'GET' },
          { method: 'DELETE' },
        ]) {
          const res = await rawRequest(bob.outbound, { method: attempt.method, path: `/mcp/${server}`, headers: hijack, ...(attempt.body ? { body: attempt.body } : {}) });
          assert.equal(res.status, 404, `${attempt.method}: ${res.body}`);
          const body = JSON.parse(res.body) as { error: { data: { code: string } } };
          assert.equal(body.error.data.code, 'MCP_SESSION_NOT_FOUND');
        }
        // Bob's own session works; Alice's is untouched by his DELETE.
        const own = new Client({ name: 'bob', version: '1' });
        await own.connect(new StreamableHTTPClientTransport(new URL(`${bob.outbound}/mcp/${server}`)));
        assert.match(JSON.stringify(await own.callTool({ name: tool, arguments: args })), expect);
        await own.close();
        assert.match(JSON.stringify(await client.callTool({ name: tool, arguments: args })), expect);
        if (server === 'notes') {
          const bobId = `spiffe://${mesh.trustDomain}/agent/bob`;
          assert.equal(seen.filter((s) => s.session === session && s.caller === bobId).length, 0, 'no request of bob with alice\'s session reached the server');
          assert.ok(seen.some((s) => s.session === session && s.caller === `spiffe://${mesh.trustDomain}/agent/alice`));
        }
        // The owner deletes its session; the id is then unknown to everyone, the owner included.
        await transport.terminateSession();
        const after = await rawRequest(alice.outbound, { method: 'POST', path: `/mcp/${server}`, headers: hijack, body: CALL(tool, args) });
        assert.equal(after.status, 404);
      } finally {
        await client.close();
      }
    });
  }
});
