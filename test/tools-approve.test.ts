// `tools: approve` in the policy document, on real sidecar processes (embedded registry): a sidecar whose
// config says tools.pinning first-use still refuses a tool nobody approved (a first-use pin taken by a
// sidecar without that policy does not count), shows it as not-approved, audits the refusal, and lets it
// through once `agentmesh tools approve` pinned it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { serveMutableTool, type MutableToolServer } from './fixtures/mcp-mutable-tool.ts';
import { createTestMesh, type TestMesh } from './support/mesh.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';
import { waitFor } from './support/wait.ts';

function readRecords(dir: string): Record<string, unknown>[] {
  return readdirSync(dir).filter((f) => f.endsWith('.jsonl') && !f.endsWith('.spool.jsonl'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>));
}

async function mcpClient(url: string): Promise<Client> {
  const client = new Client({ name: 'tools-approve-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

describe('tools: approve in the policy document', () => {
  let mesh: TestMesh;
  let dir: string;
  let tool: MutableToolServer;
  let strict: SidecarProcess;
  let plain: SidecarProcess;
  const clients: Client[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmesh-tools-approve-'));
    mesh = await createTestMesh({ backend: 'embedded' });
    tool = await serveMutableTool('Looks up a word in the dictionary.');
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, 'mode: enforce\ndefault: allow\ntools: approve\n');
    const audit = { dir: join(dir, 'audit'), flushInterval: '5ms' };
    await mesh.sidecar('ledger', { instance: 'owner1', audit, mcp: { servers: [{ name: 'dict', url: tool.url }] } });
    // Both callers are configured tools.pinning first-use (the default); only `strict` loads the policy.
    strict = await mesh.sidecar('clerk', { instance: 'strict1', audit, policy: { file: policyFile } });
    plain = await mesh.sidecar('reader', { instance: 'plain1', audit });
    for (const s of [strict, plain]) {
      await waitFor('dict visible', async () => (await (await fetch(`${s.outbound}/registry/mcp`)).text()).includes('"dict"'), 15_000);
    }
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await mesh?.close();
    await tool?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a tool nobody approved is refused under the policy, even with a first-use pin; approval lets it through', async () => {
    // Without the policy, first use pins the tool (in the mesh-wide pin store) and the call passes.
    const viaPlain = await mcpClient(`${plain.outbound}/mcp/dict`);
    clients.push(viaPlain);
    assert.match(JSON.stringify(await viaPlain.callTool({ name: 'lookup', arguments: { q: 'a' } })), /found:a/);
    const pinned = await runCli(['tools', '--url', plain.outbound]);
    assert.match(pinned.stdout, /dict__lookup .*pinned/);

    const viaStrict = await mcpClient(`${strict.outbound}/mcp/dict`);
    clients.push(viaStrict);
    await assert.rejects(viaStrict.callTool({ name: 'lookup', arguments: { q: 'b' } }), (err: Error) => {
      assert.match(err.message, /tool 'lookup' of MCP server 'dict' \(dict__lookup\) is not approved yet: run 'agentmesh tools approve dict lookup'/);
      return true;
    });
    const listing = await runCli(['tools', '--url', strict.outbound]);
    assert.equal(listing.code, 0, listing.stderr);
    assert.match(listing.stdout, /dict__lookup .*not-approved/);
    const blocked = await waitFor('the refusal audited', () => readRecords(join(dir, 'audit'))
      .find((r) => r.instance === 'strict1' && r.kind === 'tool' && r.event === 'blocked' && r.tool === 'lookup'));
    assert.equal(blocked.server, 'dict');
    assert.equal(typeof blocked.requestId, 'string');

    const approve = await runCli(['tools', 'approve', 'dict', 'lookup', '--url', strict.outbound, '--registry-dir', String(mesh.registry.dir), '--ca-dir', mesh.caDir]);
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(JSON.stringify(await viaStrict.callTool({ name: 'lookup', arguments: { q: 'c' } })), /found:c/);
    assert.match((await runCli(['tools', '--url', strict.outbound])).stdout, /dict__lookup .*approved/);
    // The approval is a pin like any other: the sidecar without the policy still calls the tool.
    assert.match(JSON.stringify(await viaPlain.callTool({ name: 'lookup', arguments: { q: 'd' } })), /found:d/);
  });
});
