// Bad input gets a clear answer, never a crash or a hang: unknown agents, malformed JSON, bodies over
// the limit, and configs that fail at start-up naming the key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientFactory } from '@a2a-js/sdk/client';
import { connectMesh, isMeshError, message, serveAgent, type AgentServer } from '../sdk/index.ts';
import { echoExecutor } from './fixtures/agents.ts';
import { createTestMesh, waitForAgent, type TestMesh } from './support/mesh.ts';
import { runCli, type SidecarProcess } from './support/sidecar-process.ts';

const json = { 'content-type': 'application/json', 'a2a-version': '1.0' };

describe('bad input at the outbound listener', () => {
  let mesh: TestMesh;
  let caller: SidecarProcess;
  let agent: AgentServer;

  before(async () => {
    mesh = await createTestMesh({ backend: 'embedded' });
    agent = await serveAgent({ name: 'echo', executor: echoExecutor() });
    await mesh.sidecar('echo', { agent: { url: agent.url } });
    caller = await mesh.sidecar('caller', { limits: { maxBody: '64KiB' } });
    await waitForAgent(caller, 'echo');
  });
  after(async () => {
    await mesh?.close();
    await agent?.close();
  });

  test('an unknown agent on JSON-RPC is a JSON-RPC error naming it, with HTTP 200 as A2A servers answer', async () => {
    const res = await fetch(`${caller.outbound}/a2a/nobody`, { method: 'POST', headers: json, body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'SendMessage', params: {} }) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-agentmesh-status'), '404');
    assert.equal(res.headers.get('x-agentmesh-error'), 'AGENT_NOT_FOUND');
    assert.match(res.headers.get('x-agentmesh-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const body = await res.json() as { id: number; error: { code: number; message: string; data: { code: string } } };
    assert.equal(body.id, 7);
    assert.equal(body.error.code, -32050);
    assert.equal(body.error.data.code, 'AGENT_NOT_FOUND');
    assert.match(body.error.message, /agent 'nobody' not found/);
  });

  test('an unknown agent on REST is a 404 naming it', async () => {
    const res = await fetch(`${caller.outbound}/a2a/nobody/message:send`, { method: 'POST', headers: json, body: '{}' });
    assert.equal(res.status, 404);
    const body = await res.json() as { error: { code: number; status: string; message: string; details: { reason: string }[] } };
    assert.equal(body.error.status, 'NOT_FOUND');
    assert.equal(body.error.details[0]?.reason, 'AGENT_NOT_FOUND');
    assert.match(body.error.message, /nobody/);
  });

  test('the SDK reports an unknown agent as AGENT_NOT_FOUND', async () => {
    const mesh2 = connectMesh({ url: caller.outbound });
    await assert.rejects(mesh2.send('nobody', 'hi'), (err: unknown) => isMeshError(err, 'AGENT_NOT_FOUND') && /nobody/.test(err.message));
  });

  test('malformed JSON is -32700', async () => {
    const res = await fetch(`${caller.outbound}/a2a/echo`, { method: 'POST', headers: json, body: '{"jsonrpc": "2.0", "method": ' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-agentmesh-status'), '400');
    const body = await res.json() as { id: null; error: { code: number } };
    assert.equal(body.error.code, -32700);
    assert.equal(body.id, null);
  });

  test('a request that is not JSON-RPC 2.0 is -32600, echoing its id', async () => {
    const res = await fetch(`${caller.outbound}/a2a/echo`, { method: 'POST', headers: json, body: '{"id": 3, "method": 5}' });
    assert.equal(res.status, 200);
    const body = await res.json() as { id: number; error: { code: number } };
    assert.equal(body.error.code, -32600);
    assert.equal(body.id, 3);
  });

  test('a malformed percent-escape in the path is a 400, not a crash', async () => {
    for (const path of ['/a2a/%', '/a2a/%E0%A4%A/message:send', '/mcp/%zz']) {
      const res = await fetch(`${caller.outbound}${path}`, { method: 'POST', headers: json, body: '{}' });
      assert.ok(res.status === 400 || res.status === 200, `${path}: ${res.status}`);
      const text = await res.text();
      assert.match(text, /malformed percent-escape/, path);
    }
  });

  test('an over-long or malformed x-agentmesh-hops is refused, not reset', async () => {
    for (const hops of ['99999999999999999', '-1', '1e3', 'abc']) {
      const res = await fetch(`${caller.outbound}/a2a/echo`, {
        method: 'POST', headers: { ...json, 'x-agentmesh-hops': hops },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'h', method: 'SendMessage', params: { message: { messageId: `m-${hops}`, role: 'ROLE_USER', parts: [{ text: 'x' }] } } }),
      });
      const body = await res.json() as { id: string; error?: { code: number; message: string } };
      assert.equal(body.error?.code, -32600, `hops ${hops}`);
      assert.match(body.error?.message ?? '', /x-agentmesh-hops/);
      assert.equal(body.id, 'h');
    }
  });

  test('a standard A2A client surfaces a mesh error as the typed JSON-RPC error, not an HTTP failure', async () => {
    const client = await new ClientFactory().createFromUrl(`${caller.outbound}/a2a/echo/`);
    await assert.rejects(
      client.sendMessage({ tenant: '', message: message('user', 'loop'), configuration: undefined, metadata: undefined }, { serviceParameters: { 'x-agentmesh-hops': '8' } }),
      (err: unknown) => (err as { envelopeCode?: number }).envelopeCode === -32057 && (err as { data?: { code?: string } }).data?.code === 'HOP_LIMIT_EXCEEDED' && /hop limit/.test((err as Error).message),
    );
  });

  test('a body over the limit is refused with 413 before it is parsed', async () => {
    const big = `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"pad":"${'x'.repeat(100 * 1024)}"}}`;
    const res = await fetch(`${caller.outbound}/a2a/echo`, { method: 'POST', headers: json, body: big });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-agentmesh-status'), '413');
    const body = await res.json() as { error: { message: string; data: { code: string; limit: number } } };
    assert.equal(body.error.data.code, 'BODY_TOO_LARGE');
    assert.equal(body.error.data.limit, 64 * 1024);
    // Not parsed: the same oversized body that is also malformed still gets 413, not -32700.
    const malformed = await fetch(`${caller.outbound}/a2a/echo`, { method: 'POST', headers: json, body: `{${'x'.repeat(100 * 1024)}` });
    assert.equal(malformed.headers.get('x-agentmesh-error'), 'BODY_TOO_LARGE');
    // And the sidecar still serves the next call.
    const client = await new ClientFactory().createFromUrl(`${caller.outbound}/a2a/echo/`);
    const reply = await client.sendMessage({ tenant: '', message: message('user', 'still here'), configuration: undefined, metadata: undefined });
    assert.match(JSON.stringify(reply), /echo: still here/);
  });

  test('an error another sidecar answers itself reaches the agent as a JSON-RPC error with HTTP 200, under the same request id', async () => {
    const gone = await serveAgent({ name: 'gone', executor: echoExecutor() });
    await mesh.sidecar('gone', { agent: { url: gone.url } });
    await waitForAgent(caller, 'gone');
    await gone.close(); // its sidecar still announces it, but nothing answers behind it
    const res = await fetch(`${caller.outbound}/a2a/gone`, {
      method: 'POST', headers: { ...json, 'x-agentmesh-request-id': 'req-gone-1' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'g1', method: 'SendMessage', params: { message: { messageId: 'm-gone', role: 'ROLE_USER', parts: [{ text: 'x' }] } } }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-agentmesh-status'), '502');
    const body = await res.json() as { id: string; error: { code: number; message: string; data: { code: string; requestId: string } } };
    assert.equal(body.id, 'g1');
    assert.equal(body.error.code, -32051);
    assert.equal(body.error.data.code, 'UPSTREAM_UNAVAILABLE');
    assert.equal(body.error.data.requestId, 'req-gone-1', 'the receiving sidecar continued the caller\'s request id');
    assert.match(body.error.message, /local agent 'gone'/);
  });

  test('an unknown route is a 404', async () => {
    const res = await fetch(`${caller.outbound}/nothing/here`);
    assert.equal(res.status, 404);
  });
});

describe('bad configuration fails at start-up naming the key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentmesh-badcfg-'));

  test('agentmesh sidecar exits non-zero with the key path', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'identity:\n  trustDomain: Mesh.Local\n  cert: c.pem\nregistry:\n  ttl: soon\nlisten:\n  outbound: nowhere\n');
    const { code, stderr } = await runCli(['sidecar', '--config', path]);
    assert.notEqual(code, 0);
    assert.match(stderr, /CONFIG_INVALID/);
    assert.match(stderr, /identity\.trustDomain/);
    assert.match(stderr, /identity\.key/);
    assert.match(stderr, /registry\.ttl: expected a duration/);
    assert.match(stderr, /listen\.outbound: expected host:port/);
  });

  test('an unknown key is an error, also from a flag or the environment', async () => {
    const path = join(dir, 'typo.yaml');
    writeFileSync(path, 'identity: { trustDomain: m.local, cert: a, key: b, bundle: c }\nregistyr: {}\n');
    const typo = await runCli(['validate', '--config', path]);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /Unrecognized key: "registyr"/);
    const flag = await runCli(['validate', '--config', path, '--registry.tll', '5s']);
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /--registry\.tll: unknown config key/);
    const valid = join(dir, 'valid.yaml');
    writeFileSync(valid, 'identity: { trustDomain: m.local, cert: a, key: b, bundle: c }\n');
    const env = await runCli(['validate', '--config', valid], { env: { AGENTMESH_REGISTRY_TTL: 'x' } });
    assert.equal(env.code, 1);
    assert.match(env.stderr, /registry\.ttl: expected a duration/);
  });

  test('a missing certificate fails validate and start-up, naming the file', async () => {
    const path = join(dir, 'ok.yaml');
    writeFileSync(path, `identity: { trustDomain: m.local, cert: ${join(dir, 'none.pem')}, key: ${join(dir, 'none-key.pem')}, bundle: ${join(dir, 'b.pem')} }\n`);
    const validate = await runCli(['validate', '--config', path]);
    assert.equal(validate.code, 1, validate.stderr);
    assert.match(validate.stdout, /✖ identity\.cert: cannot read .*none\.pem/);
    const start = await runCli(['sidecar', '--config', path, '--listen.outbound', '127.0.0.1:0', '--listen.inbound', '127.0.0.1:0', '--listen.admin', '127.0.0.1:0']);
    assert.equal(start.code, 1);
    assert.match(start.stderr, /IDENTITY_INVALID: identity\.cert: cannot read .*none\.pem/);
  });
});
